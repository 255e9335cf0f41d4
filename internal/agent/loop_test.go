package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

func TestTextOnlyTurn(t *testing.T) {
	var ev events
	var seen []int // text events seen when each chunk had been yielded
	p := &fakeProvider{replies: []reply{{
		chunks: []string{"Hel", "lo ", "world"},
		usage:  core.Usage{InputTokens: 10, OutputTokens: 5},
		stop:   "max_tokens",
		after:  func(i int) { seen = append(seen, len(ev.get())) },
	}}}
	e := newEnv(t, p)
	hist := []core.Message{user("hi")}
	res, err := e.rt.Run(context.Background(), "s", hist, ev.hooks())
	if err != nil {
		t.Fatal(err)
	}
	want := asst("Hello world")
	want.Usage = &core.Usage{InputTokens: 10, OutputTokens: 5}
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{want})
	if res.Text != "Hello world" || res.Usage != (core.Usage{InputTokens: 10, OutputTokens: 5}) || res.StopReason != "max_tokens" {
		t.Errorf("Result = %q %+v %q", res.Text, res.Usage, res.StopReason)
	}
	if got, want := ev.get(), []string{"text Hel", "text lo ", "text world"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	// Each chunk reached OnText before the provider yielded the next:
	// nothing is buffered.
	if !slices.Equal(seen, []int{1, 2, 3}) {
		t.Errorf("text events after each chunk: %v, want [1 2 3]", seen)
	}
	reqs := p.requests(t)
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	equalMsgs(t, "request messages", r.Messages, hist)
	if stable, volatile := e.rt.systemPrompt(fixedNow); r.Model != "test-model" || r.System != stable || r.Volatile != volatile {
		t.Errorf("request model %q, system %q, volatile %q", r.Model, r.System, r.Volatile)
	}
	if !reflect.DeepEqual(r.Tools, e.rt.Tools.Specs()) {
		t.Errorf("request tools %v", r.Tools)
	}
}

func TestNoToolsRuntime(t *testing.T) {
	// Without tools the model gets none, and tool calls it makes anyway
	// are not run.
	p := &fakeProvider{replies: []reply{{chunks: []string{"just text"}, calls: []core.ToolCall{tc("c1", "bash", `{"command":"touch x"}`)}}}}
	rt := &Runtime{Provider: p, Workspace: t.TempDir(), Now: func() time.Time { return fixedNow }}
	res, err := rt.Run(context.Background(), "s", []core.Message{user("hi")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{asst("just text")})
	if reqs := p.requests(t); len(reqs) != 1 || reqs[0].Tools != nil {
		t.Errorf("requests %+v", reqs)
	}
	if _, err := os.Stat(filepath.Join(rt.Workspace, "x")); err == nil {
		t.Error("a tool ran without a tool set")
	}
}

func TestOneToolRound(t *testing.T) {
	p := &fakeProvider{replies: []reply{
		{chunks: []string{"Let me ", "look."}, calls: []core.ToolCall{tc("c1", "read_file", `{ "path" : "notes.txt" }`)}, usage: core.Usage{InputTokens: 10, OutputTokens: 5}},
		{chunks: []string{"It says hi."}, usage: core.Usage{InputTokens: 20, OutputTokens: 7}},
	}}
	e := newEnv(t, p)
	e.write(t, "notes.txt", "hi\n")
	var ev events
	hist := []core.Message{user("what is in notes.txt?")}
	res, err := e.rt.Run(context.Background(), "s", hist, ev.hooks())
	if err != nil {
		t.Fatal(err)
	}
	// The input is stored compacted, the output is read_file's.
	r1 := rec("c1", "read_file", `{"path":"notes.txt"}`, "     1\thi\n", false)
	// Each message records the usage of the model call that produced it.
	m1, m2 := asst("Let me look.", r1), asst("It says hi.")
	m1.Usage, m2.Usage = &core.Usage{InputTokens: 10, OutputTokens: 5}, &core.Usage{InputTokens: 20, OutputTokens: 7}
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{m1, m2})
	if res.Text != "It says hi." || res.Usage != (core.Usage{InputTokens: 30, OutputTokens: 12}) || res.StopReason != "end_turn" {
		t.Errorf("Result = %q %+v %q", res.Text, res.Usage, res.StopReason)
	}
	reqs := p.requests(t)
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	// The loop fed the round back: the second request holds the assistant
	// message with its tool record.
	equalMsgs(t, "second request", reqs[1].Messages, []core.Message{hist[0], m1})
	if len(reqs[1].Tools) != len(e.rt.Tools.Specs()) || reqs[1].System != reqs[0].System {
		t.Errorf("second request: %d tools, same system %v", len(reqs[1].Tools), reqs[1].System == reqs[0].System)
	}
	want := []string{"text Let me ", "text look.", "start c1 read_file", "done c1 read_file err=false", "text It says hi."}
	if got := ev.get(); !slices.Equal(got, want) {
		t.Errorf("events\n%q\nwant\n%q", got, want)
	}
	// The caller's history is not modified.
	equalMsgs(t, "history", hist, []core.Message{user("what is in notes.txt?")})
}

