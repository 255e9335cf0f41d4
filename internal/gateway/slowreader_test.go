package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/gateway"
)

// TestFastBurstKeepsAReadingClient: a reply streamed faster than one
// connection can write it (5,000 chunks at once) reaches a client that is
// reading, whole, instead of getting it closed as a slow reader.
func TestFastBurstKeepsAReadingClient(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	a := ts.dial(t, "/ws?sessionId=burst")
	b := ts.dial(t, "/ws?sessionId=burst")
	long := strings.TrimSuffix(strings.Repeat("word ", 5000), " ")
	a.message(long)
	for _, c := range []*client{a, b} {
		tn := c.readTurn()
		if tn.done.Type != "message_done" || tn.done.Content != "echo: "+long {
			t.Fatalf("turn ended with a %s event (code %q), want message_done with the whole echo", tn.done.Type, tn.done.Code)
		}
		if tn.text() != tn.done.Content {
			t.Fatalf("%d chunks add up to %d bytes, want the %d of the reply", len(tn.chunks), len(tn.text()), len(tn.done.Content))
		}
		t.Logf("the reply's 5001 model chunks reached a client as %d chunks", len(tn.chunks))
	}
	a.ping()
	b.ping()
}

// TestLargeReplyKeepsAReadingClient: the largest reply a message can ask
// of the echo provider (chunks and message_done of about 1 MiB each) is
// delivered whole to a client that reads.
func TestLargeReplyKeepsAReadingClient(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=large")
	word := strings.Repeat("x", 100<<10)
	content := strings.TrimSuffix(strings.Repeat(word+" ", 10), " ") // a frame just under 1 MiB
	c.message(content)
	tn := c.readTurn()
	if tn.done.Type != "message_done" || tn.done.Content != "echo: "+content || tn.text() != tn.done.Content {
		t.Fatalf("turn ended with a %s event (code %q) after %d bytes of chunks", tn.done.Type, tn.done.Code, len(tn.text()))
	}
	c.ping()
}

// TestSlowReaderIsClosed: a client that stops reading while replies stream
// to it is closed once its send queue overflows, and meanwhile a client on
// another session gets its replies promptly.
func TestSlowReaderIsClosed(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, func(o *gateway.Options) { o.MaxContext = 2 })
	normal := ts.dial(t, "/ws?sessionId=normal")
	slow := ts.dial(t, "/ws?sessionId=slow")

	// Each message is echoed back as about 1.9 MB (its chunks, then
	// message_done): a few fill the socket buffers, the next ones the send
	// queue (4 MiB).
	word := strings.Repeat("w", 190<<10)
	big := `{"type":"message","content":"` + strings.TrimSuffix(strings.Repeat(word+" ", 5), " ") + `"}`
	sent, refused, lastSent := 0, false, time.Time{}
	sendBig := func() {
		if refused || sent >= 12 {
			return
		}
		lastSent = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := slow.ws.Write(ctx, websocket.MessageText, []byte(big)); err != nil {
			refused = true // the server has closed this connection
			return
		}
		sent++
	}
	for range 5 {
		sendBig()
	}

	// The normal client keeps getting quick replies until the slow one is
	// gone (the server then counts a single connection). Meanwhile the slow
	// client sends one more a second, in case the socket buffers hold more
	// than usual.
	const prompt = 3 * time.Second // generous for -race: the point is "not stuck behind the slow reader"
	deadline := time.Now().Add(30 * time.Second)
	rounds := 0
	for ts.srv.Connections() > 1 || rounds < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow reader was not closed within 30s (%d connections open, %d messages sent)", ts.srv.Connections(), sent)
		}
		if time.Since(lastSent) > time.Second {
			sendBig()
		}
		start := time.Now()
		if tn := normal.chat("ping me"); tn.done.Content != "echo: ping me" {
			t.Fatalf("normal client got %s", tn.done.Raw)
		}
		if d := time.Since(start); d > prompt {
			t.Fatalf("a normal reply took %v while another session's reader was stuck", d)
		}
		rounds++
	}
	t.Logf("sent %d messages; the slow reader was closed; the normal client chatted %d times meanwhile", sent, rounds)

	// The slow client reads what its socket still buffers, then the end.
	for n := 0; ; n++ {
		_, err := slow.read()
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				t.Fatalf("slow reader closed as normal: %v", err)
			}
			t.Logf("slow client read %d events, then: %v", n, err)
			break
		}
	}

	// What the server accepted ran to completion and was persisted whole.
	var v sessionView
	// Each accepted turn echoes about 1 MB; under -race on a busy machine
	// one takes seconds, so the wait grows with the number sent.
	eventuallyWithin(t, time.Duration(sent)*5*time.Second, "the dropped client's turns to finish", func() bool {
		ts.doJSON(t, "GET", "/api/sessions/slow?limit=1", nil, 200, &v)
		return !v.Session.Busy
	})
	lines := ts.readJSONL(t, "slow")
	if len(lines) < 2 || len(lines)%2 != 0 {
		t.Fatalf("slow session has %d lines, want whole turns", len(lines))
	}
	for i := 0; i < len(lines); i += 2 {
		u, a := lines[i], lines[i+1]
		if u.Role != "user" || a.Role != "assistant" || a.Content != "echo: "+u.Content || a.Status != "" {
			t.Fatalf("turn %d: %s (%d bytes) then %s (%d bytes, status %q), want a user message and its whole echo",
				i/2+1, u.Role, len(u.Content), a.Role, len(a.Content), a.Status)
		}
	}
	again := ts.dial(t, "/ws?sessionId=slow")
	again.chat("are you done")
}

// TestOwnRepliesDoNotCloseAReader: a client that reads, but sends a burst
// of bad frames and pings faster than their answers can be written, is
// not closed as a slow reader (1008): every frame of its own gets its
// answer, in order, and the connection goes on working.
func TestOwnRepliesDoNotCloseAReader(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=bursty")
	const frames = 4000
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
		defer cancel()
		for i := range frames {
			frame := `{"type":"ping"}`
			if i%2 == 1 {
				frame = `{"type":"dance"}`
			}
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := range frames {
		ev, err := c.read()
		if err != nil {
			t.Fatalf("after %d answers: %v (close status %v)", i, err, websocket.CloseStatus(err))
		}
		want := "pong"
		if i%2 == 1 {
			want = "error"
		}
		if ev.Type != want {
			t.Fatalf("answer %d is %s, want %s", i, ev.Raw, want)
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending the burst: %v", err)
	}
	c.chat("still here")
}
