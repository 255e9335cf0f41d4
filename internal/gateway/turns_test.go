package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestAbort: abort cancels the running turn, which is persisted with what it
// had produced and marked aborted; the message queued behind it still runs.
func TestAbort(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[
		{"text": "one two three four five six seven eight", "chunkDelayMs": 200},
		{"text": "after the abort"}
	]`)
	c := ts.dial(t, "/ws?sessionId=abort")
	watcher := ts.dial(t, "/ws?sessionId=abort")

	c.message("start something long")
	c.message("then this") // queued behind the slow turn
	first := c.expect("chunk")
	c.send(map[string]string{"type": "abort"})

	// The slow turn ends with an aborted error; chunks may still arrive
	// before it, never after.
	partial := []string{first.Content}
	var end event
	for end.Type == "" {
		switch ev := c.next(); ev.Type {
		case "chunk":
			partial = append(partial, ev.Content)
		case "error":
			end = ev
		default:
			t.Fatalf("unexpected event while aborting: %s", ev.Raw)
		}
	}
	if end.Code != "aborted" || end.SessionID != "abort" {
		t.Fatalf("the aborted turn ended with %s, want code aborted on session abort", end.Raw)
	}
	text := strings.Join(partial, "")
	if text == "" || text == "one two three four five six seven eight" {
		t.Fatalf("partial reply %q: the abort did not cut the turn short", text)
	}

	// Every tab sees the same: the partial stream and the aborted error.
	wt := watcher.readTurn()
	if wt.text() != text || wt.done.Code != "aborted" {
		t.Fatalf("the other tab saw %q then %s, want %q then aborted", wt.text(), wt.done.Raw, text)
	}

	// The queued message runs next, normally.
	for _, cl := range []*client{c, watcher} {
		if tn := cl.readTurn(); tn.done.Type != "message_done" || tn.done.Content != "after the abort" {
			t.Fatalf("queued turn ended with %s", tn.done.Raw)
		}
	}

	lines := ts.readJSONL(t, "abort")
	wantTranscript(t, lines,
		"user", "start something long", "assistant", text,
		"user", "then this", "assistant", "after the abort")
	if lines[1].Fields["status"] != "aborted" {
		t.Errorf("aborted reply's line has status %v, want aborted: %v", lines[1].Fields["status"], lines[1].Fields)
	}
	if _, ok := lines[3].Fields["status"]; ok {
		t.Errorf("the normal reply after it has a status: %v", lines[3].Fields)
	}

	// Nothing runs now: abort is refused, and the connection works on.
	c.send(map[string]string{"type": "abort"})
	if ev := c.expectError("not_running"); ev.SessionID != "abort" {
		t.Fatalf("not_running names %q, want abort", ev.SessionID)
	}
	c.ping()
}

// TestAbortLastLine: when nothing is queued, an aborted turn's assistant
// line is the transcript's last line, on disk by the time the error arrives.
func TestAbortLastLine(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[{"text": "alpha beta gamma delta epsilon", "chunkDelayMs": 200}]`)
	c := ts.dial(t, "/ws?sessionId=abort-last")
	c.message("go")
	c.expect("chunk")
	c.send(map[string]string{"type": "abort"})
	tn := c.readTurn()
	if tn.done.Code != "aborted" {
		t.Fatalf("turn ended with %s, want aborted", tn.done.Raw)
	}
	lines := ts.readJSONL(t, "abort-last")
	last := lines[len(lines)-1]
	if len(lines) != 2 || last.Role != "assistant" || last.Fields["status"] != "aborted" || !strings.HasPrefix(last.Content, "alpha ") {
		t.Fatalf("transcript %+v: want the user line then the aborted partial reply", lines)
	}
	if m := ts.readMeta(t, "abort-last"); m.MessageCount != 2 {
		t.Fatalf("meta counts %d messages, want 2", m.MessageCount)
	}
}

// TestDisconnectMidTurn: a client that leaves while its turn streams does
// not lose the turn; a new client with the session ID finds it complete.
func TestDisconnectMidTurn(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[{"text": "you left before I finished this sentence", "chunkDelayMs": 30}]`)
	c := ts.dial(t, "/ws?sessionId=left")
	c.message("talk to me")
	c.expect("chunk")
	if err := c.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}

	var v sessionView
	eventually(t, "the turn to finish without its client", func() bool {
		ts.doJSON(t, "GET", "/api/sessions/left", nil, http.StatusOK, &v)
		return !v.Session.Busy && v.Total == 2
	})

	again := ts.dial(t, "/ws?sessionId=left")
	if !again.resumed {
		t.Fatal("reconnect: resumed = false")
	}
	ts.doJSON(t, "GET", "/api/sessions/left", nil, http.StatusOK, &v)
	if len(v.Messages) != 2 || v.Session.MessageCount != 2 || v.Total != 2 {
		t.Fatalf("GET /api/sessions/left = %+v, want the 2 messages of the turn", v)
	}
	if m := v.Messages[1]; m.Role != "assistant" || m.Content != "you left before I finished this sentence" || m.Status != "" {
		t.Fatalf("the reply was not completed: %+v", m)
	}
	// The reconnected client carries on in the same conversation.
	if tn := again.chat("still there?"); tn.done.Content != "you left before I finished this sentence" {
		t.Fatalf("next turn got %s", tn.done.Raw)
	}
}

// TestIdleOnceTurnEnds: the event that ends a turn is sent only once the
// session is idle again, so a client can act on it at once: an abort then
// answers not_running, the API says not busy, and archive is allowed.
func TestIdleOnceTurnEnds(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=idle")
	var v sessionView
	for i := range 20 {
		c.chat("round")
		c.send(map[string]string{"type": "abort"})
		c.expectError("not_running") // not a silent cancel of a finished turn
		ts.doJSON(t, "GET", "/api/sessions/idle?limit=1", nil, http.StatusOK, &v)
		if v.Session.Busy || v.Total != 2*(i+1) {
			t.Fatalf("round %d: after message_done the session is %+v, want idle with %d messages", i, v.Session, 2*(i+1))
		}
	}
	ts.doJSON(t, "POST", "/api/sessions/idle/archive", nil, http.StatusOK, nil)
}
