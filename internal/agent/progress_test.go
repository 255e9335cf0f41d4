package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// clock is a fake time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// progressTool reports steps (progress, clock advance before it), then a
// report after it returned (which must be dropped: a tool may hand its
// reporter to a goroutine that outlives the call).
type progressTool struct {
	clock *clock
	steps []time.Duration
	late  chan func(tools.Progress)
}

func (progressTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "fetch", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (progressTool) ReadOnly() bool { return false }
func (p progressTool) Run(ctx context.Context, _ json.RawMessage) (string, error) {
	report := tools.ProgressReporter(ctx)
	if report == nil {
		return "", fmt.Errorf("no progress reporter in the call's context")
	}
	for i, d := range p.steps {
		p.clock.advance(d)
		report(tools.Progress{Progress: float64(i + 1), Total: float64(len(p.steps)), Message: fmt.Sprintf("step %d", i+1)})
	}
	p.late <- report
	return "fetched", nil
}

// A tool's progress reaches OnToolProgress between its start and its done,
// at most one per 200 ms of the runtime's clock: reports that come sooner
// are dropped, and none comes after the call returned.
func TestToolProgressEventsAreRateLimited(t *testing.T) {
	p := &fakeProvider{replies: []reply{{calls: []core.ToolCall{tc("c1", "fetch", `{}`)}}, {chunks: []string{"ok"}}}}
	e := newEnv(t, p)
	clk := &clock{now: time.Unix(1000, 0)}
	e.rt.Now = clk.Now
	// 1 goes out (the first), 2 and 3 are 100 ms after it, 4 is 200 ms
	// after 1, 5 is 50 ms after 4, 6 is a second later.
	ms := time.Millisecond
	pt := progressTool{clock: clk, steps: []time.Duration{0, 100 * ms, 0, 100 * ms, 50 * ms, time.Second}, late: make(chan func(tools.Progress), 1)}
	e.rt.Tools.Add(pt)
	var ev events
	hooks := ev.hooks()
	hooks.OnToolProgress = func(c core.ToolCall, pr tools.Progress) {
		ev.add(fmt.Sprintf("progress %s %s %g/%g %s", c.ID, c.Name, pr.Progress, pr.Total, pr.Message))
	}
	if _, err := e.rt.Run(t.Context(), "s", []core.Message{user("go")}, hooks); err != nil {
		t.Fatal(err)
	}
	(<-pt.late)(tools.Progress{Progress: 7, Total: 6, Message: "too late"})
	want := []string{
		"start c1 fetch",
		"progress c1 fetch 1/6 step 1",
		"progress c1 fetch 4/6 step 4",
		"progress c1 fetch 6/6 step 6",
		"done c1 fetch err=false",
		"text ok",
	}
	if got := ev.get(); !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}
