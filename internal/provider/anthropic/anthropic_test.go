package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// The fixtures themselves must be what the API sends: every data line is a
// JSON object whose "type" matches its event line.
func TestFixturesAreWellFormed(t *testing.T) {
	for _, name := range []string{"text.sse", "tool_use.sse", "multi_tool.sse", "overloaded_before_text.sse", "overloaded_after_text.sse", "cut.sse"} {
		events := sseEvents(fixture(t, name))
		if len(events) < 3 {
			t.Errorf("%s: only %d events", name, len(events))
		}
		for _, ev := range events {
			lines := strings.Split(strings.TrimSuffix(string(ev), "\n\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
				t.Fatalf("%s: malformed event %q", name, ev)
			}
			var data struct{ Type string }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &data); err != nil {
				t.Fatalf("%s: %v in %q", name, err, lines[1])
			}
			if want := strings.TrimPrefix(lines[0], "event: "); data.Type != want {
				t.Errorf("%s: event %q carries data of type %q", name, want, data.Type)
			}
		}
	}
}

func TestTextOnly(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	var c collector
	resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), c.onText)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Hello", "! How can", " I help you today?"}
	if got := c.got(); !slices.Equal(got, want) {
		t.Errorf("onText got %q, want %q", got, want)
	}
	if resp.Text != strings.Join(want, "") {
		t.Errorf("Text = %q", resp.Text)
	}
	if resp.Usage != (core.Usage{InputTokens: 472, OutputTokens: 12}) {
		t.Errorf("Usage = %+v", resp.Usage)
	}
	if resp.StopReason != "end_turn" {
		t.Errorf("StopReason = %q", resp.StopReason)
	}
	if len(resp.ToolCalls) != 0 {
		t.Errorf("ToolCalls = %+v", resp.ToolCalls)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestToolUseInputSplitAcrossDeltas(t *testing.T) {
	api := newFakeAPI(t, sse(t, "tool_use.sse"))
	var c collector
	resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), c.onText)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.got(); !slices.Equal(got, []string{"Let me check", " the weather."}) {
		t.Errorf("onText got %q", got)
	}
	if resp.Text != "Let me check the weather." {
		t.Errorf("Text = %q", resp.Text)
	}
	if len(resp.ToolCalls) != 1 {
		t.Fatalf("ToolCalls = %+v", resp.ToolCalls)
	}
	tc := resp.ToolCalls[0]
	if tc.ID != "toolu_01T1x1fJ34qAmk2tNTrN7Up6" || tc.Name != "get_weather" {
		t.Errorf("tool call = %s %s", tc.ID, tc.Name)
	}
	if want := `{"location": "San Francisco, CA", "unit": "fahrenheit"}`; string(tc.Input) != want {
		t.Errorf("Input = %s, want %s", tc.Input, want)
	}
	if resp.StopReason != "tool_use" {
		t.Errorf("StopReason = %q", resp.StopReason)
	}
	if resp.Usage != (core.Usage{InputTokens: 1031, OutputTokens: 89}) {
		t.Errorf("Usage = %+v", resp.Usage)
	}
}

func TestSeveralToolUsesWithPings(t *testing.T) {
	api := newFakeAPI(t, sse(t, "multi_tool.sse"))
	var c collector
	resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), c.onText)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.got(); len(got) != 0 || resp.Text != "" {
		t.Errorf("text relayed %q, Text %q; want none", got, resp.Text)
	}
	want := []core.ToolCall{
		{ID: "toolu_01A09q90qw90lq917835lq9", Name: "read_file", Input: json.RawMessage(`{"path": "README.md"}`)},
		{ID: "toolu_01B7kq2nd9x8a7sd6f5g4h3j", Name: "bash", Input: json.RawMessage(`{"command": "ls -la", "timeout": 5}`)},
		{ID: "toolu_01C3mn4bv5cx6z7a8s9d0f1g", Name: "memory_list", Input: json.RawMessage(`{}`)},
	}
	if len(resp.ToolCalls) != len(want) {
		t.Fatalf("ToolCalls = %+v", resp.ToolCalls)
	}
	for i, tc := range resp.ToolCalls {
		if tc.ID != want[i].ID || tc.Name != want[i].Name || string(tc.Input) != string(want[i].Input) {
			t.Errorf("ToolCalls[%d] = %s %s %s, want %s %s %s", i, tc.ID, tc.Name, tc.Input, want[i].ID, want[i].Name, want[i].Input)
		}
	}
	if resp.StopReason != "tool_use" {
		t.Errorf("StopReason = %q", resp.StopReason)
	}
}

