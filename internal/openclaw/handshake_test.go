package openclaw

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signed is a connect request from a device that signed payload version
// ver ("v3" or "v2") over nonce at signedAt, with the shared token.
func signed(t *testing.T, ver, nonce string, signedAt time.Time, token string) ConnectParams {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pub)
	p := ConnectParams{
		MinProtocol: 4, MaxProtocol: 4, Role: "operator", Scopes: []string{"operator.read", "operator.write"},
		Client: ClientInfo{ID: "cli", Version: "1.0", Platform: "linux", Mode: "cli", DeviceFamily: "desktop"},
		Auth:   &Auth{Token: token},
		Device: &Device{ID: hex.EncodeToString(sum[:]), PublicKey: base64.RawURLEncoding.EncodeToString(pub), SignedAt: signedAt.UnixMilli(), Nonce: nonce},
	}
	payload := map[string]string{}
	for _, s := range SignaturePayloads(p, token) {
		payload[s[:2]] = s
	}
	p.Device.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(payload[ver])))
	return p
}

func detailCode(e *ErrorShape) string {
	if e == nil || e.Details == nil {
		return ""
	}
	s, _ := e.Details["code"].(string)
	return s
}

func TestDeviceSignatures(t *testing.T) {
	now := time.Now()
	h := Handshake{Token: "tok", Nonce: "n-1", Now: now}
	for _, ver := range []string{"v3", "v2"} {
		if err := h.Check(signed(t, ver, "n-1", now, "tok")); err != nil {
			t.Errorf("%s signature refused: %v", ver, err)
		}
	}
	// The payload with the v2 prefix, as OpenClaw's clients build it.
	if p := SignaturePayloads(signed(t, "v2", "n-1", now, "tok"), "tok")[1]; !strings.HasPrefix(p, "v2|") || strings.Count(p, "|") != 8 {
		t.Errorf("v2 payload %q: want v2 and 8 fields", p)
	}

	cases := []struct {
		name   string
		mutate func(*ConnectParams)
		p      ConnectParams
		want   string
	}{
		{name: "wrong nonce", p: signed(t, "v3", "n-0", now, "tok"), want: "DEVICE_AUTH_NONCE_MISMATCH"},
		{name: "no nonce", p: signed(t, "v3", "", now, "tok"), want: "DEVICE_AUTH_NONCE_REQUIRED"},
		{name: "stale", p: signed(t, "v3", "n-1", now.Add(-3*time.Minute), "tok"), want: "DEVICE_AUTH_SIGNATURE_EXPIRED"},
		{name: "from the future", p: signed(t, "v3", "n-1", now.Add(3*time.Minute), "tok"), want: "DEVICE_AUTH_SIGNATURE_EXPIRED"},
		{name: "signed over another token", p: signed(t, "v3", "n-1", now, "other"), mutate: func(p *ConnectParams) { p.Auth.Token = "tok" }, want: "DEVICE_AUTH_SIGNATURE_INVALID"},
		{name: "scopes changed after signing", p: signed(t, "v3", "n-1", now, "tok"), mutate: func(p *ConnectParams) { p.Scopes = append(p.Scopes, "operator.admin") }, want: "DEVICE_AUTH_SIGNATURE_INVALID"},
		{name: "garbage signature", p: signed(t, "v3", "n-1", now, "tok"), mutate: func(p *ConnectParams) { p.Device.Signature = "!!" }, want: "DEVICE_AUTH_SIGNATURE_INVALID"},
		{name: "id of another key", p: signed(t, "v3", "n-1", now, "tok"), mutate: func(p *ConnectParams) { p.Device.ID = strings.Repeat("0", 64) }, want: "DEVICE_AUTH_DEVICE_ID_MISMATCH"},
		{name: "short key", p: signed(t, "v3", "n-1", now, "tok"), mutate: func(p *ConnectParams) { p.Device.PublicKey = "AAAA" }, want: "DEVICE_AUTH_PUBLIC_KEY_INVALID"},
	}
	for _, c := range cases {
		if c.mutate != nil {
			c.mutate(&c.p)
		}
		err := h.Check(c.p)
		if got := detailCode(err); got != c.want {
			t.Errorf("%s: got %v (detail %q), want %s", c.name, err, got, c.want)
		} else if err.Code != CodeInvalidRequest || err.Message == "" {
			t.Errorf("%s: error %+v: want INVALID_REQUEST with a message", c.name, err)
		}
	}
}