// pingRounds answers every request with text "round N" and the given
// number of ping calls, all with distinct inputs.
func pingRounds(perRound int) func(n int, req core.Request) reply {
	return func(n int, req core.Request) reply {
		r := reply{chunks: []string{fmt.Sprintf("round %d", n+1)}}
		for i := range perRound {
			r.calls = append(r.calls, tc(fmt.Sprintf("r%d-%d", n+1, i), "ping", fmt.Sprintf(`{"r":%d,"i":%d}`, n+1, i)))
		}
		return r
	}
}

func TestMaxToolRounds(t *testing.T) {
	p := &fakeProvider{next: pingRounds(1)}
	e := newEnv(t, p)
	e.rt.MaxToolRounds = 2
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	reqs := p.requests(t)
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i := range 2 {
		if len(reqs[i].Tools) == 0 {
			t.Errorf("request %d has no tools", i)
		}
	}
	if reqs[2].Tools != nil {
		t.Errorf("last request has %d tools, want none", len(reqs[2].Tools))
	}
	r1 := rec("r1-0", "ping", `{"r":1,"i":0}`, `pong {"r":1,"i":0}`, false)
	r2 := rec("r2-0", "ping", `{"r":2,"i":0}`, `pong {"r":2,"i":0}`, false)
	note := core.Message{Role: core.RoleUser, Content: fmt.Sprintf(noteLimit, 2, MaxToolCalls), Timestamp: fixedNow.UnixMilli()}
	equalMsgs(t, "last request", reqs[2].Messages, []core.Message{user("go"), asst("round 1", r1), asst("round 2", r2), note})
	if !strings.Contains(note.Content, "Tool call limit reached") {
		t.Errorf("note %q", note.Content)
	}
	// The last round's calls are ignored; the note is not persisted.
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{asst("round 1", r1), asst("round 2", r2), asst("round 3")})
	if res.Text != "round 3" || e.pings.Load() != 2 {
		t.Errorf("Text %q, %d pings", res.Text, e.pings.Load())
	}
}

func TestDefaultMaxToolRounds(t *testing.T) {
	p := &fakeProvider{next: pingRounds(1)}
	e := newEnv(t, p)
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	reqs := p.requests(t)
	if len(reqs) != 11 || e.pings.Load() != 10 || reqs[10].Tools != nil || len(reqs[9].Tools) == 0 {
		t.Fatalf("%d requests, %d pings; want 10 rounds with tools and one without", len(reqs), e.pings.Load())
	}
	last := reqs[10].Messages[len(reqs[10].Messages)-1]
	if last.Content != fmt.Sprintf(noteLimit, 10, MaxToolCalls) {
		t.Errorf("note %q", last.Content)
	}
	if res.Text != "round 11" || len(res.Messages) != 11 {
		t.Errorf("Text %q, %d messages", res.Text, len(res.Messages))
	}
}

