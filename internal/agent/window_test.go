package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/core"
)

// bigOutput is a read_file result of 100 KB.
var bigOutput = strings.Repeat("0123456789abcdef\n", 6000) // 102,000 bytes

// readTurn is one past turn that read a big file: the user's message, the
// round with the call, and the reply.
func readTurn(i int) []core.Message {
	id := fmt.Sprintf("r%d", i)
	return []core.Message{
		user(fmt.Sprintf("please read big%d.txt", i)),
		asst("", rec(id, "read_file", fmt.Sprintf(`{"path":"big%d.txt"}`, i), bigOutput, false)),
		asst(fmt.Sprintf("big%d.txt holds hex digits.", i)),
	}
}

// windowed is a provider that answers summary calls with a summary and
// other calls with "ok", and counts each request as a model with window
// tokens would (at 3.5 bytes a token, unlike the estimate): a request over
// it fails as Anthropic's does.
func windowed(window int64) *fakeProvider {
	p := &fakeProvider{}
	p.next = func(n int, req core.Request) reply {
		tokens := windowedTokens(req)
		if tokens > window-int64(budget.BytesPerToken) {
			return reply{err: &core.OverflowError{Provider: "fake", Tokens: tokens, Limit: window, Detail: fmt.Sprintf("prompt is too long: %d tokens > %d maximum", tokens, window)}}
		}
		u := core.Usage{InputTokens: tokens, OutputTokens: 10}
		if req.System == summarySystem {
			return reply{chunks: []string{"## What the user wants\nRead files."}, usage: u}
		}
		return reply{chunks: []string{"ok"}, usage: u}
	}
	return p
}

// windowedTokens is a request's size as windowed counts it: every part the
// estimate counts, at 3.5 bytes a token instead of 4.
func windowedTokens(req core.Request) int64 {
	return budget.Estimate(req) * 8 / 7
}

// TestOldToolOutputsAreElidedFirst: over budget, the outputs of all but the
// last two turns are cut to a head and a tail with a note; the history
// given is not changed, and nothing is summarised when that suffices.
func TestOldToolOutputsAreElidedFirst(t *testing.T) {
	p := windowed(1_000_000)
	e := newEnv(t, p)
	e.rt.ContextWindow, e.rt.ReplyTokens = 100_000, 8192
	var hist []core.Message
	for i := range 3 {
		hist = append(hist, readTurn(i)...)
	}
	hist = append(hist, user("and now?"))
	var compactions int
	if _, err := e.rt.Run(context.Background(), "s", hist, Events{OnCompaction: func(Compaction) { compactions++ }}); err != nil {
		t.Fatal(err)
	}
	req := p.requests(t)[0]
	outs := map[string]string{}
	for _, m := range req.Messages {
		for _, r := range m.ToolCalls {
			outs[r.ID] = r.Output
		}
	}
	note := "[read_file output: 102,000 characters, elided from the model's view; the transcript keeps it whole]"
	if !strings.Contains(outs["r0"], note) || !strings.Contains(outs["r1"], note) || len(outs["r0"]) > 3000 {
		t.Errorf("older outputs not elided: r0 %d bytes, r1 %d bytes", len(outs["r0"]), len(outs["r1"]))
	}
	if outs["r2"] != bigOutput {
		t.Errorf("the previous turn's output was cut (%d bytes)", len(outs["r2"]))
	}
	if hist[1].ToolCalls[0].Output != bigOutput {
		t.Error("the history given to Run was changed")
	}
	if compactions != 0 {
		t.Errorf("%d compactions, want none: eliding was enough", compactions)
	}
}

