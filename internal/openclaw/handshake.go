package openclaw

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// MaxSkew is how far a device's signedAt may be from the server's clock.
const MaxSkew = 2 * time.Minute

// Challenge is the payload of the connect.challenge event the server sends
// first.
type Challenge struct {
	Nonce string `json:"nonce"`
	TS    int64  `json:"ts"` // Unix ms
}

// ConnectParams are the params of the connect request (the fields miniclaw
// reads; others are ignored).
type ConnectParams struct {
	MinProtocol int        `json:"minProtocol"`
	MaxProtocol int        `json:"maxProtocol"`
	Client      ClientInfo `json:"client"`
	Role        string     `json:"role"`
	Scopes      []string   `json:"scopes"`
	Auth        *Auth      `json:"auth"`
	Device      *Device    `json:"device"`
}

// ClientInfo names the client software.
type ClientInfo struct {
	ID           string `json:"id"`
	Version      string `json:"version"`
	Platform     string `json:"platform"`
	Mode         string `json:"mode"`
	DeviceFamily string `json:"deviceFamily"`
}

// Auth carries the shared secret, in either field.
type Auth struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// Device is a device identity proving itself: an Ed25519 public key (raw 32
// bytes, base64url), its id (hex SHA-256 of the raw key) and a signature
// (base64url) of the v3 or v2 payload over the challenge nonce.
type Device struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
	Signature string `json:"signature"`
	SignedAt  int64  `json:"signedAt"`
	Nonce     string `json:"nonce"`
}

// Handshake is what the server checks a connect request against.
type Handshake struct {
	Token    string    // the gateway's shared secret; "" accepts any client
	Nonce    string    // of the challenge sent on this connection
	Now      time.Time // the server's clock
	Loopback bool      // the peer connected from a loopback address
}

// Check validates a connect request: the protocol range must contain
// Protocol, the role must be operator, the shared secret must match when
// one is set, and a device, when sent, must verify (see VerifyDevice). A
// client without a device is accepted only on loopback.
func (h Handshake) Check(p ConnectParams) *ErrorShape {
	if p.MinProtocol > Protocol || p.MaxProtocol < Protocol {
		e := detailed(CodeInvalidRequest, "PROTOCOL_MISMATCH", "",
			"protocol mismatch: this gateway speaks protocol "+strconv.Itoa(Protocol)+
				", the client offered "+strconv.Itoa(p.MinProtocol)+".."+strconv.Itoa(p.MaxProtocol))
		e.Details["expectedProtocol"] = Protocol
		return e
	}
	if p.Role != "operator" {
		return Errorf(CodeInvalidRequest, "role %q is not supported: miniclaw serves operator clients only", p.Role)
	}
	if err := h.checkSecret(p.Auth); err != nil {
		return err
	}
	if p.Device == nil {
		if !h.Loopback {
			return detailed(CodeNotPaired, "DEVICE_IDENTITY_REQUIRED", "",
				"device identity required: a client connecting from another host must sign the challenge with a device key")
		}
		return nil
	}
	token := ""
	if p.Auth != nil {
		token = p.Auth.Token
	}
	return h.VerifyDevice(p, token)
}

// checkSecret compares the shared secret, in auth.token or auth.password,
// in constant time.
func (h Handshake) checkSecret(a *Auth) *ErrorShape {
	if h.Token == "" {
		return nil
	}
	if a == nil || a.Token == "" && a.Password == "" {
		return detailed(CodeInvalidRequest, "AUTH_TOKEN_MISSING", "",
			"unauthorized: gateway token missing (send connect.params.auth.token)")
	}
	want := []byte(h.Token)
	if subtle.ConstantTimeCompare([]byte(a.Token), want) == 1 || subtle.ConstantTimeCompare([]byte(a.Password), want) == 1 {
		return nil
	}
	return detailed(CodeInvalidRequest, "AUTH_TOKEN_MISMATCH", "",
		"unauthorized: gateway token mismatch")
}

// VerifyDevice checks p.Device: the nonce is this connection's challenge,
// the id is the hex SHA-256 of the raw public key, signedAt is within
// MaxSkew of now, and the signature verifies over the v3 payload
// (v3|deviceId|clientId|clientMode|role|scopes|signedAt|token|nonce|platform|deviceFamily,
// the last two trimmed and in ASCII lower case) or the legacy v2 one (the
// same without the last two fields).
func (h Handshake) VerifyDevice(p ConnectParams, token string) *ErrorShape {
	d := p.Device
	devErr := func(detail, reason, msg string) *ErrorShape {
		return detailed(CodeInvalidRequest, detail, reason, msg)
	}
	switch {
	case strings.TrimSpace(d.Nonce) == "":
		return devErr("DEVICE_AUTH_NONCE_REQUIRED", "device-nonce-missing", "device nonce required")
	case subtle.ConstantTimeCompare([]byte(d.Nonce), []byte(h.Nonce)) != 1:
		return devErr("DEVICE_AUTH_NONCE_MISMATCH", "device-nonce-mismatch", "device nonce mismatch: sign the nonce of this connection's connect.challenge")
	}
	key, err := decodeB64URL(d.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return devErr("DEVICE_AUTH_PUBLIC_KEY_INVALID", "device-public-key", "device public key invalid: want 32 raw Ed25519 bytes, base64url")
	}
	sum := sha256.Sum256(key)
	if !strings.EqualFold(d.ID, hex.EncodeToString(sum[:])) {
		return devErr("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device-id-mismatch", "device identity mismatch: device.id must be the hex SHA-256 of the public key")
	}
	if skew := h.Now.Sub(time.UnixMilli(d.SignedAt)); skew > MaxSkew || skew < -MaxSkew {
		return devErr("DEVICE_AUTH_SIGNATURE_EXPIRED", "device-signature-stale", "device signature expired: signedAt is more than 2 minutes from the gateway's clock")
	}
	sig, err := decodeB64URL(d.Signature)
	if err == nil && len(sig) == ed25519.SignatureSize {
		for _, payload := range SignaturePayloads(p, token) {
			if ed25519.Verify(key, []byte(payload), sig) {
				return nil
			}
		}
	}
	return devErr("DEVICE_AUTH_SIGNATURE_INVALID", "device-signature", "device signature invalid")
}

// SignaturePayloads are the strings a device may have signed: v3, then v2.
func SignaturePayloads(p ConnectParams, token string) []string {
	d := p.Device
	v2 := []string{d.ID, p.Client.ID, p.Client.Mode, p.Role, strings.Join(p.Scopes, ","),
		strconv.FormatInt(d.SignedAt, 10), token, d.Nonce}
	v3 := append(append([]string{"v3"}, v2...), signedMetadata(p.Client.Platform), signedMetadata(p.Client.DeviceFamily))
	return []string{strings.Join(v3, "|"), "v2|" + strings.Join(v2, "|")}
}

// signedMetadata is platform or deviceFamily as clients sign it: trimmed,
// ASCII letters in lower case (OpenClaw's TUI sends deviceFamily "Linux").
func signedMetadata(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(s))
}

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
