package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestBadInputKeepsTheConnection: every malformed frame gets one error event
// with a stable code, and the same connection goes on working.
func TestBadInputKeepsTheConnection(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	cases := []struct {
		name, frame, code string
	}{
		{"invalid JSON", `{"type":"message",`, "bad_json"},
		{"not JSON at all", `hello`, "bad_json"},
		{"JSON array", `["message"]`, "bad_json"},
		{"JSON string", `"message"`, "bad_json"},
		{"null", `null`, "bad_json"},
		{"two objects", `{"type":"ping"}{"type":"ping"}`, "bad_json"},
		{"empty frame", ``, "bad_json"},
		{"unknown type", `{"type":"dance"}`, "unknown_type"},
		{"missing type", `{"content":"hi"}`, "bad_request"},
		{"type not a string", `{"type":7}`, "bad_request"},
		{"missing content", `{"type":"message"}`, "bad_request"},
		{"content a number", `{"type":"message","content":42}`, "bad_request"},
		{"content null", `{"type":"message","content":null}`, "bad_request"},
		{"content empty", `{"type":"message","content":""}`, "bad_request"},
		{"unknown field", `{"type":"message","content":"hi","sessionID":"x"}`, "bad_request"},
		{"field on ping", `{"type":"ping","content":"x"}`, "bad_request"},
		{"sessionId a number", `{"type":"message","content":"hi","sessionId":5}`, "bad_request"},
		{"sessionId a path", `{"type":"message","content":"hi","sessionId":"../x"}`, "bad_request"},
		{"abort with a bad sessionId", `{"type":"abort","sessionId":".x"}`, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := ts.dial(t, "/ws?sessionId=bad-"+strings.ReplaceAll(tc.name, " ", "-"))
			c.sendRaw(tc.frame)
			c.expectError(tc.code)
			c.ping()
			want := "echo: still " + tc.name
			if tn := c.chat("still " + tc.name); tn.done.Content != want {
				t.Fatalf("after %s: chat got %q, want %q", tc.name, tn.done.Content, want)
			}
		})
	}
	// Nothing above reached a transcript except the chats.
	t.Cleanup(func() {
		for _, m := range mustList(t, ts.store) {
			if m.MessageCount != 2 {
				t.Errorf("%s holds %d messages, want only its chat's 2", m.SessionID, m.MessageCount)
			}
		}
	})
}

// TestOversizedFrameCloses1009: a frame over 1 MiB closes its connection with
// 1009; a frame of exactly 1 MiB is fine; other connections are unaffected.
func TestOversizedFrameCloses1009(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	bystander := ts.dial(t, "/ws?sessionId=bystander")

	// A ping padded with spaces to exactly 1 MiB is a valid frame.
	exact := ts.dial(t, "/ws?sessionId=exact")
	ping := `{"type":"ping"}`
	exact.sendRaw(ping + strings.Repeat(" ", 1<<20-len(ping)))
	exact.expect("pong")

	big := ts.dial(t, "/ws?sessionId=big")
	// One byte more, as a message, which must never reach the transcript.
	frame := `{"type":"message","content":"` + strings.Repeat("x", 1<<20) + `"}`
	big.sendRaw(frame)
	big.expectClose(websocket.StatusMessageTooBig)

	wantStillServing(t, ts, bystander, 3) // bystander, exact, fresh
	if lines := ts.readJSONL(t, "big"); len(lines) != 0 {
		t.Fatalf("the oversized message reached the transcript: %d lines", len(lines))
	}
}

// TestBinaryFrameCloses1003: binary frames are refused with close 1003.
func TestBinaryFrameCloses1003(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	bystander := ts.dial(t, "/ws?sessionId=bystander")
	c := ts.dial(t, "/ws?sessionId=binary")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte(`{"type":"message","content":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	c.expectClose(websocket.StatusUnsupportedData)
	wantStillServing(t, ts, bystander, 2) // bystander, fresh
}

// wantStillServing checks that after another connection was closed for bad
// input, the server and an existing connection work, and so does a new one;
// only the wantConns open connections are counted.
func wantStillServing(t *testing.T, ts *testServer, existing *client, wantConns int) {
	t.Helper()
	existing.ping()
	if tn := existing.chat("are you there"); tn.done.Content != "echo: are you there" {
		t.Fatalf("existing connection got %s", tn.done.Raw)
	}
	fresh := ts.dial(t, "/ws?sessionId=fresh")
	fresh.chat("new one")
	if status, body := ts.do(t, "GET", "/healthz", nil, nil); status != http.StatusOK {
		t.Fatalf("/healthz = %d %s", status, body)
	}
	// The closed connection is no longer counted.
	var h struct {
		Connections int `json:"connections"`
	}
	eventually(t, "the closed connection to be released", func() bool {
		ts.doJSON(t, "GET", "/healthz", nil, http.StatusOK, &h)
		return h.Connections == wantConns
	})
}