// TestCompactionNeverSplitsAToolPair runs turns over histories of every
// shape against a small window: each compaction cuts at a user message,
// the request after it is the summary and then the history from the cut
// (every tool call still with its result), and it fits the window.
func TestCompactionNeverSplitsAToolPair(t *testing.T) {
	multi := asst("two at once", rec("m1", "read_file", `{"path":"a"}`, bigOutput, false), rec("m2", "list_files", `{}`, "a\nb", false))
	failed := core.Message{Role: core.RoleAssistant, Content: "", Status: core.StatusError, Error: "boom", Timestamp: 1}
	rounds := []core.Message{user("two rounds"), asst("", rec("x1", "read_file", `{"path":"x"}`, bigOutput, false)), asst("", rec("x2", "read_file", `{"path":"y"}`, bigOutput, false)), asst("done")}
	cases := map[string][]core.Message{
		"read turns":                      append(append(append(readTurn(0), readTurn(1)...), readTurn(2)...), readTurn(3)...),
		"several calls in a round":        append(append(append([]core.Message{user("read both")}, multi, asst("read")), readTurn(1)...), readTurn(2)...),
		"several rounds in a turn":        append(append(append([]core.Message{}, rounds...), rounds...), readTurn(2)...),
		"a turn that failed after a call": append(append(append([]core.Message{user("go"), asst("", rec("f1", "read_file", `{}`, bigOutput, false)), failed}, readTurn(1)...), readTurn(2)...), readTurn(3)...),
		"after an earlier summary":        append(append(append([]core.Message{{Role: core.RoleSummary, Content: "The user reads files."}}, readTurn(5)...), readTurn(6)...), readTurn(7)...),
	}
	for name, hist := range cases {
		t.Run(name, func(t *testing.T) {
			const window = 34_000
			p := windowed(window)
			e := newEnv(t, p)
			e.rt.ContextWindow, e.rt.ReplyTokens = window, 4096
			hist := append(hist, user("what next?"))
			var got []Compaction
			if _, err := e.rt.Run(context.Background(), "s", hist, Events{OnCompaction: func(c Compaction) { got = append(got, c) }}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d compactions, want 1", len(got))
			}
			c := got[0]
			if hist[c.Covers].Role != core.RoleUser || c.TokensAfter >= c.TokensBefore {
				t.Errorf("cut at %d (%s), tokens %d → %d", c.Covers, hist[c.Covers].Role, c.TokensBefore, c.TokensAfter)
			}
			reqs := p.requests(t)
			if reqs[0].System != summarySystem || len(reqs[0].Tools) != 0 {
				t.Errorf("first call is not the summary call: %.60q", reqs[0].System)
			}
			last := reqs[len(reqs)-1]
			if !strings.HasPrefix(last.Messages[0].Content, summaryLead+"## What the user wants") {
				t.Errorf("request does not start with the summary: %.100q", last.Messages[0].Content)
			}
			want := modelHistory(hist[c.Covers:])
			if len(last.Messages) != 1+len(want) {
				t.Fatalf("request has %d messages after the summary, want %d:\n%s", len(last.Messages)-1, len(want), dump(last.Messages))
			}
			for i, m := range last.Messages[1:] {
				if m.Role != want[i].Role || len(m.ToolCalls) != len(want[i].ToolCalls) {
					t.Fatalf("message %d: %s with %d calls, want %s with %d", i, m.Role, len(m.ToolCalls), want[i].Role, len(want[i].ToolCalls))
				}
				for j, r := range m.ToolCalls {
					if w := want[i].ToolCalls[j]; r.ID != w.ID || r.Output == "" {
						t.Errorf("message %d call %d: %s with output %d bytes, want %s with its result", i, j, r.ID, len(r.Output), w.ID)
					}
				}
			}
			for i, r := range reqs {
				if size := budget.Estimate(r) * budget.BytesPerToken * 2 / 7; size > window {
					t.Errorf("request %d is %d tokens, over the window %d", i, size, window)
				}
			}
		})
	}
}

// TestOverflowIsRecoveredOnce: a refusal of the prompt as too long makes
// the turn compact and retry without an error; a second refusal ends the
// turn with an error that says what to do.
func TestOverflowIsRecoveredOnce(t *testing.T) {
	var hist []core.Message
	for i := range 4 {
		hist = append(hist, readTurn(i)...)
	}
	hist = append(hist, user("what next?"))

	// The runtime thinks the window is 1M; the model's is 30k.
	p := windowed(30_000)
	e := newEnv(t, p)
	e.rt.ContextWindow, e.rt.ReplyTokens = 1_000_000, 8192
	e.rt.Sizes = budget.NewCalibration()
	var compactions int
	res, err := e.rt.Run(context.Background(), "s", hist, Events{OnCompaction: func(Compaction) { compactions++ }})
	if err != nil || res.Text != "ok" || compactions != 1 {
		t.Fatalf("Run = %q, %v after %d compactions; want ok after 1", res.Text, err, compactions)
	}
	if reqs := p.requests(t); len(reqs) != 3 {
		t.Errorf("%d requests, want 3: the refused one, the summary, the retry", len(reqs))
	}
	// The window the model named is kept: the next turn fits its request
	// to it instead of being refused again.
	hist = append(append(append(hist, asst("ok")), readTurn(5)...), user("and now?"))
	if res, err := e.rt.Run(context.Background(), "s", hist, Events{}); err != nil || res.Text != "ok" {
		t.Fatalf("next turn: Run = %q, %v", res.Text, err)
	}
	for i, req := range p.requests(t)[3:] {
		if n := windowedTokens(req); n > 30_000 {
			t.Errorf("next turn: request %d of %d tokens was sent over the 30,000 the model named", i, n)
		}
	}

	always := &fakeProvider{replies: []reply{{err: &core.OverflowError{Provider: "fake", Detail: "prompt is too long"}}}}
	e = newEnv(t, always)
	e.rt.ContextWindow, e.rt.ReplyTokens = 1_000_000, 8192
	_, err = e.rt.Run(context.Background(), "s", hist, Events{})
	if !errors.Is(err, core.ErrContextOverflow) || !strings.Contains(err.Error(), "/compact") || !strings.Contains(err.Error(), "MINI_OPENCLAW_CONTEXT_WINDOW") {
		t.Errorf("second refusal: %v", err)
	}
}

