package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/provider/anthropic"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// longSession is a gateway on the Anthropic provider against a fake
// Messages API with a 100k-token window, with read_file on a workspace
// holding big.txt (100 KB).
type longSession struct {
	api    *pt.FakeAPI
	window *pt.Window
	ws     string
	budget int64 // the runtime's ContextWindow
}

func newLongSession(t *testing.T) *longSession {
	t.Helper()
	ls := &longSession{ws: t.TempDir(), budget: 100_000}
	if err := os.WriteFile(filepath.Join(ls.ws, "big.txt"), []byte(strings.Repeat("0123456789abcdef\n", 6000)), 0o644); err != nil {
		t.Fatal(err)
	}
	summaries := 0
	ls.window = &pt.Window{Size: 100_000, BytesPerToken: 3.5, Reply: func(r pt.WindowRequest) pt.WindowAnswer {
		switch {
		case strings.HasPrefix(r.System, "You compact the history"):
			summaries++
			return pt.WindowAnswer{Text: fmt.Sprintf("## What the user wants\nTo read big.txt again and again (summary %d).", summaries)}
		case strings.Contains(r.LastUserText(), "please read big.txt"):
			return pt.WindowAnswer{ToolName: "read_file", ToolInput: `{"path":"big.txt"}`}
		}
		return pt.WindowAnswer{Text: "big.txt holds hex digits."}
	}}
	ls.api = pt.NewFakeAPI(t, ls.window.Handler(t))
	return ls
}

// start runs a gateway on dir with a fresh runtime (as a restarted
// process would have: no calibration in memory).
func (ls *longSession) start(t *testing.T, dir string, opts ...func(*gateway.Options)) *testServer {
	t.Helper()
	ws, err := tools.OpenWorkspace(ls.ws)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	rt := &agent.Runtime{
		Provider: anthropic.New(anthropic.Options{APIKey: "test-key", BaseURL: ls.api.URL(), MaxRetries: -1}),
		Model:    "claude-test", Workspace: ls.ws, Tools: tools.NewSet(ws.FileTools()...),
		ContextWindow: ls.budget, ReplyTokens: anthropic.DefaultMaxTokens, Sizes: budget.NewCalibration(),
	}
	return startServerIn(t, dir, nil, append([]func(*gateway.Options){func(o *gateway.Options) { o.Runtime = rt }}, opts...)...)
}

// compactionsOf returns the compaction events among evs.
func compactionsOf(t *testing.T, evs []event) []map[string]any {
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type == "compaction" {
			out = append(out, ev.fields(t))
		}
	}
	return out
}

// userTurn is turn i's message: a request to read big.txt and 30 KB of
// pasted notes, which no elision can shrink.
func userTurn(i int) string {
	return fmt.Sprintf("please read big.txt (turn %d)\n\n%s", i, strings.Repeat(fmt.Sprintf("pasted note %d: keep this.\n", i), 1200))
}

