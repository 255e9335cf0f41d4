package protocol

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// wireForm is how a client would send ev: the fields of its type, optional
// ones left out when empty.
func wireForm(ev ClientEvent) map[string]any {
	m := map[string]any{"type": ev.Type}
	if ev.SessionID != "" {
		m["sessionId"] = ev.SessionID
	}
	if ev.Type == TypeMessage {
		m["content"] = ev.Content
	}
	return m
}

func FuzzDecodeClientEvent(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzDecodeClientEvent.
	f.Add([]byte(`{"type":"message","sessionId":"s","content":"hi"}`))
	f.Add([]byte(`{"type":"ping"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ev, derr := DecodeClientEvent(frame)
		if derr != nil {
			switch derr.Code {
			case CodeBadJSON, CodeUnknownType, CodeBadRequest:
			default:
				t.Fatalf("DecodeClientEvent(%q): code %q is not a decode code", frame, derr.Code)
			}
			if derr.Message == "" {
				t.Fatalf("DecodeClientEvent(%q): empty error message", frame)
			}
			if ev != (ClientEvent{}) {
				t.Fatalf("DecodeClientEvent(%q) = %+v with error %v; want zero event", frame, ev, derr)
			}
			return
		}
		if !utf8.Valid(frame) {
			t.Fatalf("DecodeClientEvent(%q): accepted invalid UTF-8", frame)
		}
		switch ev.Type {
		case TypeMessage:
			if ev.Content == "" {
				t.Fatalf("DecodeClientEvent(%q): message with empty content accepted", frame)
			}
		case TypePing:
			if ev.SessionID != "" || ev.Content != "" {
				t.Fatalf("DecodeClientEvent(%q): ping carries fields: %+v", frame, ev)
			}
		case TypeAbort:
			if ev.Content != "" {
				t.Fatalf("DecodeClientEvent(%q): abort carries content: %+v", frame, ev)
			}
		default:
			t.Fatalf("DecodeClientEvent(%q): accepted type %q", frame, ev.Type)
		}
		if ev.SessionID != "" {
			if err := ValidateSessionID(ev.SessionID); err != nil {
				t.Fatalf("DecodeClientEvent(%q): accepted invalid session ID %q: %v", frame, ev.SessionID, err)
			}
		}
		again, err := json.Marshal(wireForm(ev))
		if err != nil {
			t.Fatalf("re-encode %+v: %v", ev, err)
		}
		ev2, derr := DecodeClientEvent(again)
		if derr != nil {
			t.Fatalf("DecodeClientEvent(%q) = %+v, but its re-encoding %s is refused: %v", frame, ev, again, derr)
		}
		if ev2 != ev {
			t.Fatalf("round trip changed the event:\n frame %q\n first %+v\n again %s\nsecond %+v", frame, ev, again, ev2)
		}
	})
}
