package gateway_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestFanOutToEveryTab: two connections on one session both see the whole
// stream of a turn, whichever of them sent the message.
func TestFanOutToEveryTab(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	a := ts.dial(t, "/ws?sessionId=shared")
	b := ts.dial(t, "/ws?sessionId=shared")
	if !b.resumed {
		t.Fatal("second tab on an existing session: resumed = false")
	}

	a.message("one two three four")
	ta, tb := a.readTurn(), b.readTurn()
	for name, tn := range map[string]turn{"sender": ta, "other tab": tb} {
		if tn.done.Type != "message_done" || tn.done.Content != "echo: one two three four" || tn.text() != tn.done.Content {
			t.Errorf("%s saw chunks %q then %s", name, tn.chunks, tn.done.Raw)
		}
	}
	if !slices.Equal(ta.chunks, tb.chunks) || len(ta.chunks) < 2 {
		t.Errorf("tabs saw different streams: %q and %q", ta.chunks, tb.chunks)
	}

	// The other way round, and a third tab joining later sees the next turn.
	c := ts.dial(t, "/ws?sessionId=shared")
	b.message("from b")
	for _, cl := range []*client{a, b, c} {
		if tn := cl.readTurn(); tn.done.Content != "echo: from b" {
			t.Errorf("a tab saw %s, want echo: from b", tn.done.Raw)
		}
	}
	wantTranscript(t, ts.readJSONL(t, "shared"),
		"user", "one two three four", "assistant", "echo: one two three four",
		"user", "from b", "assistant", "echo: from b")
}

// TestHundredSessionsInParallel: 100 clients, each on its own session, all
// send at once; every one gets its own echo and its own transcript.
func TestHundredSessionsInParallel(t *testing.T) {
	t.Parallel()
	const n = 100
	ts := echoServer(t)
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = ts.dial(t, fmt.Sprintf("/ws?sessionId=par-%03d", i))
	}
	// Send everything before reading anything, so the lanes overlap.
	for i, c := range clients {
		c.message(fmt.Sprintf("hello from client %d", i))
	}
	for i, c := range clients {
		id := fmt.Sprintf("par-%03d", i)
		want := fmt.Sprintf("echo: hello from client %d", i)
		tn := c.readTurn()
		if tn.done.Type != "message_done" || tn.done.SessionID != id || tn.done.Content != want || tn.text() != want {
			t.Fatalf("client %d saw chunks %q then %s, want %q on %s", i, tn.chunks, tn.done.Raw, want, id)
		}
	}
	for i := range clients {
		id := fmt.Sprintf("par-%03d", i)
		wantTranscript(t, ts.readJSONL(t, id),
			"user", fmt.Sprintf("hello from client %d", i),
			"assistant", fmt.Sprintf("echo: hello from client %d", i))
		if m := ts.readMeta(t, id); m.MessageCount != 2 {
			t.Errorf("%s: messageCount %d, want 2", id, m.MessageCount)
		}
	}
	var ready struct {
		Sessions    int `json:"sessions"`
		Connections int `json:"connections"`
	}
	ts.doJSON(t, "GET", "/readyz", nil, 200, &ready)
	if ready.Sessions != n || ready.Connections != n {
		t.Errorf("readyz counts %d sessions and %d connections, want %d of each", ready.Sessions, ready.Connections, n)
	}
}

