package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// Notes the loop adds to the conversation (not persisted) when it stops the
// model from calling more tools.
const (
	noteLimit = "[miniclaw] Tool call limit reached (%d rounds or %d calls per turn). Do not call tools; answer directly with what you have."
	noteLoop  = "[miniclaw] Loop detected: %s was called with the same input %d times in a row. Do not call tools again; answer directly with what you have."
	loopCount = 3
)

// maxParallelTools bounds how many read-only calls of one batch run at
// once: each may hold a file's worth of memory (read_file reads up to 10
// MB), so twenty at once must not be twenty files.
const maxParallelTools = 4

// turn is the state of one Run (or one Compact).
type turn struct {
	r  *Runtime
	ev Events
	id string // the session, for the calibration of its estimates
	// volatile is the turn's changing context (time, memory), sent after
	// the conversation on every call and counted in every estimate.
	volatile string
	// What the model sees (see convo): the summary, then hist[from:], then
	// rounds. A compaction moves from on and replaces summary.
	hist     []core.Message // the history Run was given
	from     int
	summary  string         // the latest summary of hist[:from] ("" for none)
	rounds   []core.Message // this turn's assistant rounds and notes; grows with each round
	window   int64          // tokens; lowered when the provider says the model's is smaller
	produced []core.Message // what will be persisted
	usage    core.Usage
	calls    int
	last     []string // canonical "name input" of recent calls, for loop detection
}

func (t *turn) run(ctx context.Context) (Result, error) {
	var system string
	system, t.volatile = t.r.systemPrompt(t.r.now())
	var specs []core.ToolSpec
	if t.r.Tools != nil {
		specs = t.r.Tools.Specs()
	}
	finalRound := len(specs) == 0
	t.seed(system, specs)
	for round := 1; ; round++ {
		tools := specs
		if finalRound {
			tools = nil
		}
		resp, text, err := t.call(ctx, system, tools)
		msg := core.Message{Role: core.RoleAssistant, Content: text, Timestamp: t.r.now().UnixMilli(), Usage: usageOf(resp.Usage)}
		if err != nil {
			return t.fail(ctx, msg.Content, err)
		}
		if len(resp.ToolCalls) == 0 || finalRound {
			t.produced = append(t.produced, msg)
			return Result{Messages: t.produced, Text: msg.Content, Usage: t.usage, StopReason: resp.StopReason}, nil
		}
		var note string
		msg.ToolCalls, note = t.runTools(ctx, resp.ToolCalls)
		t.produced = append(t.produced, msg)
		t.rounds = append(t.rounds, msg)
		if ctx.Err() != nil {
			return t.fail(ctx, "", context.Cause(ctx))
		}
		if note == "" && (round >= t.r.maxRounds() || t.calls >= MaxToolCalls) {
			note = fmt.Sprintf(noteLimit, t.r.maxRounds(), MaxToolCalls)
		}
		if note != "" {
			finalRound = true
			t.rounds = append(t.rounds, core.Message{Role: core.RoleUser, Content: note, Timestamp: msg.Timestamp})
		}
	}
}

// fail ends the turn with an error, keeping what was produced: the rounds
// that completed, then a last message with the text streamed before the
// failure (possibly empty), marked with the status and the error.
func (t *turn) fail(ctx context.Context, partial string, err error) (Result, error) {
	status := failureStatus(ctx)
	t.produced = append(t.produced, core.Message{
		Role: core.RoleAssistant, Content: partial, Timestamp: t.r.now().UnixMilli(),
		Status: status, Error: err.Error(),
	})
	return Result{Messages: t.produced, Text: partial, Usage: t.usage, StopReason: status}, err
}

// runTools executes one round's calls and returns their records in the
// model's order. Runs of consecutive read-only calls execute in parallel.
// Calls past the per-turn cap, unknown tools and repeated calls are not run:
// their records say why. note is set when the loop must stop calling tools.
func (t *turn) runTools(ctx context.Context, calls []core.ToolCall) (recs []core.ToolCallRecord, note string) {
	recs = make([]core.ToolCallRecord, len(calls))
	runnable := make([]bool, len(calls))
	for i := range calls {
		calls[i].Input = normInput(calls[i].Input)
		c := calls[i]
		recs[i] = core.ToolCallRecord{ID: c.ID, Name: c.Name, Input: c.Input}
		switch {
		case t.calls >= MaxToolCalls:
			recs[i].Output, recs[i].IsError = fmt.Sprintf("not run: the limit of %d tool calls per turn is reached", MaxToolCalls), true
			note = fmt.Sprintf(noteLimit, t.r.maxRounds(), MaxToolCalls)
		case t.repeats(c):
			recs[i].Output, recs[i].IsError = fmt.Sprintf("not run: %s was called with the same input %d times in a row (a loop)", c.Name, loopCount), true
			note = fmt.Sprintf(noteLoop, c.Name, loopCount)
		default:
			t.calls++
			runnable[i] = true
		}
	}
	for i := 0; i < len(calls); {
		if runnable[i] && ctx.Err() != nil {
			// Stopped during an earlier call: what the user stopped must
			// not go on writing files.
			recs[i].Output, recs[i].IsError = notRunStopped(ctx), true
			runnable[i] = false
		}
		if !runnable[i] {
			t.report(calls[i], recs[i])
			i++
			continue
		}
		j := i + 1
		if t.readOnly(calls[i]) {
			for j < len(calls) && runnable[j] && t.readOnly(calls[j]) {
				j++
			}
		}
		t.runBatch(ctx, calls[i:j], recs[i:j])
		i = j
	}
	return recs, note
}

