package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// slowText is the reply of the slow script: 10 words, 300 ms apart, so a
// turn takes about 2.7 s.
const slowText = "one two three four five six seven eight nine ten"

// SIGTERM during a turn: the gateway stops taking work, lets the turn run
// until MINI_OPENCLAW_SHUTDOWN_TIMEOUT, then interrupts it and persists what
// it produced marked "interrupted" — and exits 0 either way.
func TestSIGTERMMidTurn(t *testing.T) {
	script := writeScript(t, []map[string]any{{"text": slowText, "chunkDelayMs": 300}})

	t.Run("deadline interrupts the turn", func(t *testing.T) {
		t.Parallel()
		g, w, data := startSlowTurn(t, script, "500ms", "sigterm-interrupted")
		start := time.Now()
		if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		evs, closeErr := readUntilClosed(t, w, 10*time.Second)
		code, took := g.waitExit(start, 10*time.Second)
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		if took > 3*time.Second {
			t.Errorf("exit took %s with a 500ms shutdown timeout", took)
		}
		if s := websocket.CloseStatus(closeErr); s != websocket.StatusGoingAway {
			t.Errorf("connection ended with %v (status %d), want a 1001 close", closeErr, s)
		}
		chunks := chunkText(evs)
		var sawShutdown bool
		for _, ev := range evs {
			switch {
			case ev.Type == "message_done":
				t.Errorf("message_done %q for a turn the shutdown deadline cut short", ev.Content)
			case ev.Type == "error" && ev.Code == "shutting_down":
				sawShutdown = true
			case ev.Type == "error":
				t.Errorf("unexpected error event %+v", ev)
			}
		}
		if !sawShutdown {
			t.Errorf("no shutting_down error event; events: %+v", evs)
		}

		tr, err := readTranscript(filepath.Join(data, "sessions", "sigterm-interrupted.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.torn) > 0 || len(tr.msgs) != 2 {
			t.Fatalf("transcript has %d lines (torn %q), want the user message and the interrupted reply: %+v", len(tr.msgs), tr.torn, tr.msgs)
		}
		if u := tr.msgs[0]; u.Role != "user" || u.Content != "hello" {
			t.Errorf("line 1 = %+v, want the user message", u)
		}
		a := tr.msgs[1]
		if a.Role != "assistant" || a.Status != "interrupted" {
			t.Errorf("last line = %+v, want an assistant message with status interrupted", a)
		}
		if a.Content == "" || a.Content == slowText || !strings.HasPrefix(slowText, a.Content) {
			t.Errorf("interrupted reply %q is not a proper prefix of %q", a.Content, slowText)
		}
		if a.Content != chunks {
			t.Errorf("persisted reply %q, but the client was streamed %q", a.Content, chunks)
		}
	})

	t.Run("turn finishes within the deadline", func(t *testing.T) {
		t.Parallel()
		g, w, data := startSlowTurn(t, script, "10s", "sigterm-complete")
		start := time.Now()
		if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// Once the listener is closed intake has stopped: a message sent now
		// must be refused, not queued behind the running turn.
		waitListenerClosed(t, g.addr, 5*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.send(ctx, "too late"); err != nil {
			t.Fatalf("send during shutdown: %v", err)
		}
		evs, closeErr := readUntilClosed(t, w, 10*time.Second)
		code, took := g.waitExit(start, 10*time.Second)
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		t.Logf("exit after %s", took)
		if s := websocket.CloseStatus(closeErr); s != websocket.StatusGoingAway {
			t.Errorf("connection ended with %v (status %d), want a 1001 close", closeErr, s)
		}
		var done []string
		var refused bool
		for _, ev := range evs {
			switch {
			case ev.Type == "message_done":
				done = append(done, ev.Content)
			case ev.Type == "error" && ev.Code == "shutting_down":
				refused = true
			case ev.Type == "error":
				t.Errorf("unexpected error event %+v", ev)
			}
		}
		if len(done) != 1 || done[0] != slowText {
			t.Errorf("message_done events %q, want one with the full reply %q", done, slowText)
		}
		if !refused {
			t.Errorf("the message sent during shutdown got no shutting_down error; events: %+v", evs)
		}
		if got := chunkText(evs); got != slowText {
			t.Errorf("streamed %q, want %q", got, slowText)
		}

		tr, err := readTranscript(filepath.Join(data, "sessions", "sigterm-complete.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.torn) > 0 || len(tr.msgs) != 2 {
			t.Fatalf("transcript has %d lines (torn %q), want exactly the finished exchange: %+v", len(tr.msgs), tr.torn, tr.msgs)
		}
		if u := tr.msgs[0]; u.Role != "user" || u.Content != "hello" {
			t.Errorf("line 1 = %+v, want the user message", u)
		}
		if a := tr.msgs[1]; a.Role != "assistant" || a.Content != slowText || a.Status != "" {
			t.Errorf("line 2 = %+v, want the complete reply without a status", a)
		}
	})
}

// startSlowTurn starts a gateway on the slow script with the given shutdown
// timeout, sends "hello" on session id and returns once the first chunk of
// the reply has arrived. The first chunk is kept on the client for
// readUntilClosed.
func startSlowTurn(t *testing.T, script, shutdownTimeout, id string) (*gatewayProc, *bufferedClient, string) {
	t.Helper()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	g := startGateway(t, "gateway", gatewayEnv(ws, data, map[string]string{
		"MINI_OPENCLAW_SCRIPT":           script,
		"MINI_OPENCLAW_SHUTDOWN_TIMEOUT": shutdownTimeout,
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := dialSession(ctx, g.addr, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.c.CloseNow() })
	if err := w.send(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	bc := &bufferedClient{wsClient: w}
	for {
		ev, err := w.read(ctx)
		if err != nil {
			t.Fatalf("waiting for the first chunk: %v", err)
		}
		bc.seen = append(bc.seen, ev)
		if ev.Type == "chunk" {
			return g, bc, data
		}
		if ev.Type == "message_done" || ev.Type == "error" {
			t.Fatalf("turn ended before its first chunk: %+v", ev)
		}
	}
}

// bufferedClient is a connection with the events already read from it.
type bufferedClient struct {
	*wsClient
	seen []serverEvent
}

// readUntilClosed reads events until the server closes the connection and
// returns all events (including those already seen) and the read error that
// ended it.
func readUntilClosed(t *testing.T, w *bufferedClient, limit time.Duration) ([]serverEvent, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	evs := w.seen
	for {
		ev, err := w.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Errorf("connection still open %s after SIGTERM", limit)
			}
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// chunkText concatenates the streamed chunks.
func chunkText(evs []serverEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Type == "chunk" {
			b.WriteString(ev.Content)
		}
	}
	return b.String()
}

// waitListenerClosed waits until addr refuses TCP connections.
func waitListenerClosed(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) {
				return
			}
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections %s after SIGTERM", addr, limit)
}
