package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

var streamFixtures = []string{
	"text.sse", "tool_calls_parallel.sse", "ollama_whole.sse", "ollama_noindex.sse",
	"ollama_reused_index.sse", "llamacpp_whole.sse", "cut.sse", "bad_args.sse", "stream_error.sse", "cached.sse",
}

// The fixtures must be what the servers send: "data: " lines separated by
// blank lines, each a JSON object or the [DONE] sentinel.
func TestFixturesAreWellFormed(t *testing.T) {
	for _, name := range streamFixtures {
		for _, ev := range pt.SSEEvents(pt.Fixture(t, name)) {
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
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		Relayed:    []string{"Hello", "! How", " can I", " help you today?"},
		StopReason: "stop",
		Usage:      core.Usage{InputTokens: 19, OutputTokens: 10},
	})
	var body struct {
		Stream        bool `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(api.Requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if !body.Stream || !body.StreamOptions.IncludeUsage {
		t.Errorf("stream %v, stream_options.include_usage %v; want both true", body.Stream, body.StreamOptions.IncludeUsage)
	}
}

func TestParallelToolCallsSplitOverDeltas(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "tool_calls_parallel.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		Relayed: []string{"Checking both."},
		ToolCalls: []core.ToolCall{
			{ID: "call_8qtyVBy1c0PZkxgbzPcWQ5pe", Name: "get_weather", Input: json.RawMessage(`{"location": "Paris, France"}`)},
			{ID: "call_Zm9vYmFyYmF6cXV4MTIzNDU2", Name: "read_file", Input: json.RawMessage(`{"path": "notes/todo.md"}`)},
		},
		StopReason: "tool_calls",
		Usage:      core.Usage{InputTokens: 82, OutputTokens: 45},
	})
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
			api := pt.NewFakeAPI(t, sse(t, tc.fixture))
			pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
				ToolCalls: tc.want, StopReason: tc.stop, Usage: tc.usage,
			})
		})
	}
}

func TestRequestShape(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	pt.MustComplete(t, newProvider(api, 1), pt.ToolConversation("gpt-4o", "call_", "MEMORY.md"))
	r := api.Only(t)
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
	body := pt.JSONFields(t, r.Body)
	pt.JSONEqual(t, "model", body["model"], `"gpt-4o"`)
	pt.JSONEqual(t, "stream", body["stream"], `true`)
	pt.JSONEqual(t, "tools", body["tools"], `[
		{"type":"function","function":{"name":"read_file","description":"Read a file from the workspace.",
			"parameters":{"type":"object","properties":{"path":{"type":"string","description":"File path"}},"required":["path"]}}},
		{"type":"function","function":{"name":"memory_list","description":"List memory files.",
			"parameters":{"type":"object","properties":{}}}}
	]`)
	// System first; each assistant tool call listed with its arguments as a
	// string, then one "tool" message per call, in order.
	pt.JSONEqual(t, "messages", body["messages"], wireToolConversation+`,
		{"role":"user","content":"Thanks. Summarise it."},
		{"role":"assistant","content":"It is a gateway."},
		{"role":"user","content":"Shorter?"}
	]`)
}

// wireToolConversation is the messages array of pt.ToolConversation as the
// provider sends it, up to the tool results, without its closing bracket.
const wireToolConversation = `[
		{"role":"system","content":"You are miniclaw.\n\n## Runtime Information\ncwd: /tmp"},
		{"role":"user","content":"What's in the README?"},
		{"role":"assistant","content":"Let me look.","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"README.md\"}"}},
			{"id":"call_2","type":"function","function":{"name":"bash","arguments":"{\"command\":\"false\"}"}},
			{"id":"call_3","type":"function","function":{"name":"memory_list","arguments":"{}"}}
		]},
		{"role":"tool","tool_call_id":"call_1","content":"# miniclaw"},
		{"role":"tool","tool_call_id":"call_2","content":"Error: exit status 1"},
		{"role":"tool","tool_call_id":"call_3","content":"MEMORY.md"}`

// Blank texts are not sent, as the Anthropic provider does not send them:
// OpenAI accepts them, but a blank message tells the model nothing and
// local servers' chat templates vary in what they accept.
func TestBlankTextIsNeverSent(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	pt.MustComplete(t, newProvider(api, 1), pt.BlankTexts("gpt-4o", "call_"))
	pt.JSONEqual(t, "messages", pt.JSONFields(t, api.Only(t).Body)["messages"], `[
		{"role":"system","content":"You are a test."},
		{"role":"user","content":"Hi"},
		{"role":"user","content":"Are you there?"},
		{"role":"user","content":"Hello?"},
		{"role":"user","content":"Read empty.txt"},
		{"role":"assistant","content":"","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"empty.txt\"}"}}
		]},
		{"role":"tool","tool_call_id":"call_1","content":""},
		{"role":"assistant","content":"It is blank."},
		{"role":"user","content":"Thanks"}
	]`)
}

func TestNoAuthorizationWithoutKey(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	pt.MustComplete(t, New(Options{BaseURL: api.URL() + "/v1/"}), simpleRequest()) // trailing slash too
	r := api.Requests()[0]
	if got, ok := r.Header["Authorization"]; ok {
		t.Errorf("Authorization sent: %q", got)
	}
	if r.Path != "/v1/chat/completions" {
		t.Errorf("path %s", r.Path)
	}
	body := pt.JSONFields(t, r.Body)
	if _, ok := body["tools"]; ok {
		t.Errorf("tools sent without any: %s", body["tools"])
	}
	pt.JSONEqual(t, "messages", body["messages"], `[{"role":"system","content":"You are a test."},{"role":"user","content":"Hi"}]`)
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
	// Retry-After: 0 means no wait; the backoff would be at least 375 ms.
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusTooManyRequests, "error_429.json", "Retry-After", "0"), sse(t, "text.sse"))
	r := pt.MustComplete(t, newProvider(api, 2), simpleRequest())
	if r.Text != "Hello! How can I help you today?" {
		t.Errorf("Text = %q", r.Text)
	}
	api.WantRetriedAtOnce(t)
}

func Test500ThenSuccess(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusInternalServerError, "error_500.json"), sse(t, "tool_calls_parallel.sse"))
	if r := pt.MustComplete(t, newProvider(api, 2), simpleRequest()); len(r.ToolCalls) != 2 {
		t.Errorf("ToolCalls = %+v", r.ToolCalls)
	}
	reqs := api.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if string(reqs[0].Body) != string(reqs[1].Body) {
		t.Error("the retry sent a different body")
	}
}

func TestRetriesExhausted(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusServiceUnavailable, "error_500.json", "Retry-After", "0"))
	pt.WantErr(t, pt.Complete(t, newProvider(api, 2), simpleRequest()).Err, "503", "The server had an error")
	api.WantRequests(t, 3) // 1 + MaxRetries
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
	api := pt.NewFakeAPI(t, drop, sse(t, "text.sse"))
	if r := pt.MustComplete(t, newProvider(api, 1), simpleRequest()); r.Text != "Hello! How can I help you today?" {
		t.Errorf("Text = %q", r.Text)
	}
	api.WantRequests(t, 2)
}

func TestHTTPErrorsTellWhatToDo(t *testing.T) {
	req := simpleRequest()
	req.Model = "x"
	withRetries := func(api *pt.FakeAPI) core.Provider { return newProvider(api, 3) }
	pt.RunHTTPErrors(t, withRetries, req, sse(t, "text.sse"), []pt.HTTPError{
		{Name: "unauthorized", Status: http.StatusUnauthorized, Fixture: "error_401.json", Want: []string{"OPENAI_API_KEY", "Incorrect API key provided"}},
		{Name: "ollama model not found", Status: http.StatusNotFound, Fixture: "error_404_ollama.json", Want: []string{`model "x" not found, try pulling it first`, "MINI_OPENCLAW_MODEL"}},
		{Name: "bad request", Status: http.StatusBadRequest, Fixture: "error_400.json", Want: []string{"400", "Invalid schema for function 'bad'"}},
	})
}

func TestBrokenStreams(t *testing.T) {
	cases := []struct {
		name    string
		reply   func(t *testing.T) pt.Reply
		relayed []string
		want    string
	}{
		{"ends without DONE or finish_reason", func(t *testing.T) pt.Reply { return sse(t, "cut.sse") },
			[]string{"Hello", "! How", " can I"}, "cut"},
		{"connection dropped", func(t *testing.T) pt.Reply { return pt.SSEThenDrop(t, "text.sse", 3, requestID...) },
			[]string{"Hello", "! How"}, "broke off"},
		{"malformed chunk", func(t *testing.T) pt.Reply { return sse(t, "malformed.sse") },
			[]string{"Hello"}, "malformed"},
		{"invalid tool arguments", func(t *testing.T) pt.Reply { return sse(t, "bad_args.sse") },
			nil, "not valid JSON"},
		{"error object in stream", func(t *testing.T) pt.Reply { return sse(t, "stream_error.sse") },
			[]string{"Partial"}, "server_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := pt.NewFakeAPI(t, tc.reply(t), sse(t, "text.sse"))
			r := pt.Complete(t, newProvider(api, 2), simpleRequest())
			pt.WantErr(t, r.Err, tc.want)
			pt.WantText(t, r, tc.relayed...)
			if len(r.ToolCalls) != 0 {
				t.Errorf("ToolCalls returned with an error: %+v", r.ToolCalls)
			}
			api.WantRequests(t, 1)
		})
	}
}

func TestCancelMidStream(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.SSEThenHang(t, "text.sse", 2, requestID...))
	ctx, cancel := context.WithCancelCause(pt.Ctx(t))
	defer cancel(nil)
	r := pt.CompleteCancelled(t, newProvider(api, 3), ctx, simpleRequest(), func() { cancel(core.ErrAborted) })
	if !errors.Is(r.Err, core.ErrAborted) {
		t.Errorf("err = %v, want the cancel cause", r.Err)
	}
	pt.WantText(t, r, "Hello")
	api.WantRequests(t, 1)
}

func TestCancelDuringRetryWait(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusTooManyRequests, "error_429.json", "Retry-After", "30"))
	ctx, cancel := context.WithTimeout(pt.Ctx(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newProvider(api, 3).Complete(ctx, simpleRequest(), func(string) {})
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
	api := pt.NewFakeAPI(t, sse(t, "tool_calls_parallel.sse"))
	pt.CompleteConcurrently(t, newProvider(api, 1), simpleRequest(), 8, func(r core.Response) bool {
		return len(r.ToolCalls) == 2 && r.Text == "Checking both."
	})
}

// A long reply costs in proportion to its length: the reply text is not
// rebuilt on each chunk.
func TestLongReplyIsLinear(t *testing.T) {
	pt.WantLinear(t, completeLong)
}

func BenchmarkLongReply(b *testing.B) {
	pt.BenchLongReply(b, completeLong)
}

// completeLong streams a reply of n chunks of "x " through the provider
// and checks it.
func completeLong(t testing.TB, n int) {
	var body bytes.Buffer
	for range n {
		body.WriteString("data: {\"choices\":[{\"delta\":{\"content\":\"x \"}}]}\n\n")
	}
	body.WriteString("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	pt.CompleteLongHTTP(t, body.Bytes(), func(url string) core.Provider { return New(Options{BaseURL: url}) }, simpleRequest(), n)
}

// TestContextLengthIsAnOverflow: the 400s of OpenAI, llama.cpp, vLLM and
// Ollama for a prompt over the window are core.ErrContextOverflow, with
// the sizes they name, so the agent can compact and retry.
func TestContextLengthIsAnOverflow(t *testing.T) {
	cases := []struct {
		fixture       string
		tokens, limit int64
	}{
		{"error_400_context_length.json", 130532, 128000},
		{"error_400_llamacpp_context.json", 4476, 4096},
		{"error_400_vllm_context.json", 5000, 4096},
		{"error_400_ollama_context.json", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			pt.WantOverflow(t, func(api *pt.FakeAPI) core.Provider { return newProvider(api, 2) }, simpleRequest(), tc.fixture, tc.tokens, tc.limit)
		})
	}
	// A 400 of another kind is not one.
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusBadRequest, "error_400.json"))
	if err := pt.Complete(t, newProvider(api, 2), simpleRequest()).Err; errors.Is(err, core.ErrContextOverflow) {
		t.Errorf("a bad schema is taken for an overflow: %v", err)
	}
}

// A refused key is found with one GET {base}/models at startup.
func TestCheckKey(t *testing.T) {
	pt.WantKeyCheck(t, "/v1/models", "Authorization", "OPENAI_API_KEY", func(url, key string) core.KeyChecker {
		return New(Options{APIKey: key, BaseURL: url + "/v1"})
	})
}