// TestCalibrationSeededFromTheTranscript: a runtime that has not seen the
// session (a restart) takes the ratio from the usage the transcript kept on
// the last assistant message, against its estimate of that request.
func TestCalibrationSeededFromTheTranscript(t *testing.T) {
	p := &fakeProvider{replies: []reply{{chunks: []string{"ok"}}}} // reports no usage: nothing is observed
	e := newEnv(t, p)
	e.rt.ContextWindow, e.rt.ReplyTokens = 100_000, 8192
	hist := []core.Message{user("hi"), asst("hello"), user("again")}
	if _, err := e.rt.Run(context.Background(), "s", hist, Events{}); err != nil {
		t.Fatal(err)
	}
	first := p.requests(t)[0]
	est := budget.Estimate(core.Request{System: first.System, Volatile: first.Volatile, Tools: first.Tools, Messages: first.Messages[:1]})

	e.rt.Sizes = budget.NewCalibration()
	hist[1].Usage = &core.Usage{InputTokens: est, CacheReadTokens: est} // the provider counted twice the estimate
	if _, err := e.rt.Run(context.Background(), "s", hist, Events{}); err != nil {
		t.Fatal(err)
	}
	if got := e.rt.Sizes.Tokens("s", 1000); got != 2100 {
		t.Errorf("seeded calibration: 1000 estimated tokens count %d, want 2100 (ratio 2 and the 5%% margin)", got)
	}
}

// TestElisionBoundaryStaysUntilItMustMove: over the turns of a session,
// the turns whose outputs are elided stay those of the previous request as
// long as that fits, so each request's elided part is exactly the previous
// request's (what a provider's prefix cache needs); when it no longer fits,
// the boundary moves once, as far as it may: to all but the last two turns,
// which are never elided.
func TestElisionBoundaryStaysUntilItMustMove(t *testing.T) {
	p := windowed(10_000_000)
	e := newEnv(t, p)
	e.rt.ContextWindow, e.rt.ReplyTokens = 200_000, 8192
	e.rt.Sizes = budget.NewCalibration()
	var last, prefix string // the previous request's elided turns and its messages up to them
	for k, tc := range []struct {
		past int // read turns before the new message
		want string
	}{
		{5, ""},                  // under budget: nothing elided
		{7, "r0 r1 r2 r3 r4 r5"}, // over: all but the last two turns
		{8, "r0 r1 r2 r3 r4 r5"},
		{12, "r0 r1 r2 r3 r4 r5"},
		{13, "r0 r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11"}, // the boundary moved
		{14, "r0 r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11"},
	} {
		n := tc.past
		var hist []core.Message
		for i := range n {
			hist = append(hist, readTurn(i)...)
		}
		hist = append(hist, user("next"))
		from := len(p.requests(t))
		if _, err := e.rt.Run(context.Background(), "s", hist, Events{}); err != nil {
			t.Fatal(err)
		}
		req := p.requests(t)[from]
		var elided []string
		for _, m := range req.Messages {
			for _, r := range m.ToolCalls {
				if r.Output != bigOutput {
					elided = append(elided, r.ID)
				}
			}
		}
		got := strings.Join(elided, " ")
		if got != tc.want {
			t.Errorf("%d past turns: elided %q, want %q", n, got, tc.want)
		}
		head := fmt.Sprint(req.Messages[:3*len(elided)])
		if k > 0 && got == last && head != prefix {
			t.Errorf("%d past turns: the elided part differs from the previous request's", n)
		}
		last, prefix = got, head
	}
}

// TestMaxHistoryCompacts: a history with MaxHistory messages after its
// summary is compacted, however small, so that none falls off the bound of
// what is loaded unsummarised; a shorter one is not.
func TestMaxHistoryCompacts(t *testing.T) {
	hist := []core.Message{user("a"), asst("1"), user("b"), asst("2"), user("c")}
	for _, tc := range []struct {
		max  int
		want []int // Covers of the compactions
	}{{5, []int{4}}, {6, nil}} {
		e := newEnv(t, windowed(1_000_000))
		e.rt.ContextWindow, e.rt.ReplyTokens, e.rt.MaxHistory = 100_000, 8192, tc.max
		var got []int
		if _, err := e.rt.Run(context.Background(), "s", hist, Events{OnCompaction: func(c Compaction) { got = append(got, c.Covers) }}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("MaxHistory %d: compactions covering %v, want %v", tc.max, got, tc.want)
		}
	}
}