// TestLongSessionStaysInTheWindow plays turns that each read a 100 KB file
// against a model with a 100k-token window (without a budget, the fourth
// fails as too long): every turn completes, no request is refused or over
// the window, older messages are summarised (the compaction event says
// so), and the transcript only ever grows: every byte on disk before a
// turn is still there, unchanged, after it. Then the gateway restarts on
// the same directory and the next turn starts from the summary.
func TestLongSessionStaysInTheWindow(t *testing.T) {
	ls := newLongSession(t)
	dir := filepath.Join(t.TempDir(), "sessions")
	ts := ls.start(t, dir)
	c := ts.dial(t, "/ws?sessionId=long")
	path := filepath.Join(dir, "long.jsonl")
	var before []byte
	var compactions []map[string]any
	for i := range 8 {
		evs := turnEvents(t, c, userTurn(i))
		compactions = append(compactions, compactionsOf(t, evs)...)
		for _, ev := range evs {
			// message_done says how full the window was, as the provider counted.
			if ev.Type == "message_done" && (ev.Context == nil || ev.Context.Window != ls.budget || ev.Context.Tokens <= 0 || ev.Context.Tokens > ls.budget) {
				t.Errorf("turn %d: message_done context %+v, want tokens within the window of %d", i, ev.Context, ls.budget)
			}
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(after, before) {
			t.Fatalf("turn %d changed the transcript's first %d bytes", i, len(before))
		}
		before = after
	}
	counts, served := ls.window.Counts(), ls.window.Served()
	if len(counts) != len(served) {
		t.Errorf("%d of %d requests were refused as too long", len(counts)-len(served), len(counts))
	}
	for i, n := range counts {
		if n+anthropic.DefaultMaxTokens > ls.window.Size {
			t.Errorf("request %d: %d tokens and the reply's room are over the window of %d", i, n, ls.window.Size)
		}
	}
	if len(compactions) == 0 {
		t.Fatal("no compaction event")
	}
	for _, ev := range compactions {
		if ev["sessionId"] != "long" || ev["coveredMessages"].(float64) < 1 || ev["tokensAfter"].(float64) >= ev["tokensBefore"].(float64) {
			t.Errorf("compaction event %v", ev)
		}
	}
	summary := lastSummary(t, before)
	if summary.Covers < 1 || !strings.Contains(summary.Content, "## What the user wants") {
		t.Errorf("summary record %+v", summary)
	}

	// Restart: a new store and server on the same directory.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ts.store.Close()
	n := len(ls.window.Served())
	ts2 := ls.start(t, dir)
	c2 := ts2.dial(t, "/ws?sessionId=long")
	turnEvents(t, c2, "what did we do?")
	first := ls.window.Served()[n]
	body := string(first.Body)
	if !strings.Contains(body, "Summary of the earlier conversation") || !strings.Contains(body, summary.Content[:20]) {
		t.Errorf("the request after the restart does not start from the summary:\n%.400s", body)
	}
	if strings.Contains(body, "(turn 0)") {
		t.Error("the request after the restart holds the first turn, which the summary covers")
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, before) {
		t.Error("the turn after the restart changed earlier transcript bytes")
	}
}

// lastSummary is the last summary record of a transcript.
func lastSummary(t *testing.T, jsonl []byte) core.Message {
	t.Helper()
	var last core.Message
	for _, line := range bytes.Split(bytes.TrimSpace(jsonl), []byte("\n")) {
		var m core.Message
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		if m.Role == core.RoleSummary {
			last = m
		}
	}
	if last.Role == "" {
		t.Fatal("no summary record in the transcript")
	}
	return last
}

// TestOverflowRecoveredWithoutAWindow: with no window configured, the
// model's refusals (the SDK's error for Anthropic's exact 400) are
// recovered from by compacting and retrying: no turn fails.
func TestOverflowRecoveredWithoutAWindow(t *testing.T) {
	ls := newLongSession(t)
	ls.budget = 0
	ts := ls.start(t, filepath.Join(t.TempDir(), "sessions"))
	c := ts.dial(t, "/ws?sessionId=nowindow")
	for i := range 6 {
		turnEvents(t, c, userTurn(i))
	}
	if counts, served := ls.window.Counts(), ls.window.Served(); len(counts) == len(served) {
		t.Error("no request was refused: the test does not exercise the recovery")
	}
}

// TestCompactOnDemand: {type:"compact"} over the WebSocket and POST
// /api/sessions/{id}/compact summarise everything but the latest exchange,
// on the session's lane; the clients see the compaction event, the
// transcript gains one summary line (the API shows it as role "summary"
// and still every message), and a second compact with nothing new to
// summarise is refused with a clear error.
func TestCompactOnDemand(t *testing.T) {
	ls := newLongSession(t)
	ts := ls.start(t, filepath.Join(t.TempDir(), "sessions"))
	c := ts.dial(t, "/ws?sessionId=oc")
	for i := range 2 {
		turnEvents(t, c, fmt.Sprintf("please read big.txt (turn %d)", i))
	}
	// Sent while the third turn runs, the compact waits for it on the lane.
	c.message("please read big.txt (turn 2)")
	c.send(map[string]string{"type": "compact"})
	var order []string
	var ev map[string]any // the compaction event
	for ev == nil {
		switch got := c.next(); got.Type {
		case "compaction":
			ev = got.fields(t)
			fallthrough
		case "message_done", "error":
			order = append(order, got.Type)
		}
	}
	if fmt.Sprint(order) != "[message_done compaction]" {
		t.Fatalf("events %v, want the turn's message_done before the compaction", order)
	}
	// Three turns of three lines: the summary covers the first two.
	if ev["sessionId"] != "oc" || ev["coveredMessages"] != float64(6) || ev["tokensAfter"].(float64) >= ev["tokensBefore"].(float64) {
		t.Errorf("compaction event %v, want 6 messages covered and fewer tokens after", ev)
	}
	var view sessionView
	ts.doJSON(t, "GET", "/api/sessions/oc", nil, 200, &view)
	if n := len(view.Messages); n != 10 || view.Messages[9].Role != core.RoleSummary || view.Messages[9].Covers != 6 {
		t.Fatalf("API shows %d messages, the last %+v; want the 9 messages and the summary", n, view.Messages[n-1].Role)
	}

	// Over HTTP, after one more turn; the WebSocket client sees it too.
	turnEvents(t, c, "please read big.txt (turn 3)")
	var got map[string]any
	ts.doJSON(t, "POST", "/api/sessions/oc/compact", nil, 200, &got)
	if got["type"] != "compaction" || got["coveredMessages"] != float64(10) {
		t.Errorf("POST compact = %v, want 10 lines covered (up to the last exchange)", got)
	}
	if ev := c.expect("compaction").fields(t); ev["coveredMessages"] != float64(10) {
		t.Errorf("WebSocket client saw %v", ev)
	}
	ts.wantAPIError(t, "POST", "/api/sessions/oc/compact", nil, 409, "conflict")
	c.send(map[string]string{"type": "compact"})
	if e := c.expectError("conflict"); !strings.Contains(e.Message, "nothing to compact") {
		t.Errorf("second compact: %s", e.Raw)
	}
	ts.wantAPIError(t, "POST", "/api/sessions/nope/compact", nil, 404, "not_found")

	// The next turn starts from the latest summary.
	n := len(ls.window.Served())
	turnEvents(t, c, "and now?")
	body := string(ls.window.Served()[n].Body)
	if !strings.Contains(body, "(summary 2)") || strings.Contains(body, "(turn 2)") {
		t.Errorf("the turn after /compact does not start from the latest summary:\n%.300s", body)
	}
}

// TestCompactAbortedIsAConflict: a compaction a client aborts answers
// POST /api/sessions/{id}/compact with 409 aborted (the request was fine;
// a client stopped it), not a 500.
func TestCompactAbortedIsAConflict(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p)
	c := ts.dial(t, "/ws?sessionId=ca")
	for _, m := range []string{"a", "b"} {
		c.message(m)
		<-p.started
		p.next <- struct{}{}
		if tn := c.readTurn(); tn.done.Type != "message_done" {
			t.Fatalf("turn %q ended with %s", m, tn.done.Raw)
		}
	}
	go func() {
		<-p.started // the summary's model call
		c.send(map[string]string{"type": "abort"})
	}()
	ts.wantAPIError(t, "POST", "/api/sessions/ca/compact", nil, 409, "aborted")
}
