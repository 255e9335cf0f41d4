package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
)

// gateProvider holds every model call until release is closed (or the turn
// is cancelled), announcing each call on started (buffered beyond the turns
// a test runs, so a broken gateway fails the test instead of hanging it).
type gateProvider struct {
	started chan struct{}
	release chan struct{}
}

func (gateProvider) Name() string { return "gate" }

func (p gateProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	p.started <- struct{}{}
	select {
	case <-p.release:
	case <-ctx.Done():
		return core.Response{}, context.Cause(ctx)
	}
	onText("ok")
	return core.Response{Text: "ok", StopReason: "end_turn"}, nil
}

// queuedBytes is the gateway's count of bytes of user messages waiting in
// lanes, as /healthz reports it.
func (ts *testServer) queuedBytes(t *testing.T) int64 {
	t.Helper()
	var h struct {
		QueuedBytes *int64 `json:"queuedBytes"`
	}
	ts.doJSON(t, "GET", "/healthz", nil, 200, &h)
	if h.QueuedBytes == nil {
		t.Fatal("/healthz has no queuedBytes")
	}
	return *h.QueuedBytes
}

// TestQueuedBytesBudget: one connection parking large messages behind
// blocked turns on many sessions is refused with queue_full once the
// gateway-wide budget of queued bytes is spent; a refused message is not
// appended, and the budget comes back as the queues drain.
func TestQueuedBytesBudget(t *testing.T) {
	t.Parallel()
	const (
		sessions = 8
		size     = 64 << 10
		budget   = 8 * size // room for 8 queued messages
	)
	p := gateProvider{started: make(chan struct{}, 100), release: make(chan struct{})}
	ts := startServer(t, p, func(o *gateway.Options) { o.MaxQueuedBytes = budget })
	c := ts.dial(t, "/ws?sessionId=budget-0")
	body := strings.Repeat("m", size-1)
	send := func(s, i int) {
		c.send(map[string]string{"type": "message", "sessionId": fmt.Sprintf("budget-%d", s), "content": fmt.Sprintf("%d", i) + body})
	}
	// One running (blocked) turn per session: running turns are not queued.
	for s := range sessions {
		send(s, 0)
		<-p.started
	}
	// Then three more messages per session: 24 × 64 KiB against a 512 KiB budget.
	for i := 1; i <= 3; i++ {
		for s := range sessions {
			send(s, i)
		}
	}
	c.send(map[string]string{"type": "ping"})
	refused := 0
	for ev := c.next(); ev.Type != "pong"; ev = c.next() {
		if ev.Type != "error" || ev.Code != "queue_full" || !strings.Contains(ev.Message, "budget") {
			t.Fatalf("while queuing: %s", ev.Raw)
		}
		refused++
	}
	if want := 3*sessions - budget/size; refused != want {
		t.Errorf("%d messages refused, want %d (budget %d bytes of %d-byte messages)", refused, want, budget, size)
	}
	if got := ts.queuedBytes(t); got != budget {
		t.Errorf("queuedBytes = %d, want the whole budget %d", got, budget)
	}

	close(p.release)
	eventually(t, "every queued turn to finish", func() bool { return ts.queuedBytes(t) == 0 && !anyBusy(t, ts) })
	users := 0
	for s := range sessions {
		for _, l := range ts.readJSONL(t, fmt.Sprintf("budget-%d", s)) {
			if l.Role == "user" {
				users++
			}
		}
	}
	if want := sessions + budget/size; users != want {
		t.Errorf("%d user messages on disk, want %d (the running ones and those within the budget)", users, want)
	}
	// The budget is back: a message queues again.
	c.send(map[string]string{"type": "message", "sessionId": "budget-0", "content": "small"})
	<-p.started
}

// anyBusy reports whether the sessions API shows a session with a turn
// running or queued.
func anyBusy(t *testing.T, ts *testServer) bool {
	t.Helper()
	var list listView
	ts.doJSON(t, "GET", "/api/sessions", nil, 200, &list)
	for _, s := range list.Sessions {
		if s.Busy {
			return true
		}
	}
	return false
}
