package openclaw

import (
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

func TestSessionKeyMapping(t *testing.T) {
	for key, id := range map[string]string{
		"main":                "main",
		"":                    "main",
		"agent:main:main":     "main",
		"work-1":              "work-1",
		"agent:main:a.b_c":    "a.b_c",
		"agent:ops:main":      "oc_YWdlbnQ6b3BzOm1haW4",
		"agent:main:tg:dm:42": "oc_YWdlbnQ6bWFpbjp0ZzpkbTo0Mg",
	} {
		got, err := SessionID(key)
		if err != nil || got != id {
			t.Errorf("SessionID(%q) = %q, %v; want %q", key, got, err, id)
			continue
		}
		if err := protocol.ValidateSessionID(got); err != nil {
			t.Errorf("SessionID(%q) = %q, not a valid session ID: %v", key, got, err)
		}
		if back := SessionKey(got); back != CanonicalKey(key) {
			t.Errorf("SessionKey(%q) = %q; want %q", got, back, CanonicalKey(key))
		}
	}
	// Every miniclaw ID round-trips, "oc_" look-alikes included.
	for _, id := range []string{"main", "0b3c-uuid", "oc_", "oc_zz", "oc_YWdlbnQ6bWFpbjptYWlu", "oc_bWFpbg"} {
		back, err := SessionID(SessionKey(id))
		if err != nil || back != id {
			t.Errorf("SessionID(SessionKey(%q)) = %q, %v", id, back, err)
		}
	}
	if _, err := SessionID("agent:x:" + strings.Repeat("y", 100)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("long key: got %v, want a too long error", err)
	}
}
