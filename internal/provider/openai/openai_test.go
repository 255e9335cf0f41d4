package openai

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

var streamFixtures = []string{
	"text.sse", "tool_calls_parallel.sse", "ollama_whole.sse", "ollama_noindex.sse",
	"ollama_reused_index.sse", "llamacpp_whole.sse", "cut.sse", "bad_args.sse", "stream_error.sse",
}

// The fixtures must be what the servers send: "data: " lines separated by
// blank lines, each a JSON object or the [DONE] sentinel.
func TestFixturesAreWellFormed(t *testing.T) {
	for _, name := range streamFixtures {
		for _, ev := range sseEvents(fixture(t, name)) {
			data, ok := strings.CutPrefix(strings.TrimSuffix(string(ev), "\n\n"), "data: ")
			if !ok || strings.Contains(data, "\n") {
				t.Fatalf("%s: malformed event %q", name, ev)
			}
			if data == "[DONE]" {
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(data), &obj); err != nil {
				t.Fatalf("%s: %v in %q", name, err, data)
			}
		}
	}
}

func TestTextStreamingWithUsage(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	var c collector
	resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), c.onText)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Hello", "! How", " can I", " help you today?"}
	if got := c.got(); !slices.Equal(got, want) {
		t.Errorf("onText got %q, want %q", got, want)
	}
	if resp.Text != strings.Join(want, "") {
		t.Errorf("Text = %q", resp.Text)
	}
	if resp.Usage != (core.Usage{InputTokens: 19, OutputTokens: 10}) {
		t.Errorf("Usage = %+v", resp.Usage)
	}
	if resp.StopReason != "stop" {
		t.Errorf("StopReason = %q", resp.StopReason)
	}
	if len(resp.ToolCalls) != 0 {
		t.Errorf("ToolCalls = %+v", resp.ToolCalls)
	}
	var body struct {
		Stream        bool `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(api.requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if !body.Stream || !body.StreamOptions.IncludeUsage {
		t.Errorf("stream %v, stream_options.include_usage %v; want both true", body.Stream, body.StreamOptions.IncludeUsage)
	}
}

func assertToolCalls(t *testing.T, got []core.ToolCall, want ...core.ToolCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("ToolCalls = %+v, want %d", got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Name != w.Name || string(g.Input) != string(w.Input) {
			t.Errorf("ToolCalls[%d] = %s %s %s, want %s %s %s", i, g.ID, g.Name, g.Input, w.ID, w.Name, w.Input)
		}
	}
}

func TestParallelToolCallsSplitOverDeltas(t *testing.T) {
	api := newFakeAPI(t, sse(t, "tool_calls_parallel.sse"))
	var c collector
	resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), c.onText)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.got(); !slices.Equal(got, []string{"Checking both."}) || resp.Text != "Checking both." {
		t.Errorf("relayed %q, Text %q", got, resp.Text)
	}
	assertToolCalls(t, resp.ToolCalls,
		core.ToolCall{ID: "call_8qtyVBy1c0PZkxgbzPcWQ5pe", Name: "get_weather", Input: json.RawMessage(`{"location": "Paris, France"}`)},
		core.ToolCall{ID: "call_Zm9vYmFyYmF6cXV4MTIzNDU2", Name: "read_file", Input: json.RawMessage(`{"path": "notes/todo.md"}`)},
	)
	if resp.StopReason != "tool_calls" {
		t.Errorf("StopReason = %q", resp.StopReason)
	}
	if resp.Usage != (core.Usage{InputTokens: 82, OutputTokens: 45}) {
		t.Errorf("Usage = %+v", resp.Usage)
	}
}

// Ollama and llama.cpp send each tool call whole in one chunk; older Ollama
// leaves the index out, newer Ollama gives every call index 0.
func TestWholeToolCallsInOneChunk(t *testing.T) {
	weather := core.ToolCall{ID: "call_x4jrz3oa", Name: "get_weather", Input: json.RawMessage(`{"location":"Paris, France"}`)}
	cases := []struct {
		fixture string
		stop    string
		usage   core.Usage
		want    []core.ToolCall
	}{
		{"ollama_whole.sse", "tool_calls", core.Usage{InputTokens: 152, OutputTokens: 21}, []core.ToolCall{weather}},
		{"llamacpp_whole.sse", "tool_calls", core.Usage{InputTokens: 230, OutputTokens: 12}, []core.ToolCall{
			{ID: "b3XoIbDvGmw1Q8kZ", Name: "bash", Input: json.RawMessage(`{"command":"ls"}`)},
		}},
		{"ollama_noindex.sse", "stop", core.Usage{}, []core.ToolCall{
			{ID: "call_b9k2m1qz", Name: "get_weather", Input: json.RawMessage(`{"location":"Paris, France"}`)},
			{ID: "call_q7w3e8rt", Name: "read_file", Input: json.RawMessage(`{"path":"notes/todo.md"}`)},
		}},
		{"ollama_reused_index.sse", "tool_calls", core.Usage{}, []core.ToolCall{
			{ID: "call_h1a2b3c4", Name: "write_file", Input: json.RawMessage(`{"path":"hello.py","content":"print(\"hello\")"}`)},
			{ID: "call_w5x6y7z8", Name: "write_file", Input: json.RawMessage(`{"path":"world.py","content":"print(\"world\")"}`)},
		}},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.fixture, ".sse"), func(t *testing.T) {
			api := newFakeAPI(t, sse(t, tc.fixture))
			var c collector
			resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), c.onText)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.got()) != 0 || resp.Text != "" {
				t.Errorf("text relayed %q, Text %q", c.got(), resp.Text)
			}
			assertToolCalls(t, resp.ToolCalls, tc.want...)
			if resp.StopReason != tc.stop {
				t.Errorf("StopReason = %q, want %q", resp.StopReason, tc.stop)
			}
			if resp.Usage != tc.usage {
				t.Errorf("Usage = %+v, want %+v", resp.Usage, tc.usage)
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	req := core.Request{
		Model:  "gpt-4o",
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
				{ID: "call_1", Name: "read_file", Input: json.RawMessage(`{"path":"README.md"}`), Output: "# miniclaw"},
				{ID: "call_2", Name: "bash", Input: json.RawMessage(`{"command":"false"}`), Output: "exit status 1", IsError: true},
				{ID: "call_3", Name: "memory_list", Output: "MEMORY.md"},
			}},
			{Role: core.RoleUser, Content: "Thanks. Summarise it.", Timestamp: 3},
			{Role: core.RoleAssistant, Content: "It is a gateway.", Timestamp: 4},
			{Role: core.RoleUser, Content: "Shorter?", Timestamp: 5},
		},
	}
	if _, err := api.provider(1).Complete(testCtx(t), req, func(string) {}); err != nil {
		t.Fatal(err)
	}
	reqs := api.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" {
		t.Errorf("%s %s, want POST /v1/chat/completions", r.Method, r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer k" {
		t.Errorf("Authorization = %q, want Bearer k", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("Accept"); got != "text/event-stream" {
		t.Errorf("Accept = %q", got)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("%v in %s", err, r.Body)
	}
	assertJSONEqual(t, "model", body["model"], `"gpt-4o"`)
	assertJSONEqual(t, "stream", body["stream"], `true`)
	assertJSONEqual(t, "tools", body["tools"], `[
		{"type":"function","function":{"name":"read_file","description":"Read a file from the workspace.",
			"parameters":{"type":"object","properties":{"path":{"type":"string","description":"File path"}},"required":["path"]}}},
		{"type":"function","function":{"name":"memory_list","description":"List memory files.",
			"parameters":{"type":"object","properties":{}}}}
	]`)
	// System first; each assistant tool call listed with its arguments as a
	// string, then one "tool" message per call, in order.
	assertJSONEqual(t, "messages", body["messages"], `[
		{"role":"system","content":"You are miniclaw.\n\n## Runtime Information\ncwd: /tmp"},
		{"role":"user","content":"What's in the README?"},
		{"role":"assistant","content":"Let me look.","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"README.md\"}"}},
			{"id":"call_2","type":"function","function":{"name":"bash","arguments":"{\"command\":\"false\"}"}},
			{"id":"call_3","type":"function","function":{"name":"memory_list","arguments":"{}"}}
		]},
		{"role":"tool","tool_call_id":"call_1","content":"# miniclaw"},
		{"role":"tool","tool_call_id":"call_2","content":"Error: exit status 1"},
		{"role":"tool","tool_call_id":"call_3","content":"MEMORY.md"},
		{"role":"user","content":"Thanks. Summarise it."},
		{"role":"assistant","content":"It is a gateway."},
		{"role":"user","content":"Shorter?"}
	]`)
}

func TestNoAuthorizationWithoutKey(t *testing.T) {
	api := newFakeAPI(t, sse(t, "text.sse"))
	p := New(Options{BaseURL: api.srv.URL + "/v1/"}) // trailing slash too
	if _, err := p.Complete(testCtx(t), simpleRequest(), func(string) {}); err != nil {
		t.Fatal(err)
	}
	r := api.requests()[0]
	if got, ok := r.Header["Authorization"]; ok {
		t.Errorf("Authorization sent: %q", got)
	}
	if r.Path != "/v1/chat/completions" {
		t.Errorf("path %s", r.Path)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["tools"]; ok {
		t.Errorf("tools sent without any: %s", body["tools"])
	}
	assertJSONEqual(t, "messages", body["messages"], `[{"role":"system","content":"You are a test."},{"role":"user","content":"Hi"}]`)
}

func TestDefaultBaseURL(t *testing.T) {
	if p := New(Options{}); p.url != "https://api.openai.com/v1/chat/completions" || p.maxRetries != 3 {
		t.Errorf("url %s, maxRetries %d", p.url, p.maxRetries)
	}
	if p := New(Options{MaxRetries: -1}); p.maxRetries != 0 {
		t.Errorf("MaxRetries -1 gave %d retries", p.maxRetries)
	}
	if New(Options{}).Name() != "openai" {
		t.Error("Name")
	}
}

func Test429WithRetryAfterZeroThenSuccess(t *testing.T) {
	api := newFakeAPI(t, apiError(t, http.StatusTooManyRequests, "error_429.json", "Retry-After", "0"), sse(t, "text.sse"))
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
	// Retry-After: 0 means no wait; the backoff would be at least 375 ms.
	if d := api.retryGap(t); d > 350*time.Millisecond {
		t.Errorf("retried after %v: Retry-After: 0 was not honoured", d)
	}
}

func Test500ThenSuccess(t *testing.T) {
	api := newFakeAPI(t, apiError(t, http.StatusInternalServerError, "error_500.json"), sse(t, "tool_calls_parallel.sse"))
	resp, err := api.provider(2).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls) != 2 {
		t.Errorf("ToolCalls = %+v", resp.ToolCalls)
	}
	reqs := api.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if string(reqs[0].Body) != string(reqs[1].Body) {
		t.Error("the retry sent a different body")
	}
}

func TestRetriesExhausted(t *testing.T) {
	api := newFakeAPI(t, apiError(t, http.StatusServiceUnavailable, "error_500.json", "Retry-After", "0"))
	_, err := api.provider(2).Complete(testCtx(t), simpleRequest(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "The server had an error") {
		t.Errorf("err = %v", err)
	}
	if n := len(api.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (1 + MaxRetries)", n)
	}
}

func TestConnectionErrorIsRetried(t *testing.T) {
	drop := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}
	api := newFakeAPI(t, drop, sse(t, "text.sse"))
	resp, err := api.provider(1).Complete(testCtx(t), simpleRequest(), func(string) {})
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

func TestHTTPErrorsTellWhatToDo(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		fixture string
		want    []string
	}{
		{"unauthorized", http.StatusUnauthorized, "error_401.json", []string{"OPENAI_API_KEY", "Incorrect API key provided"}},
		{"ollama model not found", http.StatusNotFound, "error_404_ollama.json", []string{`model "x" not found, try pulling it first`, "MINI_OPENCLAW_MODEL"}},
		{"bad request", http.StatusBadRequest, "error_400.json", []string{"400", "Invalid schema for function 'bad'"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, apiError(t, tc.status, tc.fixture), sse(t, "text.sse"))
			req := simpleRequest()
			req.Model = "x"
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

func TestBrokenStreams(t *testing.T) {
	cases := []struct {
		name    string
		reply   func(t *testing.T) reply
		relayed []string
		want    string
	}{
		{"ends without DONE or finish_reason", func(t *testing.T) reply { return sse(t, "cut.sse") },
			[]string{"Hello", "! How", " can I"}, "cut"},
		{"connection dropped", func(t *testing.T) reply { return sseThenDrop(t, "text.sse", 3) },
			[]string{"Hello", "! How"}, "broke off"},
		{"malformed chunk", func(t *testing.T) reply { return sse(t, "malformed.sse") },
			[]string{"Hello"}, "malformed"},
		{"invalid tool arguments", func(t *testing.T) reply { return sse(t, "bad_args.sse") },
			nil, "not valid JSON"},
		{"error object in stream", func(t *testing.T) reply { return sse(t, "stream_error.sse") },
			[]string{"Partial"}, "server_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, tc.reply(t), sse(t, "text.sse"))
			var c collector
			resp, err := api.provider(2).Complete(testCtx(t), simpleRequest(), c.onText)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if got := c.got(); !slices.Equal(got, tc.relayed) {
				t.Errorf("relayed %q, want %q", got, tc.relayed)
			}
			if resp.Text != strings.Join(tc.relayed, "") {
				t.Errorf("partial Text %q", resp.Text)
			}
			if len(resp.ToolCalls) != 0 {
				t.Errorf("ToolCalls returned with an error: %+v", resp.ToolCalls)
			}
			if n := len(api.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestCancelMidStream(t *testing.T) {
	api := newFakeAPI(t, sseThenHang(t, "text.sse", 2))
	ctx, cancel := context.WithCancelCause(testCtx(t))
	defer cancel(nil)
	var c collector
	done := make(chan error, 1)
	var resp core.Response
	go func() {
		var err error
		resp, err = api.provider(3).Complete(ctx, simpleRequest(), func(s string) {
			c.onText(s)
			cancel(core.ErrAborted)
		})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, core.ErrAborted) {
			t.Errorf("err = %v, want the cancel cause", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Complete did not return after the context was cancelled")
	}
	if got := c.got(); !slices.Equal(got, []string{"Hello"}) {
		t.Errorf("relayed %q", got)
	}
	if resp.Text != "Hello" {
		t.Errorf("partial Text %q", resp.Text)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestCancelDuringRetryWait(t *testing.T) {
	api := newFakeAPI(t, apiError(t, http.StatusTooManyRequests, "error_429.json", "Retry-After", "30"))
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := api.provider(3).Complete(ctx, simpleRequest(), func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"3600", time.Minute, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, true},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		got, ok := retryAfter(h)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
	h := http.Header{}
	h.Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
	if got, ok := retryAfter(h); !ok || got < 25*time.Second || got > 30*time.Second {
		t.Errorf("HTTP date 30 s ahead: %v, %v", got, ok)
	}
}

func TestConcurrentCompletes(t *testing.T) {
	api := newFakeAPI(t, sse(t, "tool_calls_parallel.sse"))
	p := api.provider(1)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			resp, err := p.Complete(testCtx(t), simpleRequest(), func(string) {})
			if err == nil && (len(resp.ToolCalls) != 2 || resp.Text != "Checking both.") {
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