func TestToolCallCap(t *testing.T) {
	p := &fakeProvider{next: pingRounds(8)}
	e := newEnv(t, p)
	var ev events
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, ev.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if n := e.pings.Load(); n != MaxToolCalls {
		t.Errorf("%d calls executed, want %d", n, MaxToolCalls)
	}
	reqs := p.requests(t)
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	if reqs[3].Tools != nil {
		t.Errorf("final request has tools")
	}
	last := reqs[3].Messages[len(reqs[3].Messages)-1]
	if last.Role != core.RoleUser || !strings.Contains(last.Content, "Tool call limit reached") {
		t.Errorf("last message of the final request: %+v", last)
	}
	if len(res.Messages) != 4 {
		t.Fatalf("%d messages, want 4", len(res.Messages))
	}
	var run, refused int
	for round, m := range res.Messages[:3] {
		if len(m.ToolCalls) != 8 {
			t.Fatalf("round %d: %d records, want 8", round+1, len(m.ToolCalls))
		}
		for i, r := range m.ToolCalls {
			wantID := fmt.Sprintf("r%d-%d", round+1, i)
			if r.ID != wantID {
				t.Errorf("record %s out of order (want %s)", r.ID, wantID)
			}
			if round == 2 && i >= 4 {
				refused++
				if !r.IsError || r.Output != "not run: the limit of 20 tool calls per turn is reached" {
					t.Errorf("record %s past the cap: %+v", r.ID, r)
				}
				continue
			}
			run++
			if r.IsError || !strings.HasPrefix(r.Output, "pong ") {
				t.Errorf("record %s: %+v", r.ID, r)
			}
		}
	}
	if run != 20 || refused != 4 {
		t.Errorf("%d run, %d refused", run, refused)
	}
	if m := res.Messages[3]; m.Content != "round 4" || len(m.ToolCalls) != 0 {
		t.Errorf("final message %+v", m)
	}
	// Refused calls are reported too, so a client sees every call end.
	var starts, dones int
	for _, e := range ev.get() {
		starts += b2i(strings.HasPrefix(e, "start "))
		dones += b2i(strings.HasPrefix(e, "done "))
	}
	if starts != 24 || dones != 24 {
		t.Errorf("%d starts, %d dones, want 24 each", starts, dones)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestToolCallCapExactlyReached(t *testing.T) {
	p := &fakeProvider{next: pingRounds(5)}
	e := newEnv(t, p)
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	reqs := p.requests(t)
	if len(reqs) != 5 || reqs[4].Tools != nil || e.pings.Load() != 20 {
		t.Fatalf("%d requests, %d pings", len(reqs), e.pings.Load())
	}
	for _, m := range res.Messages {
		for _, r := range m.ToolCalls {
			if r.IsError {
				t.Errorf("record %+v refused", r)
			}
		}
	}
}

func TestLoopDetection(t *testing.T) {
	// The same call once per round, spelled differently: the third is a loop.
	inputs := []string{`{"path":"notes.txt"}`, `{ "path": "notes.txt" }`, "{\n\"path\":\"notes.txt\"}"}
	p := &fakeProvider{next: func(n int, req core.Request) reply {
		return reply{chunks: []string{"again"}, calls: []core.ToolCall{tc(fmt.Sprintf("c%d", n+1), "read_file", inputs[n%3])}}
	}}
	e := newEnv(t, p)
	e.write(t, "notes.txt", "hi\n")
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"path":"notes.txt"}`
	want := []core.Message{
		asst("again", rec("c1", "read_file", in, "     1\thi\n", false)),
		asst("again", rec("c2", "read_file", in, "     1\thi\n", false)),
		asst("again", rec("c3", "read_file", in, "not run: read_file was called with the same input 3 times in a row (a loop)", true)),
		asst("again"),
	}
	equalMsgs(t, "Result.Messages", res.Messages, want)
	reqs := p.requests(t)
	if len(reqs) != 4 || reqs[3].Tools != nil {
		t.Fatalf("%d requests; the 4th must have no tools", len(reqs))
	}
	last := reqs[3].Messages[len(reqs[3].Messages)-1]
	if last.Role != core.RoleUser || last.Content != fmt.Sprintf(noteLoop, "read_file", 3) || !strings.Contains(last.Content, "Loop detected") {
		t.Errorf("last message %+v", last)
	}
}

func TestLoopDetectionInOneResponse(t *testing.T) {
	call := `{"r":1}`
	p := &fakeProvider{replies: []reply{
		{calls: []core.ToolCall{tc("a", "ping", call), tc("b", "ping", call), tc("c", "ping", call), tc("d", "ping", `{"r":2}`)}},
		{chunks: []string{"ok"}},
	}}
	e := newEnv(t, p)
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	recs := res.Messages[0].ToolCalls
	if len(recs) != 4 || recs[0].IsError || recs[1].IsError || !recs[2].IsError || !strings.Contains(recs[2].Output, "loop") || recs[3].IsError {
		t.Errorf("records %+v", recs)
	}
	if e.pings.Load() != 3 {
		t.Errorf("%d pings, want 3", e.pings.Load())
	}
	if reqs := p.requests(t); len(reqs) != 2 || reqs[1].Tools != nil {
		t.Errorf("the request after a loop must have no tools")
	}
}

func TestNoLoopWhenInterrupted(t *testing.T) {
	// A A B A A: never three in a row.
	seq := []string{`{"x":"A"}`, `{"x":"A"}`, `{"x":"B"}`, `{"x":"A"}`, `{"x":"A"}`}
	p := &fakeProvider{next: func(n int, req core.Request) reply {
		if n < len(seq) {
			return reply{calls: []core.ToolCall{tc(strconv.Itoa(n), "ping", seq[n])}}
		}
		return reply{chunks: []string{"done"}}
	}}
	e := newEnv(t, p)
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	reqs := p.requests(t)
	if len(reqs) != 6 || e.pings.Load() != 5 || res.Text != "done" {
		t.Fatalf("%d requests, %d pings, text %q", len(reqs), e.pings.Load(), res.Text)
	}
	if len(reqs[5].Tools) == 0 {
		t.Error("tools withdrawn without a loop")
	}
}

func TestParallelReadOnly(t *testing.T) {
	p := &fakeProvider{replies: []reply{
		{calls: []core.ToolCall{
			tc("c1", "slow_read", `{"label":"a"}`),
			tc("c2", "slow_read", `{"label":"b"}`),
			tc("c3", "slow_read", `{"label":"c"}`),
		}},
		{chunks: []string{"done"}},
	}}
	e := newEnv(t, p)
	var ev events
	start := time.Now()
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, ev.hooks())
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	a, b, c := e.rec.get("a"), e.rec.get("b"), e.rec.get("c")
	// All three were running at one moment: each started before any ended.
	latestStart := maxTime(a.start, b.start, c.start)
	earliestEnd := minTime(a.end, b.end, c.end)
	if !latestStart.Before(earliestEnd) {
		t.Errorf("calls did not overlap: starts %v %v %v, ends %v %v %v", a.start, b.start, c.start, a.end, b.end, c.end)
	}
	t.Logf("three 200ms calls took %v", elapsed)
	want := []core.ToolCallRecord{
		rec("c1", "slow_read", `{"label":"a"}`, "slept a", false),
		rec("c2", "slow_read", `{"label":"b"}`, "slept b", false),
		rec("c3", "slow_read", `{"label":"c"}`, "slept c", false),
	}
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{asst("", want...), asst("done")})
	wantEv := []string{"start c1 slow_read", "start c2 slow_read", "start c3 slow_read",
		"done c1 slow_read err=false", "done c2 slow_read err=false", "done c3 slow_read err=false", "text done"}
	if got := ev.get(); !slices.Equal(got, wantEv) {
		t.Errorf("events\n%q\nwant\n%q", got, wantEv)
	}
}

func TestWriteSplitsParallelBatches(t *testing.T) {
	p := &fakeProvider{replies: []reply{
		{calls: []core.ToolCall{
			tc("c1", "slow_read", `{"label":"a"}`),
			tc("c2", "slow_read", `{"label":"b"}`),
			tc("c3", "slow_write", `{"label":"w"}`),
			tc("c4", "slow_read", `{"label":"c"}`),
			tc("c5", "slow_read", `{"label":"d"}`),
		}},
		{chunks: []string{"done"}},
	}}
	e := newEnv(t, p)
	var ev events
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, ev.hooks())
	if err != nil {
		t.Fatal(err)
	}
	a, b, w, c, d := e.rec.get("a"), e.rec.get("b"), e.rec.get("w"), e.rec.get("c"), e.rec.get("d")
	if !maxTime(a.start, b.start).Before(minTime(a.end, b.end)) {
		t.Error("a and b did not run in parallel")
	}
	if !maxTime(c.start, d.start).Before(minTime(c.end, d.end)) {
		t.Error("c and d did not run in parallel")
	}
	if w.start.Before(maxTime(a.end, b.end)) {
		t.Error("the write started before the reads before it ended")
	}
	if minTime(c.start, d.start).Before(w.end) {
		t.Error("reads after the write started before it ended")
	}
	var got []string
	for _, r := range res.Messages[0].ToolCalls {
		got = append(got, r.ID+"="+r.Output)
	}
	if want := []string{"c1=slept a", "c2=slept b", "c3=slept w", "c4=slept c", "c5=slept d"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	wantEv := []string{
		"start c1 slow_read", "start c2 slow_read", "done c1 slow_read err=false", "done c2 slow_read err=false",
		"start c3 slow_write", "done c3 slow_write err=false",
		"start c4 slow_read", "start c5 slow_read", "done c4 slow_read err=false", "done c5 slow_read err=false",
		"text done",
	}
	if got := ev.get(); !slices.Equal(got, wantEv) {
		t.Errorf("events\n%q\nwant\n%q", got, wantEv)
	}
}

func maxTime(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.After(m) {
			m = t
		}
	}
	return m
}

func minTime(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.Before(m) {
			m = t
		}
	}
	return m
}

func TestToolErrorsReachTheModel(t *testing.T) {
	p := &fakeProvider{replies: []reply{
		{calls: []core.ToolCall{
			tc("c1", "no_such_tool", `{"x":1}`),
			tc("c2", "fail", `{}`),
			tc("c3", "read_file", `{"path":"missing.txt"}`),
			tc("c4", "read_file", `{"path":3}`),
			tc("c5", "read_file", `not json`),
			tc("c6", "bash", `{"command":"echo out; exit 3"}`),
			tc("c7", "read_file", ``),
		}},
		{chunks: []string{"sorry"}},
	}}
	e := newEnv(t, p)
	res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
	if err != nil {
		t.Fatal(err)
	}
	recs := []core.ToolCallRecord{
		rec("c1", "no_such_tool", `{"x":1}`, `unknown tool "no_such_tool"`, true),
		rec("c2", "fail", `{}`, "boom: the test tool failed", true),
		rec("c3", "read_file", `{"path":"missing.txt"}`, "missing.txt: no such file or directory", true),
		rec("c4", "read_file", `{"path":3}`, `read_file: field "path" must be a string`, true),
		rec("c5", "read_file", `{}`, `"path" is required`, true), // invalid JSON is stored as {}
		rec("c6", "bash", `{"command":"echo out; exit 3"}`, "out\n[exit code 3]", true),
		rec("c7", "read_file", `{}`, `"path" is required`, true),
	}
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{asst("", recs...), asst("sorry")})
	reqs := p.requests(t)
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	equalMsgs(t, "second request", reqs[1].Messages, []core.Message{user("go"), asst("", recs...)})
}

func TestAbortDuringStream(t *testing.T) {
	cases := []struct {
		name      string
		cause     error
		status    string
		errorText string
	}{
		{"aborted", core.ErrAborted, core.StatusAborted, "turn aborted by the user"},
		{"interrupted", core.ErrInterrupted, core.StatusInterrupted, "turn interrupted: the gateway is shutting down"},
		{"plain cancel", nil, core.StatusAborted, "context canceled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			p := &fakeProvider{replies: []reply{{
				chunks: []string{"partial ", "never sent"},
				after: func(i int) {
					if i == 0 {
						cancel(tc.cause)
					}
				},
			}}}
			e := newEnv(t, p)
			var ev events
			res, err := e.rt.Run(ctx, "s", []core.Message{user("go")}, ev.hooks())
			if err == nil || err.Error() != tc.errorText {
				t.Fatalf("Run error %v, want %q", err, tc.errorText)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v is not the cause %v", err, tc.cause)
			}
			want := core.Message{Role: core.RoleAssistant, Content: "partial ", Timestamp: fixedNow.UnixMilli(), Status: tc.status, Error: tc.errorText}
			equalMsgs(t, "Result.Messages", res.Messages, []core.Message{want})
			if res.Text != "partial " || res.StopReason != tc.status {
				t.Errorf("Result %q %q %+v", res.Text, res.StopReason, res.Usage)
			}
			if got := ev.get(); !slices.Equal(got, []string{"text partial "}) {
				t.Errorf("events %q", got)
			}
		})
	}
}

func TestAbortInSecondRoundKeepsTheFirst(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	p := &fakeProvider{replies: []reply{
		{chunks: []string{"checking"}, calls: []core.ToolCall{tc("c1", "ping", `{}`)}},
		{chunks: []string{"half"}, block: true, after: func(int) { cancel(core.ErrAborted) }},
	}}
	e := newEnv(t, p)
	res, err := e.rt.Run(ctx, "s", []core.Message{user("go")}, Events{})
	if !errors.Is(err, core.ErrAborted) {
		t.Fatalf("Run error %v", err)
	}
	equalMsgs(t, "Result.Messages", res.Messages, []core.Message{
		asst("checking", rec("c1", "ping", `{}`, "pong {}", false)),
		{Role: core.RoleAssistant, Content: "half", Timestamp: fixedNow.UnixMilli(), Status: core.StatusAborted, Error: core.ErrAborted.Error()},
	})
}

func TestAbortDuringBash(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	p := &fakeProvider{replies: []reply{
		{chunks: []string{"running"}, calls: []core.ToolCall{
			tc("c1", "bash", `{"command":"sleep 30 & echo $! > pidfile; wait"}`),
			tc("c2", "write_file", `{"path":"after.txt","content":"too late"}`),
		}},
		{chunks: []string{"unreachable"}},
	}}
	e := newEnv(t, p)
	var ev events
	type result struct {
		res Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := e.rt.Run(ctx, "s", []core.Message{user("go")}, ev.hooks())
		done <- result{res, err}
	}()
	pid, err := strconv.Atoi(waitFile(t, filepath.Join(e.dir, "pidfile")))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cancel(core.ErrAborted)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the abort")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run returned %v after the abort", d)
	}
	if !errors.Is(r.err, core.ErrAborted) {
		t.Errorf("Run error %v", r.err)
	}
	want := []core.Message{
		asst("running",
			rec("c1", "bash", `{"command":"sleep 30 & echo $! > pidfile; wait"}`, "\n[command aborted]", true),
			rec("c2", "write_file", `{"path":"after.txt","content":"too late"}`, "not run: the turn was aborted", true)),
		{Role: core.RoleAssistant, Timestamp: fixedNow.UnixMilli(), Status: core.StatusAborted, Error: "turn aborted by the user"},
	}
	equalMsgs(t, "Result.Messages", r.res.Messages, want)
	if _, err := os.Stat(filepath.Join(e.dir, "after.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a write ran after the abort: %v", err)
	}
	if reqs := p.requests(t); len(reqs) != 1 {
		t.Errorf("%d requests after an abort in round 1", len(reqs))
	}
	wantEv := []string{"text running", "start c1 bash", "done c1 bash err=true", "start c2 write_file", "done c2 write_file err=true"}
	if got := ev.get(); !slices.Equal(got, wantEv) {
		t.Errorf("events %q", got)
	}
	testutil.WaitGone(t, pid)
}

func TestProviderError(t *testing.T) {
	t.Run("first round", func(t *testing.T) {
		perr := errors.New("anthropic: 529 overloaded_error")
		p := &fakeProvider{replies: []reply{{chunks: []string{"Hm"}, err: perr}}}
		e := newEnv(t, p)
		res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
		if err != perr {
			t.Fatalf("Run error %v", err)
		}
		equalMsgs(t, "Result.Messages", res.Messages, []core.Message{
			{Role: core.RoleAssistant, Content: "Hm", Timestamp: fixedNow.UnixMilli(), Status: core.StatusError, Error: "anthropic: 529 overloaded_error"},
		})
		if res.StopReason != core.StatusError || res.Text != "Hm" {
			t.Errorf("Result %q %q", res.StopReason, res.Text)
		}
	})
	t.Run("after a tool round", func(t *testing.T) {
		p := &fakeProvider{replies: []reply{
			{calls: []core.ToolCall{tc("c1", "ping", `{}`)}, usage: core.Usage{InputTokens: 5, OutputTokens: 1}},
			{err: errors.New("connection reset")},
		}}
		e := newEnv(t, p)
		res, err := e.rt.Run(context.Background(), "s", []core.Message{user("go")}, Events{})
		if err == nil || err.Error() != "connection reset" {
			t.Fatalf("Run error %v", err)
		}
		round := asst("", rec("c1", "ping", `{}`, "pong {}", false))
		round.Usage = &core.Usage{InputTokens: 5, OutputTokens: 1}
		equalMsgs(t, "Result.Messages", res.Messages, []core.Message{
			round,
			{Role: core.RoleAssistant, Timestamp: fixedNow.UnixMilli(), Status: core.StatusError, Error: "connection reset"},
		})
		if res.Usage != (core.Usage{InputTokens: 5, OutputTokens: 1}) {
			t.Errorf("usage %+v", res.Usage)
		}
	})
}

func TestConcurrentTurns(t *testing.T) {
	// One runtime serves many sessions at once.
	p := &fakeProvider{next: func(n int, req core.Request) reply {
		if req.Messages[len(req.Messages)-1].Role == core.RoleUser {
			return reply{chunks: []string{"a", "b"}, calls: []core.ToolCall{
				tc("x", "slow_read", `{"label":"`+req.Messages[0].Content+`-1"}`),
				tc("y", "read_file", `{"path":"notes.txt"}`),
				tc("z", "slow_read", `{"label":"`+req.Messages[0].Content+`-2"}`),
			}}
		}
		return reply{chunks: []string{"done ", req.Messages[0].Content}}
	}}
	e := newEnv(t, p)
	e.write(t, "notes.txt", "hi\n")
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			id := fmt.Sprintf("s%d", i)
			res, err := e.rt.Run(context.Background(), "s", []core.Message{user(id)}, Events{OnText: func(string) {}})
			switch {
			case err != nil:
				errs <- err
			case res.Text != "done "+id || len(res.Messages) != 2 || res.Messages[0].ToolCalls[2].Output != "slept "+id+"-2":
				errs <- fmt.Errorf("turn %s: %+v", id, res)
			default:
				errs <- nil
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := e.rec.count(); got != 2*n {
		t.Errorf("%d slow calls ran, want %d", got, 2*n)
	}
}

func TestModelHistory(t *testing.T) {
	r1 := rec("t1", "read_file", `{"path":"a"}`, "     1\tx\n", false)
	cases := []struct {
		name string
		in   []core.Message
		want []core.Message
	}{
		{"empty", nil, []core.Message{}},
		{"just a user", []core.Message{user("q")}, []core.Message{user("q")}},
		{
			"leading assistant messages dropped",
			[]core.Message{asst("orphan"), asst("", r1), user("q")},
			[]core.Message{user("q")},
		},
		{
			"system lines dropped",
			[]core.Message{{Role: core.RoleSystem, Content: "compacted"}, user("q")},
			[]core.Message{user("q")},
		},
		{
			"empty failed replies dropped (and noted), tool records kept",
			[]core.Message{
				user("q1"),
				asst("", r1),
				{Role: core.RoleAssistant, Status: core.StatusAborted, Error: "turn aborted by the user", Timestamp: 5},
				user("q2"),
				{Role: core.RoleAssistant, Status: core.StatusError, Error: "boom", Timestamp: 6},
				{Role: core.RoleAssistant, Content: "half a reply", Status: core.StatusInterrupted, Timestamp: 7},
				user("q3"),
			},
			[]core.Message{
				user("q1"),
				asst("", r1),
				user("[miniclaw] The previous message got no reply: the user aborted it."),
				user("q2"),
				{Role: core.RoleAssistant, Content: "half a reply", Status: core.StatusInterrupted, Timestamp: 7},
				user("q3"),
			},
		},
		{
			"assistant before the first user, after a system line",
			[]core.Message{{Role: core.RoleSystem, Content: "s"}, asst("a"), user("q"), asst("r"), user("q2")},
			[]core.Message{user("q"), asst("r"), user("q2")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := modelHistory(tc.in)
			equalMsgs(t, "modelHistory", got, tc.want)
		})
	}
	// Run gives the model exactly modelHistory of the transcript.
	p := &fakeProvider{replies: []reply{{chunks: []string{"ok"}}}}
	e := newEnv(t, p)
	in := cases[4].in
	if _, err := e.rt.Run(context.Background(), "s", in, Events{}); err != nil {
		t.Fatal(err)
	}
	equalMsgs(t, "request", p.requests(t)[0].Messages, cases[4].want)
}
