package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
)

// shutdown runs Shutdown with a deadline in the background; the returned
// channel yields its error.
func (ts *testServer) shutdown(deadline time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	return done
}

func wantShutdownReturns(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Shutdown did not return")
	}
}

// TestShutdownLetsTurnsFinish: with time enough, a running turn and the
// one queued behind it complete and are delivered before every connection
// is closed with 1001; no new turn is accepted meanwhile.
func TestShutdownLetsTurnsFinish(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[
		{"text": "finishing this before I go", "chunkDelayMs": 100},
		{"text": "and the queued one too"}
	]`)
	c := ts.dial(t, "/ws?sessionId=graceful")
	idle := ts.dial(t, "/ws?sessionId=idle")
	c.message("one")
	c.message("two")
	// The pong to a ping sent after them proves both messages were taken
	// in (frames are handled in order) before the shutdown begins.
	c.send(map[string]string{"type": "ping"})
	var first strings.Builder
	for ev := c.next(); ev.Type != "pong"; ev = c.next() {
		if ev.Type != "chunk" {
			t.Fatalf("before pong: %s", ev.Raw)
		}
		first.WriteString(ev.Content)
	}

	done := ts.shutdown(waitFor)

	// Intake stops: a new message is refused, on either connection.
	eventually(t, "new connections to be refused", func() bool {
		ws, _, err := websocket.Dial(context.Background(), ts.wsURL("/ws?sessionId=probe"), nil)
		if err == nil {
			ws.CloseNow()
		}
		return err != nil
	})
	idle.message("too late")
	idle.expectError("shutting_down")

	// The running turn and the queued one complete and are delivered.
	tn := c.readTurn()
	if got := first.String() + tn.text(); tn.done.Type != "message_done" || got != "finishing this before I go" {
		t.Fatalf("running turn: %q then %s", got, tn.done.Raw)
	}
	if tn := c.readTurn(); tn.done.Type != "message_done" || tn.done.Content != "and the queued one too" {
		t.Fatalf("queued turn ended with %s", tn.done.Raw)
	}
	c.expectClose(websocket.StatusGoingAway)
	idle.expectClose(websocket.StatusGoingAway)
	wantShutdownReturns(t, done)

	wantTranscript(t, ts.readJSONL(t, "graceful"),
		"user", "one", "assistant", "finishing this before I go",
		"user", "two", "assistant", "and the queued one too")
	if lines := ts.readJSONL(t, "idle"); len(lines) != 0 {
		t.Fatalf("a message refused at shutdown reached the transcript: %+v", lines)
	}
}

// TestShutdownDeadlineInterrupts: when the deadline passes first, the turn
// is cut short, persisted as interrupted with its partial text, and its
// clients are told (shutting_down) before the 1001 close.
func TestShutdownDeadlineInterrupts(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[{"text": "this will never be finished in time", "chunkDelayMs": 5000}]`)
	c := ts.dial(t, "/ws?sessionId=cut")
	other := ts.dial(t, "/ws?sessionId=cut")
	c.message("long job")
	first := c.expect("chunk")
	other.expect("user_message")
	other.expect("chunk")

	start := time.Now()
	done := ts.shutdown(100 * time.Millisecond)
	for _, cl := range []*client{c, other} {
		if ev := cl.expectError("shutting_down"); ev.SessionID != "cut" {
			t.Fatalf("shutting_down error names session %q", ev.SessionID)
		}
		cl.expectClose(websocket.StatusGoingAway)
	}
	wantShutdownReturns(t, done)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown with a 100ms deadline took %v", d)
	}

	lines := ts.readJSONL(t, "cut")
	wantTranscript(t, lines, "user", "long job", "assistant", first.Content)
	last := lines[len(lines)-1]
	if last.Fields["status"] != "interrupted" {
		t.Fatalf("last line %v: want status interrupted", last.Fields)
	}
	if m := ts.readMeta(t, "cut"); m.MessageCount != 2 {
		t.Fatalf("meta counts %d messages, want 2", m.MessageCount)
	}
}

