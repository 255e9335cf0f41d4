package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSessionSelection covers which session a new connection gets.
func TestSessionSelection(t *testing.T) {
	t.Parallel()

	t.Run("no session yet creates one, the next connection resumes it", func(t *testing.T) {
		t.Parallel()
		ts := echoServer(t)
		first := ts.dial(t, "/ws")
		if first.resumed {
			t.Fatal("first connection: resumed = true")
		}
		second := ts.dial(t, "/ws")
		if !second.resumed || second.sessionID != first.sessionID {
			t.Fatalf("second tab got %s resumed %v, want %s resumed", second.sessionID, second.resumed, first.sessionID)
		}
	})

	t.Run("reconnect with sessionId resumes it", func(t *testing.T) {
		t.Parallel()
		ts := echoServer(t)
		c := ts.dial(t, "/ws")
		c.chat("remember me")
		c.ws.CloseNow()

		again := ts.dial(t, "/ws?sessionId="+c.sessionID)
		if !again.resumed || again.sessionID != c.sessionID {
			t.Fatalf("reconnect got %s resumed %v, want %s resumed", again.sessionID, again.resumed, c.sessionID)
		}
		again.chat("and again")
		wantTranscript(t, ts.readJSONL(t, c.sessionID),
			"user", "remember me", "assistant", "echo: remember me",
			"user", "and again", "assistant", "echo: and again")
	})

	t.Run("unknown sessionId creates exactly that ID", func(t *testing.T) {
		t.Parallel()
		ts := echoServer(t)
		c := ts.dial(t, "/ws?sessionId=custom-1")
		if c.resumed || c.sessionID != "custom-1" {
			t.Fatalf("got %s resumed %v, want custom-1 not resumed", c.sessionID, c.resumed)
		}
		tn := c.chat("hi")
		if tn.done.SessionID != "custom-1" {
			t.Fatalf("message_done sessionId %q", tn.done.SessionID)
		}
		if m := ts.readMeta(t, "custom-1"); m.SessionID != "custom-1" || m.MessageCount != 2 {
			t.Fatalf("custom-1.meta.json = %+v", m)
		}
		long := strings.Repeat("a", 128)
		if c := ts.dial(t, "/ws?sessionId="+long); c.sessionID != long {
			t.Fatalf("a 128-character ID was not kept: %s", c.sessionID)
		}
	})

	t.Run("no sessionId picks the most recent webchat session", func(t *testing.T) {
		t.Parallel()
		ts := echoServer(t)
		ts.dial(t, "/ws?sessionId=sess-a").chat("first")
		ts.dial(t, "/ws?sessionId=sess-b").chat("second") // later (and sorts after on a tie)
		// A session of another channel is never picked, however recent.
		ts.doJSON(t, "POST", "/api/sessions", map[string]string{"sessionId": "zz-other", "channel": "cli"}, http.StatusCreated, nil)

		c := ts.dial(t, "/ws")
		if c.sessionID != "sess-b" || !c.resumed {
			t.Fatalf("got %s resumed %v, want sess-b resumed", c.sessionID, c.resumed)
		}
		// Activity on sess-a makes it the most recent. Updates are stamped in
		// milliseconds, so let the clock pass sess-b's last one first.
		last := ts.readMeta(t, "sess-b").UpdatedAt
		eventually(t, "the clock to pass sess-b's last update", func() bool { return time.Now().UnixMilli() > last })
		ts.dial(t, "/ws?sessionId=sess-a").chat("third")
		if c := ts.dial(t, "/ws"); c.sessionID != "sess-a" {
			t.Fatalf("after activity on sess-a a new tab got %s, want sess-a", c.sessionID)
		}
	})

	t.Run("invalid sessionId is refused with 400 before the upgrade", func(t *testing.T) {
		t.Parallel()
		ts := echoServer(t)
		for _, id := range []string{"../x", ".hidden", "a/b", "sp ace", strings.Repeat("a", 129), "é"} {
			if got := ts.dialStatus(t, "/ws?sessionId="+url.QueryEscape(id), nil); got != http.StatusBadRequest {
				t.Errorf("sessionId %q: status %d, want 400", id, got)
			}
		}
		if n := len(mustList(t, ts.store)); n != 0 {
			t.Errorf("refused connections created %d session(s)", n)
		}
	})
}

// TestMessageSessionIDRoutes: a message naming a session runs there, and the
// connection moves to that session's events.
func TestMessageSessionIDRoutes(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=home")

	c.send(map[string]string{"type": "message", "sessionId": "elsewhere", "content": "routed"})
	tn := c.readTurn()
	if tn.done.Type != "message_done" || tn.done.SessionID != "elsewhere" || tn.done.Content != "echo: routed" {
		t.Fatalf("routed turn ended with %s", tn.done.Raw)
	}
	wantTranscript(t, ts.readJSONL(t, "elsewhere"), "user", "routed", "assistant", "echo: routed")
	if lines := ts.readJSONL(t, "home"); len(lines) != 0 {
		t.Fatalf("home got %d lines, want none", len(lines))
	}

	// A message without sessionId now goes to the session the connection moved to.
	if tn := c.chat("follow-up"); tn.done.SessionID != "elsewhere" {
		t.Fatalf("follow-up ran on %s, want elsewhere", tn.done.SessionID)
	}

	// The connection left home: home's events no longer reach it. Its next
	// event after a turn on home has finished is the pong to its own ping.
	other := ts.dial(t, "/ws?sessionId=home")
	other.chat("only for home")
	c.ping()

	// An existing session can be named too, and its history is kept.
	c.send(map[string]string{"type": "message", "sessionId": "home", "content": "back home"})
	if tn := c.readTurn(); tn.done.SessionID != "home" || tn.done.Content != "echo: back home" {
		t.Fatalf("turn on home ended with %s", tn.done.Raw)
	}
	wantTranscript(t, ts.readJSONL(t, "home"),
		"user", "only for home", "assistant", "echo: only for home",
		"user", "back home", "assistant", "echo: back home")
}

// TestAbortNamesItsSession: abort with a sessionId reaches that session's
// turn; an abort naming an idle session is refused with not_running.
func TestAbortNamesItsSession(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=idle-1")
	c.send(map[string]string{"type": "abort", "sessionId": "nobody-here"})
	if ev := c.expectError("not_running"); ev.SessionID != "nobody-here" {
		t.Fatalf("not_running error names session %q, want nobody-here", ev.SessionID)
	}
	c.send(map[string]string{"type": "abort"})
	if ev := c.expectError("not_running"); ev.SessionID != "idle-1" {
		t.Fatalf("not_running error names session %q, want idle-1", ev.SessionID)
	}
	c.chat("still fine")
}