func TestHandshakeChecks(t *testing.T) {
	now := time.Now()
	bare := func(mut func(*ConnectParams)) ConnectParams {
		p := ConnectParams{MinProtocol: 3, MaxProtocol: 4, Role: "operator", Auth: &Auth{Token: "tok"}}
		if mut != nil {
			mut(&p)
		}
		return p
	}
	loop := Handshake{Token: "tok", Nonce: "n", Now: now, Loopback: true}
	if err := loop.Check(bare(nil)); err != nil {
		t.Fatalf("token without a device on loopback: %v", err)
	}
	if err := loop.Check(bare(func(p *ConnectParams) { p.Auth = &Auth{Password: "tok"} })); err != nil {
		t.Fatalf("the token as auth.password: %v", err)
	}
	if err := (Handshake{Nonce: "n", Now: now, Loopback: true}).Check(bare(func(p *ConnectParams) { p.Auth = nil })); err != nil {
		t.Fatalf("no token set, none sent: %v", err)
	}
	for _, c := range []struct {
		name string
		h    Handshake
		p    ConnectParams
		code string
		want string
	}{
		{"protocol 5 only", loop, bare(func(p *ConnectParams) { p.MinProtocol, p.MaxProtocol = 5, 5 }), CodeInvalidRequest, "PROTOCOL_MISMATCH"},
		{"protocol 3 only", loop, bare(func(p *ConnectParams) { p.MinProtocol, p.MaxProtocol = 3, 3 }), CodeInvalidRequest, "PROTOCOL_MISMATCH"},
		{"no token", loop, bare(func(p *ConnectParams) { p.Auth = nil }), CodeInvalidRequest, "AUTH_TOKEN_MISSING"},
		{"wrong token", loop, bare(func(p *ConnectParams) { p.Auth.Token = "nope" }), CodeInvalidRequest, "AUTH_TOKEN_MISMATCH"},
		{"no device from afar", Handshake{Token: "tok", Nonce: "n", Now: now}, bare(nil), CodeNotPaired, "DEVICE_IDENTITY_REQUIRED"},
	} {
		err := c.h.Check(c.p)
		if err == nil || err.Code != c.code || detailCode(err) != c.want {
			t.Errorf("%s: got %+v, want %s/%s", c.name, err, c.code, c.want)
		}
	}
	if err := loop.Check(bare(func(p *ConnectParams) { p.Role = "node" })); err == nil || !strings.Contains(err.Message, "node") {
		t.Errorf("role node: got %v, want a refusal naming the role", err)
	}
}

// OpenClaw's clients sign platform and deviceFamily trimmed and in ASCII
// lower case (its TUI sends deviceFamily "Linux" and signs "linux").
func TestDeviceSignatureNormalisesMetadata(t *testing.T) {
	now := time.Now()
	pub, priv, _ := ed25519.GenerateKey(nil)
	sum := sha256.Sum256(pub)
	id := hex.EncodeToString(sum[:])
	signedAt := now.UnixMilli()
	payload := strings.Join([]string{"v3", id, "openclaw-tui", "ui", "operator", "operator.admin,operator.read",
		strconv.FormatInt(signedAt, 10), "tok", "n-1", "linux", "linux"}, "|")
	p := ConnectParams{
		MinProtocol: 4, MaxProtocol: 4, Role: "operator", Scopes: []string{"operator.admin", "operator.read"},
		Client: ClientInfo{ID: "openclaw-tui", Platform: " Linux", Mode: "ui", DeviceFamily: "Linux"},
		Auth:   &Auth{Token: "tok"},
		Device: &Device{ID: id, PublicKey: base64.RawURLEncoding.EncodeToString(pub), SignedAt: signedAt, Nonce: "n-1",
			Signature: base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(payload)))},
	}
	if err := (Handshake{Token: "tok", Nonce: "n-1", Now: now}).Check(p); err != nil {
		t.Fatalf("signature over normalised metadata refused: %v", err)
	}
}