// wireRequest is the part of a Messages API request body the tests check.
type wireRequest struct {
	Model     string `json:"model"`
	MaxTokens int64  `json:"max_tokens"`
	Stream    bool   `json:"stream"`
	System    []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"system"`
	Tools []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		InputSchema struct {
			Type       string          `json:"type"`
			Properties json.RawMessage `json:"properties"`
			Required   []string        `json:"required"`
		} `json:"input_schema"`
	} `json:"tools"`
	Messages json.RawMessage `json:"messages"`
}

func TestRequestShape(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	p := New(Options{APIKey: "test-key", BaseURL: api.srv.URL, MaxRetries: 1, MaxTokens: 4096})
	req := core.Request{
		Model:  "claude-sonnet-4-20250514",
		System: "You are miniclaw.\n\n## Runtime Information\ncwd: /tmp",
		Tools: []core.ToolSpec{
			{
				Name:        "read_file",
				Description: "Read a file from the workspace.",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","description":"File path"}},"required":["path"]}`),
			},
			{
				Name:        "memory_list",
				Description: "List memory files.",
				InputSchema: json.RawMessage(`{"type":"object","properties":{}}`),
			},
		},
		Messages: []core.Message{
			{Role: core.RoleUser, Content: "What's in the README?", Timestamp: 1},
			{Role: core.RoleAssistant, Content: "Let me look.", Timestamp: 2, ToolCalls: []core.ToolCallRecord{
				{ID: "toolu_1", Name: "read_file", Input: json.RawMessage(`{"path":"README.md"}`), Output: "# miniclaw"},
				{ID: "toolu_2", Name: "bash", Input: json.RawMessage(`{"command":"false"}`), Output: "exit status 1", IsError: true},
				{ID: "toolu_3", Name: "memory_list", Output: ""},
			}},
			{Role: core.RoleUser, Content: "Thanks. Summarise it.", Timestamp: 3},
			{Role: core.RoleAssistant, Content: "It is a gateway.", Timestamp: 4},
			{Role: core.RoleUser, Content: "Shorter?", Timestamp: 5},
		},
	}
	if _, err := p.Complete(testCtx(t), req, func(string) {}); err != nil {
		t.Fatal(err)
	}
	reqs := api.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/messages" {
		t.Errorf("%s %s, want POST /v1/messages", r.Method, r.Path)
	}
	if got := r.Header.Get("x-api-key"); got != "test-key" {
		t.Errorf("x-api-key = %q", got)
	}
	if r.Header.Get("anthropic-version") == "" {
		t.Error("no anthropic-version header")
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("unexpected Authorization header %q", got)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}

	var w wireRequest
	if err := json.Unmarshal(r.Body, &w); err != nil {
		t.Fatalf("%v in %s", err, r.Body)
	}
	if w.Model != req.Model || w.MaxTokens != 4096 || !w.Stream {
		t.Errorf("model %q max_tokens %d stream %v", w.Model, w.MaxTokens, w.Stream)
	}
	if len(w.System) != 1 || w.System[0].Type != "text" || w.System[0].Text != req.System {
		t.Errorf("system = %+v", w.System)
	}
	if len(w.Tools) != 2 {
		t.Fatalf("tools = %+v", w.Tools)
	}
	t0 := w.Tools[0]
	if t0.Name != "read_file" || t0.Description != "Read a file from the workspace." || t0.InputSchema.Type != "object" {
		t.Errorf("tool 0 = %+v", t0)
	}
	assertJSONEqual(t, "tool 0 properties", t0.InputSchema.Properties, `{"path":{"type":"string","description":"File path"}}`)
	if !slices.Equal(t0.InputSchema.Required, []string{"path"}) {
		t.Errorf("tool 0 required = %q", t0.InputSchema.Required)
	}
	if w.Tools[1].Name != "memory_list" || len(w.Tools[1].InputSchema.Required) != 0 {
		t.Errorf("tool 1 = %+v", w.Tools[1])
	}

	// The assistant's tool calls are tool_use blocks after its text; their
	// results open the next user message, and the user's next text joins it.
	// A result with no output carries no (empty, hence rejected) text block.
	assertJSONEqual(t, "messages", w.Messages, `[
		{"role":"user","content":[{"type":"text","text":"What's in the README?"}]},
		{"role":"assistant","content":[
			{"type":"text","text":"Let me look."},
			{"type":"tool_use","id":"toolu_1","name":"read_file","input":{"path":"README.md"}},
			{"type":"tool_use","id":"toolu_2","name":"bash","input":{"command":"false"}},
			{"type":"tool_use","id":"toolu_3","name":"memory_list","input":{}}
		]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"# miniclaw"}],"is_error":false},
			{"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"exit status 1"}],"is_error":true},
			{"type":"tool_result","tool_use_id":"toolu_3","is_error":false},
			{"type":"text","text":"Thanks. Summarise it."}
		]},
		{"role":"assistant","content":[{"type":"text","text":"It is a gateway."}]},
		{"role":"user","content":[{"type":"text","text":"Shorter?"}]}
	]`)
}

