package openclaw

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// Session keys. OpenClaw names a conversation by a key such as
// "agent:main:main" (agent "main", its main session); clients may send the
// bare alias "main". miniclaw names it by a session ID, 1–128 characters of
// A-Za-z0-9._- (a file name). The mapping, both ways and reversible:
//
//   - a bare key K (no ':') is the key agent:main:K; "" is agent:main:main;
//   - agent:main:ID, where ID is a valid session ID, is the session ID, so
//     OpenClaw's main session is miniclaw's session "main" and every
//     miniclaw session S is agent:main:S to OpenClaw;
//   - any other key (another agent, a key with ':' or other characters in
//     its rest) is the ID "oc_" + the key in unpadded base64url, when that
//     fits in 128 characters (keys up to 93 bytes).
//
// An ID starting with "oc_" maps back to the key it encodes only when that
// key would be encoded so (else it is agent:main:<ID>), so ID → key → ID
// always round-trips.

// MainKey is the key of the main agent's main session.
const MainKey = "agent:main:main"

const (
	agentMainPrefix = "agent:main:"
	encodedPrefix   = "oc_"
)

// CanonicalKey is the agent-qualified form of a key clients may send bare.
func CanonicalKey(key string) string {
	switch {
	case key == "":
		return MainKey
	case !strings.Contains(key, ":"):
		return agentMainPrefix + key
	}
	return key
}

// SessionID is the miniclaw session ID of a session key.
func SessionID(key string) (string, error) {
	key = CanonicalKey(key)
	if rest, ok := strings.CutPrefix(key, agentMainPrefix); ok && protocol.ValidateSessionID(rest) == nil {
		return rest, nil
	}
	id := encodedPrefix + base64.RawURLEncoding.EncodeToString([]byte(key))
	if err := protocol.ValidateSessionID(id); err != nil {
		return "", fmt.Errorf("session key %q is too long to map to a session ID (at most 93 bytes unless it is agent:main:<session ID>)", key)
	}
	return id, nil
}

// SessionKey is the OpenClaw session key of a miniclaw session ID.
func SessionKey(id string) string {
	if enc, ok := strings.CutPrefix(id, encodedPrefix); ok {
		if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
			key := string(b)
			if back, err := SessionID(key); err == nil && back == id && key == CanonicalKey(key) {
				return key
			}
		}
	}
	return agentMainPrefix + id
}
