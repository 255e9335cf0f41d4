package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// fixedNow is the clock of every test runtime.
var fixedNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// reply is one scripted model response of the fake provider.
type reply struct {
	chunks []string
	calls  []core.ToolCall
	usage  core.Usage
	stop   string
	err    error                        // returned after the chunks
	after  func(chunk int)              // runs after each chunk reaches onText
	block  bool                         // after the chunks, wait for ctx and fail with its cause
	check  func(req core.Request) error // a failure here is reported by the test
}

// fakeProvider plays replies in order (the last one repeats, or next builds
// them) and records every request it receives, deep-copied, so a test can
// check what the loop fed back to the model.
type fakeProvider struct {
	replies []reply
	next    func(n int, req core.Request) reply // used when set; n counts from 0

	mu   sync.Mutex
	reqs []core.Request
	errs []error
}

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	p.mu.Lock()
	n := len(p.reqs)
	p.reqs = append(p.reqs, copyRequest(req))
	p.mu.Unlock()
	var r reply
	switch {
	case p.next != nil:
		r = p.next(n, req)
	case n < len(p.replies):
		r = p.replies[n]
	default:
		r = p.replies[len(p.replies)-1]
	}
	if r.check != nil {
		if err := r.check(req); err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, fmt.Errorf("request %d: %w", n, err))
			p.mu.Unlock()
		}
	}
	var resp core.Response
	for i, c := range r.chunks {
		if ctx.Err() != nil {
			return resp, context.Cause(ctx)
		}
		onText(c)
		resp.Text += c
		if r.after != nil {
			r.after(i)
		}
	}
	resp.Usage = r.usage
	if r.block {
		<-ctx.Done()
		return resp, context.Cause(ctx)
	}
	if r.err != nil {
		return resp, r.err
	}
	resp.ToolCalls = slices.Clone(r.calls)
	resp.StopReason = r.stop
	if resp.StopReason == "" {
		resp.StopReason = "end_turn"
		if len(r.calls) > 0 {
			resp.StopReason = "tool_use"
		}
	}
	return resp, nil
}

// requests returns the recorded requests and fails the test on any check
// error.
func (p *fakeProvider) requests(t *testing.T) []core.Request {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.errs {
		t.Error(err)
	}
	return slices.Clone(p.reqs)
}

func copyRequest(req core.Request) core.Request {
	req.Messages = slices.Clone(req.Messages)
	for i := range req.Messages {
		req.Messages[i].ToolCalls = slices.Clone(req.Messages[i].ToolCalls)
	}
	req.Tools = slices.Clone(req.Tools)
	return req
}

// span is when a test tool ran.
type span struct {
	label      string
	start, end time.Time
}

// recorder collects the spans of the test tools of one runtime.
type recorder struct {
	mu    sync.Mutex
	spans []span
}

func (r *recorder) add(s span) {
	r.mu.Lock()
	r.spans = append(r.spans, s)
	r.mu.Unlock()
}

func (r *recorder) get(label string) span {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.label == label {
			return s
		}
	}
	return span{}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans)
}

// sleepTool sleeps d, records its span under the "label" of its input, and
// returns "slept <label>".
type sleepTool struct {
	name     string
	readOnly bool
	d        time.Duration
	rec      *recorder
}

func (s sleepTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: s.name, Description: "sleeps (test)", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (s sleepTool) ReadOnly() bool { return s.readOnly }
func (s sleepTool) Run(ctx context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Label string `json:"label"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return "", err
	}
	start := time.Now()
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	s.rec.add(span{label: in.Label, start: start, end: time.Now()})
	return "slept " + in.Label, nil
}

// failTool always fails.
type failTool struct{}

func (failTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "fail", Description: "always fails (test)", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (failTool) ReadOnly() bool { return true }
func (failTool) Run(context.Context, json.RawMessage) (string, error) {
	return "", errors.New("boom: the test tool failed")
}

// pingTool counts its runs and echoes its input.
type pingTool struct{ n *atomic.Int64 }

func (pingTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "ping", Description: "answers pong (test)", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (pingTool) ReadOnly() bool { return false }
func (p pingTool) Run(_ context.Context, input json.RawMessage) (string, error) {
	p.n.Add(1)
	return "pong " + string(input), nil
}

// env is a runtime on a temp workspace with the real file tools and bash,
// and the test tools.
type env struct {
	rt    *Runtime
	p     *fakeProvider
	dir   string
	rec   *recorder
	pings *atomic.Int64
}

func newEnv(t *testing.T, p *fakeProvider) *env {
	t.Helper()
	ws, err := tools.OpenWorkspace(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	e := &env{p: p, dir: ws.Dir(), rec: &recorder{}, pings: &atomic.Int64{}}
	set := tools.NewSet(append(ws.FileTools(),
		tools.Bash{Dir: ws.Dir(), Timeout: 30 * time.Second},
		sleepTool{name: "slow_read", readOnly: true, d: 200 * time.Millisecond, rec: e.rec},
		sleepTool{name: "slow_write", readOnly: false, d: 100 * time.Millisecond, rec: e.rec},
		failTool{},
		pingTool{e.pings},
	)...)
	e.rt = &Runtime{Provider: p, Model: "test-model", Workspace: ws.Dir(), Tools: set, Now: func() time.Time { return fixedNow }}
	return e
}

func (e *env) write(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// events records a turn's events in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (ev *events) add(s string) {
	ev.mu.Lock()
	ev.log = append(ev.log, s)
	ev.mu.Unlock()
}

func (ev *events) get() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return slices.Clone(ev.log)
}

func (ev *events) hooks() Events {
	return Events{
		OnText:      func(s string) { ev.add("text " + s) },
		OnToolStart: func(c core.ToolCall) { ev.add("start " + c.ID + " " + c.Name) },
		OnToolDone: func(r core.ToolCallRecord) {
			ev.add(fmt.Sprintf("done %s %s err=%v", r.ID, r.Name, r.IsError))
		},
	}
}

func user(text string) core.Message {
	return core.Message{Role: core.RoleUser, Content: text, Timestamp: 1000}
}

func asst(text string, recs ...core.ToolCallRecord) core.Message {
	return core.Message{Role: core.RoleAssistant, Content: text, Timestamp: fixedNow.UnixMilli(), ToolCalls: recs}
}

func tc(id, name, input string) core.ToolCall {
	return core.ToolCall{ID: id, Name: name, Input: json.RawMessage(input)}
}

func rec(id, name, input, output string, isErr bool) core.ToolCallRecord {
	return core.ToolCallRecord{ID: id, Name: name, Input: json.RawMessage(input), Output: output, IsError: isErr}
}

// equalMsgs compares messages field by field (inputs as bytes) and reports
// the first difference readably.
func equalMsgs(t *testing.T, what string, got, want []core.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d:\ngot  %s\nwant %s", what, len(got), len(want), dump(got), dump(want))
	}
	for i := range got {
		if !reflect.DeepEqual(norm(got[i]), norm(want[i])) {
			t.Fatalf("%s: message %d differs:\ngot  %s\nwant %s", what, i, dump(got[i:i+1]), dump(want[i:i+1]))
		}
	}
}

// norm makes nil and empty tool lists compare equal.
func norm(m core.Message) core.Message {
	if len(m.ToolCalls) == 0 {
		m.ToolCalls = nil
	}
	return m
}

func dump(msgs []core.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		j, _ := json.Marshal(m)
		b.Write(j)
		b.WriteString("\n     ")
	}
	return b.String()
}

// waitFile waits for path to hold a full line and returns it trimmed.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s was not written", path)
	return ""
}