// TestShutdownIdle: an idle gateway with open connections and HTTP clients
// shuts down at once, closing connections with 1001, and refuses what comes
// after.
func TestShutdownIdle(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	a := ts.dial(t, "/ws?sessionId=a")
	b := ts.dial(t, "/ws")
	a.chat("before")
	if status, _ := ts.do(t, "GET", "/healthz", nil, nil); status != http.StatusOK {
		t.Fatal("healthz before shutdown")
	}

	start := time.Now()
	done := ts.shutdown(waitFor)
	// The clients answer the close handshake as they read, as browsers do.
	a.expectClose(websocket.StatusGoingAway)
	b.expectClose(websocket.StatusGoingAway)
	wantShutdownReturns(t, done)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle shutdown took %v", d)
	}
	if ts.srv.Connections() != 0 {
		t.Fatalf("%d connections counted after shutdown", ts.srv.Connections())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.httpURL("/healthz"), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("healthz answered %d after shutdown", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "refused") {
		t.Logf("healthz after shutdown: %v", err)
	}
	wantTranscript(t, ts.readJSONL(t, "a"), "user", "before", "assistant", "echo: before")
}

// TestShutdownDuringUpgrades: connections being upgraded while Shutdown runs
// are either refused or closed; none outlives Shutdown, and Shutdown does
// not wait for them forever.
func TestShutdownDuringUpgrades(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)

	var (
		mu       sync.Mutex
		accepted []*websocket.Conn
		readers  sync.WaitGroup // one per accepted connection, reading until it ends
		dialers  sync.WaitGroup
	)
	stop := make(chan struct{})
	for i := range 16 {
		dialers.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				ws, _, err := websocket.Dial(ctx, ts.wsURL(fmt.Sprintf("/ws?sessionId=d%d-%d", i, n)), nil)
				cancel()
				if err != nil {
					return // refused: the gateway is shutting down
				}
				mu.Lock()
				accepted = append(accepted, ws)
				mu.Unlock()
				readers.Go(func() { // a browser reads until the connection ends
					for {
						if _, _, err := ws.Read(context.Background()); err != nil {
							return
						}
					}
				})
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }
	eventually(t, "the dialers to get going", func() bool { return count() >= 16 })

	wantShutdownReturns(t, ts.shutdown(waitFor))
	close(stop)
	dialers.Wait()

	// Every connection that was accepted has been closed by the server.
	ended := make(chan struct{})
	go func() { readers.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Errorf("connections accepted during the shutdown are still open after Shutdown returned")
		mu.Lock()
		for _, ws := range accepted {
			ws.CloseNow()
		}
		mu.Unlock()
		<-ended
	}
	t.Logf("%d connections were accepted around the shutdown", count())
	if n := ts.srv.Connections(); n != 0 {
		t.Errorf("%d connections counted after Shutdown returned", n)
	}
}

// stuckProvider starts every model call (announcing it on started) and then
// ignores cancellation until unstuck is closed: a turn stuck in something
// that does not honour its context, like a tool blocked in a system call.
type stuckProvider struct {
	started chan struct{}
	unstuck chan struct{}
}

func (stuckProvider) Name() string { return "stuck" }

func (p stuckProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	p.started <- struct{}{}
	<-p.unstuck
	return core.Response{}, context.Cause(ctx)
}

// TestShutdownHardBound: a turn that ignores its interruption and an HTTP
// handler that never returns do not hold Shutdown past its deadline plus
// the grace: it returns an error saying what it left running, and the
// connections are closed (1001) all the same.
func TestShutdownHardBound(t *testing.T) {
	t.Parallel()
	p := stuckProvider{started: make(chan struct{}, 10), unstuck: make(chan struct{})}
	handlerIn := make(chan struct{}, 10)
	ts := startServer(t, p, withPage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlerIn <- struct{}{}
		<-p.unstuck // ignores the request's context too
	})), func(o *gateway.Options) { o.ShutdownGrace = 200 * time.Millisecond })
	t.Cleanup(func() { close(p.unstuck) }) // before the server's cleanup: let the stuck goroutines go

	c := ts.dial(t, "/ws?sessionId=stuck")
	c.message("hang")
	<-p.started
	go http.Get(ts.httpURL("/")) // its error, once the gateway is gone, does not matter
	<-handlerIn

	var err error
	select {
	case err = <-ts.shutdown(100 * time.Millisecond):
	case <-time.After(waitFor):
		t.Fatal("Shutdown did not return: it waits without bound for a stuck turn")
	}
	if err == nil || !strings.Contains(err.Error(), "1 turn") {
		t.Fatalf("Shutdown = %v, want an error saying 1 turn was left running", err)
	}
	c.expectClose(websocket.StatusGoingAway)
}