// TestLaneRunsTurnsInOrder: messages sent while their session is busy queue
// up and run one at a time, in order; the transcript never interleaves.
func TestLaneRunsTurnsInOrder(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[
		{"text": "first reply takes a while to stream", "chunkDelayMs": 40},
		{"text": "second reply"},
		{"text": "third reply, also slow", "chunkDelayMs": 20},
		{"text": "fourth reply is slow", "chunkDelayMs": 300}
	]`)
	c := ts.dial(t, "/ws?sessionId=lane")
	watcher := ts.dial(t, "/ws?sessionId=lane")

	for _, m := range []string{"m1", "m2", "m3"} {
		c.message(m)
	}
	want := []string{"first reply takes a while to stream", "second reply", "third reply, also slow"}
	for _, cl := range []*client{c, watcher} {
		for i, w := range want {
			tn := cl.readTurn() // fails on anything but this turn's chunks and its end
			if tn.done.Type != "message_done" || tn.done.Content != w || tn.text() != w {
				t.Fatalf("turn %d: chunks %q then %s, want %q", i+1, tn.chunks, tn.done.Raw, w)
			}
		}
	}
	lines := ts.readJSONL(t, "lane")
	wantTranscript(t, lines,
		"user", "m1", "assistant", want[0],
		"user", "m2", "assistant", want[1],
		"user", "m3", "assistant", want[2])
	for i := 1; i < len(lines); i++ {
		if lines[i].Timestamp < lines[i-1].Timestamp {
			t.Errorf("line %d is stamped before line %d", i+1, i)
		}
	}

	// While a turn runs, the session reports busy; a queued message too.
	c.message("m4")
	c.expect("chunk")
	var v sessionView
	ts.doJSON(t, "GET", "/api/sessions/lane", nil, 200, &v)
	if !v.Session.Busy {
		t.Errorf("session not busy while its turn streams")
	}
	if tn := c.readTurn(); tn.done.Content != "fourth reply is slow" {
		t.Fatalf("fourth turn ended with %s", tn.done.Raw)
	}
}

// TestSessionsRunInParallel: a slow turn on one session does not hold up
// another session.
func TestSessionsRunInParallel(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[
		{"text": "slow slow slow slow slow slow slow slow slow slow", "chunkDelayMs": 300},
		{"text": "quick"}
	]`)
	slow := ts.dial(t, "/ws?sessionId=slow")
	quick := ts.dial(t, "/ws?sessionId=quick")
	slow.message("take your time")
	slow.expect("chunk") // the slow turn holds the first script turn and runs
	if tn := quick.chat("hurry"); tn.done.Content != "quick" {
		t.Fatalf("quick session got %s", tn.done.Raw)
	}
	// The slow turn has at least 2.7s left: it cannot have finished first.
	var v sessionView
	ts.doJSON(t, "GET", "/api/sessions/slow", nil, 200, &v)
	if !v.Session.Busy {
		t.Fatalf("slow session finished before the quick one: the lanes did not overlap")
	}
	slow.send(map[string]string{"type": "abort"})
	for {
		if ev := slow.next(); ev.Type == "error" {
			if ev.Code != "aborted" {
				t.Fatalf("abort ended the turn with %s", ev.Raw)
			}
			break
		}
	}
}

// TestConnectedComesFirstOnBusySession: a client joining a session while
// its turn streams gets connected before any of that turn's events.
func TestConnectedComesFirstOnBusySession(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	sender := ts.dial(t, "/ws?sessionId=busy")
	sender.message(strings.TrimSuffix(strings.Repeat("word ", 3000), " "))
	sender.expect("chunk")
	for range 40 {
		ts.dial(t, "/ws?sessionId=busy") // fails unless connected is the first event
	}
	sender.readTurn()
}

// TestJoinerSeesTheNextTurn: a client that has read its connected event is
// attached, so a turn another client starts right then reaches it whole.
func TestJoinerSeesTheNextTurn(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	a := ts.dial(t, "/ws?sessionId=join")
	for i := range 30 {
		b := ts.dial(t, "/ws?sessionId=join")
		a.message(fmt.Sprintf("turn %d", i))
		a.readTurn()
		if tn := b.readTurn(); tn.done.Content != fmt.Sprintf("echo: turn %d", i) {
			t.Fatalf("round %d: the joiner's turn ended with %s", i, tn.done.Raw)
		}
		b.ws.CloseNow()
	}
}