func TestRequestWithoutSystemOrTools(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	req := simpleRequest()
	req.System = ""
	if _, err := api.provider(1).Complete(testCtx(t), req, func(string) {}); err != nil {
		t.Fatal(err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(api.requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"system", "tools"} {
		if v, ok := body[k]; ok {
			t.Errorf("%s sent as %s, want it left out", k, v)
		}
	}
	if string(body["max_tokens"]) != "8192" {
		t.Errorf("default max_tokens = %s, want 8192", body["max_tokens"])
	}
}

func TestBadToolSchemaIsAnErrorBeforeAnyRequest(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	req := simpleRequest()
	req.Tools = []core.ToolSpec{{Name: "broken", InputSchema: json.RawMessage(`{"type":`)}}
	_, err := api.provider(1).Complete(testCtx(t), req, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("err = %v, want a bad schema error naming the tool", err)
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestOverloadedInStreamBeforeTextIsRetried(t *testing.T) {
	api := newFakeAPI(t, sse(t, "overloaded_before_text.sse"), sse(t, "text.sse"))
	var c collector
	start := time.Now()
	resp, err := api.provider(2).Complete(testCtx(t), simpleRequest(), c.onText)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if resp.Text != "Hello! How can I help you today?" || strings.Join(c.got(), "") != resp.Text {
		t.Errorf("Text %q, relayed %q", resp.Text, c.got())
	}
	if resp.StopReason != "end_turn" {
		t.Errorf("StopReason = %q", resp.StopReason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestOverloadedInStreamAfterTextIsNotRetried(t *testing.T) {
	api := newFakeAPI(t, sse(t, "overloaded_after_text.sse"), sse(t, "text.sse"))
	var c collector
	resp, err := api.provider(3).Complete(testCtx(t), simpleRequest(), c.onText)
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "overloaded") {
		t.Errorf("err = %v, want it to mention overloaded", err)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("%d requests, want exactly 1", n)
	}
	if got := c.got(); !slices.Equal(got, []string{"Sure, here is", " the first part"}) {
		t.Errorf("relayed %q", got)
	}
	if resp.Text != "Sure, here is the first part" {
		t.Errorf("partial Text = %q", resp.Text)
	}
}

func TestOverloadedInStreamRetriesExhausted(t *testing.T) {
	api := newFakeAPI(t, sse(t, "overloaded_before_text.sse"))
	_, err := api.provider(1).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "overloaded") {
		t.Errorf("err = %v", err)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (one retry)", n)
	}
}

func TestHTTP429ThenSuccess(t *testing.T) {
	api := newFakeAPI(t, apiError(t, http.StatusTooManyRequests, "error_429.json", "retry-after", "0"), sse(t, "text.sse"))
	resp, err := api.provider(2).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Hello! How can I help you today?" {
		t.Errorf("Text = %q", resp.Text)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	// retry-after: 0 means no wait; the SDK's own backoff would be at least
	// 375 ms.
	if d := api.retryGap(t); d > 350*time.Millisecond {
		t.Errorf("retried after %v: retry-after: 0 was not honoured", d)
	}
}

func TestHTTP529OverloadedThenSuccess(t *testing.T) {
	api := newFakeAPI(t, apiError(t, 529, "error_529.json"), sse(t, "text.sse"))
	resp, err := api.provider(2).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Hello! How can I help you today?" {
		t.Errorf("Text = %q", resp.Text)
	}
	if n := len(api.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// HTTP-level errors are retried by the SDK alone: MaxRetries bounds the total,
// the provider must not start another round of SDK retries on top.
func TestHTTP529RetriesExhausted(t *testing.T) {
	api := newFakeAPI(t, apiError(t, 529, "error_529.json", "retry-after", "0"))
	_, err := api.provider(2).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "overloaded") {
		t.Errorf("err = %v, want it to mention overloaded", err)
	}
	if n := len(api.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (1 + MaxRetries)", n)
	}
}

func TestNegativeMaxRetriesDisablesRetries(t *testing.T) {
	api := newFakeAPI(t, apiError(t, http.StatusTooManyRequests, "error_429.json", "retry-after", "0"), sse(t, "text.sse"))
	_, err := api.provider(-1).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("err = %v", err)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestHTTPErrorsTellWhatToDo(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		fixture string
		want    []string
	}{
		{"unauthorized", http.StatusUnauthorized, "error_401.json", []string{"ANTHROPIC_API_KEY", "invalid x-api-key"}},
		{"model not found", http.StatusNotFound, "error_404.json", []string{"claude-nonexistent-9", "MINI_OPENCLAW_MODEL"}},
		{"prompt too long", http.StatusBadRequest, "error_400_too_long.json", []string{"MINI_OPENCLAW_MAX_CONTEXT", "prompt is too long"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, apiError(t, tc.status, tc.fixture), sse(t, "text.sse"))
			req := simpleRequest()
			req.Model = "claude-nonexistent-9"
			var c collector
			_, err := api.provider(3).Complete(testCtx(t), req, c.onText)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
			if n := len(api.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (4xx is not retried)", n)
			}
			if len(c.got()) != 0 {
				t.Errorf("text relayed: %q", c.got())
			}
		})
	}
}

func TestStreamEndsWithoutMessageStop(t *testing.T) {
	api := newFakeAPI(t, sse(t, "cut.sse"))
	var c collector
	resp, err := api.provider(2).Complete(testCtx(t), simpleRequest(), c.onText)
	if err == nil || !strings.Contains(err.Error(), "cut") {
		t.Fatalf("err = %v, want it to tell the stream was cut", err)
	}
	if got := c.got(); !slices.Equal(got, []string{"The answer", " is"}) {
		t.Errorf("relayed %q", got)
	}
	if resp.Text != "The answer is" {
		t.Errorf("partial Text = %q", resp.Text)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (text was already shown)", n)
	}
}

func TestConnectionDroppedMidStream(t *testing.T) {
	// message_start, content_block_start, two deltas, then the TCP
	// connection closes in the middle of the chunked body.
	api := newFakeAPI(t, sseThenDrop(t, "text.sse", 5))
	var c collector
	_, err := api.provider(2).Complete(testCtx(t), simpleRequest(), c.onText)
	if err == nil || !strings.Contains(err.Error(), "cut") {
		t.Fatalf("err = %v, want it to tell the stream was cut", err)
	}
	if got := c.got(); !slices.Equal(got, []string{"Hello", "! How can"}) {
		t.Errorf("relayed %q", got)
	}
}

func TestCancelMidStream(t *testing.T) {
	api := newFakeAPI(t, sseThenHang(t, "text.sse", 4))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var c collector
	done := make(chan error, 1)
	var resp core.Response
	go func() {
		var err error
		resp, err = api.provider(3).Complete(ctx, simpleRequest(), func(s string) {
			c.onText(s)
			cancel()
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error after cancel")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Complete did not return after the context was cancelled")
	}
	if got := c.got(); !slices.Equal(got, []string{"Hello"}) {
		t.Errorf("relayed %q, want the first delta", got)
	}
	if resp.Text != "Hello" {
		t.Errorf("partial Text = %q", resp.Text)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestCancelCauseIsReturned(t *testing.T) {
	api := newFakeAPI(t, sseThenHang(t, "text.sse", 4))
	ctx, cancel := context.WithCancelCause(testCtx(t))
	defer cancel(nil)
	_, err := api.provider(3).Complete(ctx, simpleRequest(), func(string) { cancel(core.ErrAborted) })
	if !errors.Is(err, core.ErrAborted) {
		t.Errorf("err = %v, want core.ErrAborted", err)
	}
}

func TestConcurrentCompletes(t *testing.T) {
	api := newFakeAPI(t, sse(t, "tool_use.sse"))
	p := api.provider(1)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			resp, err := p.Complete(testCtx(t), simpleRequest(), func(string) {})
			if err == nil && (len(resp.ToolCalls) != 1 || resp.Text != "Let me check the weather.") {
				err = errors.New("wrong response")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestName(t *testing.T) {
	var p core.Provider = New(Options{APIKey: "x"})
	if p.Name() != "anthropic" {
		t.Errorf("Name = %q", p.Name())
	}
}

func assertJSONEqual(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		pretty, _ := json.MarshalIndent(g, "", "  ")
		t.Errorf("%s:\ngot  %s\nwant %s", what, pretty, want)
	}
}
