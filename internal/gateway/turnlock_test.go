package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/gateway"
)

func withTurnLockTimeout(d time.Duration) func(*gateway.Options) {
	return func(o *gateway.Options) { o.TurnLockTimeout = d }
}

// holdTurn takes the session's turn lock as another gateway process would
// (the lock is an flock per open file, so the test's own open conflicts
// with the gateway's). The returned func releases it.
func (ts *testServer) holdTurn(t *testing.T, id string) func() {
	t.Helper()
	l, err := ts.store.LockTurn(context.Background(), id, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Unlock
}

// expectStatus reads a status event of the session in state.
func (c *client) expectStatus(state string) {
	c.t.Helper()
	ev := c.expect("status")
	f := ev.fields(c.t)
	if f["sessionId"] != c.sessionID || f["state"] != state || !strings.Contains(ev.Message, "another process") {
		c.t.Fatalf("got %s, want a status %q of session %s saying it waits for another process", ev.Raw, state, c.sessionID)
	}
}

// transcript is the session's messages on disk, as "role: content".
func (ts *testServer) transcript(t *testing.T, id string) string {
	t.Helper()
	msgs, _, err := ts.store.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Role)+": "+m.Content)
	}
	return strings.Join(out, "\n")
}

// TestTurnWaitsForAnotherProcess: while another process runs a turn of the
// session, a message waits (its clients are told) without touching the
// transcript; an abort ends the wait, and the release lets the turn run.
func TestTurnWaitsForAnotherProcess(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=shared")
	watcher := ts.dial(t, "/ws?sessionId=shared")
	release := ts.holdTurn(t, "shared")

	c.message("aborted while waiting")
	c.expectStatus("waiting")
	watcher.expectStatus("waiting")
	if got := ts.transcript(t, "shared"); got != "" {
		t.Fatalf("a waiting turn wrote to the transcript: %q", got)
	}
	c.send(map[string]string{"type": "abort"})
	if ev := c.expectError("aborted"); !strings.Contains(ev.Message, "not saved") {
		t.Fatalf("abort while waiting: %s, want it to say the message was not saved", ev.Raw)
	}
	watcher.expectError("aborted")

	c.message("runs after the release")
	c.expectStatus("waiting")
	watcher.expectStatus("waiting")
	release()
	for _, cl := range []*client{c, watcher} {
		cl.expectStatus("running")
		if tn := cl.readTurn(); tn.done.Type != "message_done" || tn.done.Content != "echo: runs after the release" {
			t.Fatalf("turn after the release ended with %s", tn.done.Raw)
		}
	}
	if got, want := ts.transcript(t, "shared"), "user: runs after the release\nassistant: echo: runs after the release"; got != want {
		t.Fatalf("transcript:\n%s\nwant:\n%s", got, want)
	}

	// With the lock free, a turn sends no status at all.
	c.chat("no wait")
}

// TestTurnLockTimeout: a turn that waits longer than the timeout fails with
// conflict and a message saying why, and saves nothing.
func TestTurnLockTimeout(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, withTurnLockTimeout(50*time.Millisecond))
	c := ts.dial(t, "/ws?sessionId=stuck")
	defer ts.holdTurn(t, "stuck")()

	c.message("hello")
	c.expectStatus("waiting")
	if ev := c.expectError("conflict"); !strings.Contains(ev.Message, "another process") || !strings.Contains(ev.Message, "50ms") {
		t.Fatalf("timeout error %s, want it to name the other process and the timeout", ev.Raw)
	}
	if got := ts.transcript(t, "stuck"); got != "" {
		t.Fatalf("a turn that timed out wrote to the transcript: %q", got)
	}
}
