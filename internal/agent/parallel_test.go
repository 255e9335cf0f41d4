package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// gateTool is a read-only tool whose runs signal entered and then wait for
// release; it records how many ran at once.
type gateTool struct {
	entered      chan struct{}
	release      chan struct{}
	inside, most atomic.Int64
}

func (*gateTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "gate", Description: "waits at a gate (test)", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (*gateTool) ReadOnly() bool { return true }
func (g *gateTool) Run(ctx context.Context, _ json.RawMessage) (string, error) {
	n := g.inside.Add(1)
	defer g.inside.Add(-1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return "passed", nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// Read-only calls run in parallel, but at most maxParallelTools at once:
// twenty parallel reads of a big file must not each hold it at the same
// time.
func TestParallelReadOnlyIsBounded(t *testing.T) {
	const n = 10
	calls := make([]core.ToolCall, n)
	for i := range calls {
		calls[i] = tc(fmt.Sprintf("c%d", i), "gate", fmt.Sprintf(`{"i":%d}`, i))
	}
	p := &fakeProvider{replies: []reply{{calls: calls}, {chunks: []string{"done"}}}}
	e := newEnv(t, p)
	g := &gateTool{entered: make(chan struct{}, n), release: make(chan struct{})}
	e.rt.Tools.Add(g)
	done := make(chan error, 1)
	var res Result
	go func() {
		var err error
		res, err = e.rt.Run(t.Context(), "s", []core.Message{user("go")}, Events{})
		done <- err
	}()
	timeout := time.After(5 * time.Second)
	for i := range maxParallelTools {
		select {
		case <-g.entered:
		case <-timeout:
			close(g.release)
			t.Fatalf("only %d of %d calls started in parallel", i, maxParallelTools)
		}
	}
	// While the first ones wait at the gate, no further call may start;
	// a grace period gives a wrongly started one the time to show.
	select {
	case <-g.entered:
		t.Errorf("call %d started while %d ran", maxParallelTools+1, maxParallelTools)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if most := g.most.Load(); most != maxParallelTools {
		t.Errorf("%d calls ran at once, want %d", most, maxParallelTools)
	}
	for _, r := range res.Messages[0].ToolCalls {
		if r.Output != "passed" || r.IsError {
			t.Errorf("record %+v", r)
		}
	}
}

// An abort while calls wait for a slot: the running ones end, the waiting
// ones are not started.
func TestAbortWhileCallsWaitForASlot(t *testing.T) {
	const n = 6
	calls := make([]core.ToolCall, n)
	for i := range calls {
		calls[i] = tc(fmt.Sprintf("c%d", i), "gate", fmt.Sprintf(`{"i":%d}`, i))
	}
	p := &fakeProvider{replies: []reply{{calls: calls}, {chunks: []string{"never"}}}}
	e := newEnv(t, p)
	g := &gateTool{entered: make(chan struct{}, n), release: make(chan struct{})}
	e.rt.Tools.Add(g)
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan Result, 1)
	go func() {
		res, _ := e.rt.Run(ctx, "s", []core.Message{user("go")}, Events{})
		done <- res
	}()
	timeout := time.After(5 * time.Second)
	for range maxParallelTools {
		select {
		case <-g.entered:
		case <-timeout:
			t.Fatal("the first calls did not start")
		}
	}
	cancel(core.ErrAborted)
	res := <-done
	for i, r := range res.Messages[0].ToolCalls {
		want := "not run: the turn was aborted"
		if i < maxParallelTools {
			want = core.ErrAborted.Error()
		}
		if r.Output != want || !r.IsError {
			t.Errorf("record %d: %q (error %v), want %q", i, r.Output, r.IsError, want)
		}
	}
}