// runBatch runs calls concurrently, at most maxParallelTools at once, and
// reports their events in order. A call whose turn was stopped while it
// waited for its turn is not run.
func (t *turn) runBatch(ctx context.Context, calls []core.ToolCall, recs []core.ToolCallRecord) {
	for _, c := range calls {
		if t.ev.OnToolStart != nil {
			t.ev.OnToolStart(c)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelTools)
	for i := range calls {
		sem <- struct{}{} // a slot; released when the call returns
		if ctx.Err() != nil {
			<-sem
			recs[i].Output, recs[i].IsError = notRunStopped(ctx), true
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t.execute(ctx, calls[i], &recs[i])
		})
	}
	wg.Wait()
	for i := range recs {
		if t.ev.OnToolDone != nil {
			t.ev.OnToolDone(recs[i])
		}
	}
}

// notRunStopped is the output of a call not run because the turn was
// stopped (aborted, or interrupted by a shutdown) before it started.
func notRunStopped(ctx context.Context) string {
	return "not run: the turn was " + failureStatus(ctx)
}

// report sends the events of a call that was not run.
func (t *turn) report(c core.ToolCall, rec core.ToolCallRecord) {
	if t.ev.OnToolStart != nil {
		t.ev.OnToolStart(c)
	}
	if t.ev.OnToolDone != nil {
		t.ev.OnToolDone(rec)
	}
}

func (t *turn) execute(ctx context.Context, c core.ToolCall, rec *core.ToolCallRecord) {
	tool, ok := t.r.Tools.Get(c.Name)
	if !ok {
		rec.Output, rec.IsError = fmt.Sprintf("unknown tool %q", c.Name), true
		return
	}
	if t.ev.OnToolProgress != nil {
		p := &callProgress{t: t, call: c}
		defer p.end()
		ctx = tools.WithProgress(ctx, p.report)
	}
	out, err := tool.Run(ctx, rec.Input)
	if err != nil {
		rec.Output, rec.IsError = err.Error(), true
		return
	}
	rec.Output = out
}

// progressEvery is the least time between two progress events of one call:
// clients get at most five a second, however often a server reports.
const progressEvery = 200 * time.Millisecond

// callProgress forwards the progress of one call to OnToolProgress: a
// report within progressEvery of the last one sent is dropped, and so is
// every report once the call returned (its OnToolDone follows).
type callProgress struct {
	t    *turn
	call core.ToolCall

	mu   sync.Mutex
	last time.Time // of the last report sent; zero before the first
	over bool
}

func (p *callProgress) report(pr tools.Progress) {
	now := p.t.r.now()
	p.mu.Lock()
	defer p.mu.Unlock() // held while the event goes out, so none follows end
	if p.over || (!p.last.IsZero() && now.Sub(p.last) < progressEvery) {
		return
	}
	p.last = now
	p.t.ev.OnToolProgress(p.call, pr)
}

// end drops every later report.
func (p *callProgress) end() {
	p.mu.Lock()
	p.over = true
	p.mu.Unlock()
}

func (t *turn) readOnly(c core.ToolCall) bool {
	tool, ok := t.r.Tools.Get(c.Name)
	return ok && tool.ReadOnly()
}

// repeats records c and reports whether it is the loopCount-th identical
// call in a row.
func (t *turn) repeats(c core.ToolCall) bool {
	key := c.Name + " " + string(normInput(c.Input))
	t.last = append(t.last, key)
	if len(t.last) > loopCount {
		t.last = t.last[1:]
	}
	if len(t.last) < loopCount {
		return false
	}
	for _, k := range t.last {
		if k != key {
			return false
		}
	}
	return true
}

// normInput compacts a tool input so equal inputs compare equal and the
// transcript holds valid JSON even when the model sent none.
func normInput(in json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if len(in) == 0 || json.Compact(&buf, in) != nil {
		return json.RawMessage("{}")
	}
	return buf.Bytes()
}

// usageOf is the usage to record on an assistant message: nil when the
// provider reported none (the transcript then has no usage field).
func usageOf(u core.Usage) *core.Usage {
	if u == (core.Usage{}) {
		return nil
	}
	return &u
}
