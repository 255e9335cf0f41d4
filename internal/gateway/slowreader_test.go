package gateway_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
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
	// Every step of a turn of 1 MiB (decoding the message, saving it,
	// encoding the reply) takes seconds under -race on a busy machine: a
	// longer bound for each event, which only tells a hang from a slow run.
	c.wait = 3 * waitFor
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
	slow := ts.dialWith(t, "/ws?sessionId=slow", smallReceiveBuffer())

	// Each message is echoed back as about 1.9 MB (its chunks, then
	// message_done): a few fill the socket buffers, the next ones the send
	// queue (4 MiB).
	word := strings.Repeat("w", 190<<10)
	big := `{"type":"message","content":"` + strings.TrimSuffix(strings.Repeat(word+" ", 5), " ") + `"}`
	const maxSent = 12 // 23 MB of replies: far more than the buffers and the queue hold
	sent, refused, lastSent := 0, false, time.Time{}
	sendBig := func() {
		if refused || sent >= maxSent {
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
	busy := func() bool {
		var v sessionView
		ts.doJSON(t, "GET", "/api/sessions/slow?limit=1", nil, 200, &v)
		return v.Session.Busy
	}
	chat := func() time.Duration {
		start := time.Now()
		if tn := normal.chat("ping me"); tn.done.Content != "echo: ping me" {
			t.Fatalf("normal client got %s", tn.done.Raw)
		}
		return time.Since(start)
	}

	// The yardstick of "promptly", measured on this machine in this run:
	// the slowest of three replies to the normal client while the server
	// echoes the first big message, which the slow client's buffers still
	// hold, so that nothing can wait for it yet.
	sendBig()
	var base time.Duration
	for range 3 {
		base = max(base, chat())
	}
	// A reply stuck behind the slow reader would wait for its write
	// timeout (10 s) or its close; a fixed bound alone would also fail a
	// machine busy with other work.
	prompt := max(3*time.Second, 10*base)
	for range 4 {
		sendBig()
	}

	// The normal client keeps getting prompt replies until the slow one is
	// gone (the server then counts a single connection). Meanwhile the slow
	// client sends one more a second, in case the socket buffers hold more
	// than usual. Once all it sent is echoed, the slow reader must be
	// closed, within waitFor.
	rounds := 0
	var idleSince time.Time
	for ts.srv.Connections() > 1 || rounds < 3 {
		if time.Since(lastSent) > time.Second {
			sendBig()
		}
		if (refused || sent >= maxSent) && ts.srv.Connections() > 1 && idleSince.IsZero() && !busy() {
			idleSince = time.Now()
		}
		if !idleSince.IsZero() && time.Since(idleSince) > waitFor {
			t.Fatalf("the slow reader was not closed after all %d replies sent to it (%d connections open)", sent, ts.srv.Connections())
		}
		if d := chat(); d > prompt {
			t.Fatalf("a normal reply took %v (at first %v) while another session's reader was stuck", d, base)
		}
		rounds++
	}
	t.Logf("sent %d messages; the slow reader was closed; the normal client chatted %d times meanwhile, each within %v", sent, rounds, prompt)

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
	// Each accepted turn echoes about 1.9 MB; under -race on a busy machine
	// one takes seconds, so the wait grows with the number sent.
	eventuallyWithin(t, time.Duration(sent)*waitFor, "the dropped client's turns to finish", func() bool { return !busy() })
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

// smallReceiveBuffer dials with a fixed receive buffer of 64 KiB instead of
// one the kernel grows up to net.ipv4.tcp_rmem's maximum (32 MiB on some
// machines, 6 MiB on others): how much a client that stops reading leaves
// to the server's send queue then does not depend on the machine, and a
// few big replies overflow it instead of a dozen.
func smallReceiveBuffer() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}
