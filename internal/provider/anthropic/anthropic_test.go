package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

// The fixtures themselves must be what the API sends: every data line is a
// JSON object whose "type" matches its event line.
func TestFixturesAreWellFormed(t *testing.T) {
	for _, name := range []string{"text.sse", "tool_use.sse", "multi_tool.sse", "overloaded_before_text.sse", "overloaded_after_text.sse", "cut.sse", "cached.sse"} {
		events := pt.SSEEvents(pt.Fixture(t, name))
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
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		Relayed:    []string{"Hello", "! How can", " I help you today?"},
		StopReason: "end_turn",
		Usage:      core.Usage{InputTokens: 472, OutputTokens: 12},
	})
	api.WantRequests(t, 1)
}

func TestToolUseInputSplitAcrossDeltas(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "tool_use.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		Relayed: []string{"Let me check", " the weather."},
		ToolCalls: []core.ToolCall{
			{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "get_weather", Input: json.RawMessage(`{"location": "San Francisco, CA", "unit": "fahrenheit"}`)},
		},
		StopReason: "tool_use",
		Usage:      core.Usage{InputTokens: 1031, OutputTokens: 89},
	})
}

func TestSeveralToolUsesWithPings(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "multi_tool.sse"))
	pt.WantAnswer(t, pt.Complete(t, newProvider(api, 1), simpleRequest()), pt.Answer{
		ToolCalls: []core.ToolCall{
			{ID: "toolu_01A09q90qw90lq917835lq9", Name: "read_file", Input: json.RawMessage(`{"path": "README.md"}`)},
			{ID: "toolu_01B7kq2nd9x8a7sd6f5g4h3j", Name: "bash", Input: json.RawMessage(`{"command": "ls -la", "timeout": 5}`)},
			{ID: "toolu_01C3mn4bv5cx6z7a8s9d0f1g", Name: "memory_list", Input: json.RawMessage(`{}`)},
		},
		StopReason: "tool_use",
		Usage:      core.Usage{InputTokens: 880, OutputTokens: 120},
	})
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
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	p := New(Options{APIKey: "test-key", BaseURL: api.URL(), MaxRetries: 1, MaxTokens: 4096})
	// The third tool call's result is empty.
	req := pt.ToolConversation("claude-sonnet-4-20250514", "toolu_", "")
	pt.MustComplete(t, p, req)
	r := api.Only(t)
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
	pt.JSONEqual(t, "tool 0 properties", t0.InputSchema.Properties, `{"path":{"type":"string","description":"File path"}}`)
	if !slices.Equal(t0.InputSchema.Required, []string{"path"}) {
		t.Errorf("tool 0 required = %q", t0.InputSchema.Required)
	}
	if w.Tools[1].Name != "memory_list" || len(w.Tools[1].InputSchema.Required) != 0 {
		t.Errorf("tool 1 = %+v", w.Tools[1])
	}

	validMessages(t, w.Messages)
	// The assistant's tool calls are tool_use blocks after its text; their
	// results open the next user message, and the user's next text joins it.
	// A result with no output carries no (empty, hence rejected) text block.
	pt.JSONEqual(t, "messages", w.Messages, wireToolConversation+`,
		{"role":"user","content":[{"type":"text","text":"Shorter?","cache_control":{"type":"ephemeral"}}]}
	]`)
}

// wireToolConversation is the messages array of pt.ToolConversation as the
// provider sends it, up to the last user message, without its closing
// bracket.
const wireToolConversation = `[
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
			{"type":"text","text":"Thanks. Summarise it.","cache_control":{"type":"ephemeral"}}
		]},
		{"role":"assistant","content":[{"type":"text","text":"It is a gateway."}]}`

func TestRequestWithoutSystemOrTools(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	req := simpleRequest()
	req.System = ""
	pt.MustComplete(t, newProvider(api, 1), req)
	body := pt.JSONFields(t, api.Requests()[0].Body)
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
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	req := simpleRequest()
	req.Tools = []core.ToolSpec{{Name: "broken", InputSchema: json.RawMessage(`{"type":`)}}
	// A bad schema error names the tool.
	pt.WantErr(t, pt.Complete(t, newProvider(api, 1), req).Err, "broken")
	api.WantRequests(t, 0)
}

func TestOverloadedInStreamBeforeTextIsRetried(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "overloaded_before_text.sse"), sse(t, "text.sse"))
	start := time.Now()
	r := pt.MustComplete(t, newProvider(api, 2), simpleRequest())
	api.WantRequests(t, 2)
	if r.Text != "Hello! How can I help you today?" || strings.Join(r.Relayed, "") != r.Text {
		t.Errorf("Text %q, relayed %q", r.Text, r.Relayed)
	}
	if r.StopReason != "end_turn" {
		t.Errorf("StopReason = %q", r.StopReason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestOverloadedInStreamAfterTextIsNotRetried(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "overloaded_after_text.sse"), sse(t, "text.sse"))
	r := pt.Complete(t, newProvider(api, 3), simpleRequest())
	if r.Err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(strings.ToLower(r.Err.Error()), "overloaded") {
		t.Errorf("err = %v, want it to mention overloaded", r.Err)
	}
	api.WantRequests(t, 1)
	pt.WantText(t, r, "Sure, here is", " the first part")
}

func TestOverloadedInStreamRetriesExhausted(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "overloaded_before_text.sse"))
	pt.WantErr(t, pt.Complete(t, newProvider(api, 1), simpleRequest()).Err, "overloaded")
	api.WantRequests(t, 2) // one retry
}

func TestHTTP429ThenSuccess(t *testing.T) {
	// retry-after: 0 means no wait: the SDK's own backoff would be at least
	// 375 ms.
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusTooManyRequests, "error_429.json", "retry-after", "0"), sse(t, "text.sse"))
	if r := pt.MustComplete(t, newProvider(api, 2), simpleRequest()); r.Text != "Hello! How can I help you today?" {
		t.Errorf("Text = %q", r.Text)
	}
	api.WantRetriedAtOnce(t)
}

func TestHTTP529OverloadedThenSuccess(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.APIError(t, 529, "error_529.json"), sse(t, "text.sse"))
	if r := pt.MustComplete(t, newProvider(api, 2), simpleRequest()); r.Text != "Hello! How can I help you today?" {
		t.Errorf("Text = %q", r.Text)
	}
	api.WantRequests(t, 2)
}

// HTTP-level errors are retried by the SDK alone: MaxRetries bounds the total,
// the provider must not start another round of SDK retries on top.
func TestHTTP529RetriesExhausted(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.APIError(t, 529, "error_529.json", "retry-after", "0"))
	pt.WantErr(t, pt.Complete(t, newProvider(api, 2), simpleRequest()).Err, "overloaded")
	api.WantRequests(t, 3) // 1 + MaxRetries
}

func TestNegativeMaxRetriesDisablesRetries(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.APIError(t, http.StatusTooManyRequests, "error_429.json", "retry-after", "0"), sse(t, "text.sse"))
	pt.WantErr(t, pt.Complete(t, newProvider(api, -1), simpleRequest()).Err, "rate limit")
	api.WantRequests(t, 1)
}

func TestHTTPErrorsTellWhatToDo(t *testing.T) {
	req := simpleRequest()
	req.Model = "claude-nonexistent-9"
	withRetries := func(api *pt.FakeAPI) core.Provider { return newProvider(api, 3) }
	pt.RunHTTPErrors(t, withRetries, req, sse(t, "text.sse"), []pt.HTTPError{
		{Name: "unauthorized", Status: http.StatusUnauthorized, Fixture: "error_401.json", Want: []string{"ANTHROPIC_API_KEY", "invalid x-api-key"}},
		{Name: "model not found", Status: http.StatusNotFound, Fixture: "error_404.json", Want: []string{"claude-nonexistent-9", "MINI_OPENCLAW_MODEL"}},
		{Name: "prompt too long", Status: http.StatusBadRequest, Fixture: "error_400_too_long.json", Want: []string{"too long for the model", "prompt is too long"}},
	})
}

func TestStreamEndsWithoutMessageStop(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "cut.sse"))
	r := pt.Complete(t, newProvider(api, 2), simpleRequest())
	pt.WantErr(t, r.Err, "cut") // it tells the stream was cut
	pt.WantText(t, r, "The answer", " is")
	api.WantRequests(t, 1) // text was already shown: no retry
}

func TestConnectionDroppedMidStream(t *testing.T) {
	// message_start, content_block_start, two deltas, then the TCP
	// connection closes in the middle of the chunked body.
	api := pt.NewFakeAPI(t, pt.SSEThenDrop(t, "text.sse", 5, requestID...))
	r := pt.Complete(t, newProvider(api, 2), simpleRequest())
	pt.WantErr(t, r.Err, "cut") // it tells the stream was cut
	pt.WantText(t, r, "Hello", "! How can")
}

func TestCancelMidStream(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.SSEThenHang(t, "text.sse", 4, requestID...))
	ctx, cancel := context.WithCancel(pt.Ctx(t))
	defer cancel()
	r := pt.CompleteCancelled(t, newProvider(api, 3), ctx, simpleRequest(), cancel)
	if r.Err == nil {
		t.Fatal("no error after cancel")
	}
	if !errors.Is(r.Err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", r.Err)
	}
	pt.WantText(t, r, "Hello") // the first delta, then nothing
	api.WantRequests(t, 1)
}

func TestCancelCauseIsReturned(t *testing.T) {
	api := pt.NewFakeAPI(t, pt.SSEThenHang(t, "text.sse", 4, requestID...))
	ctx, cancel := context.WithCancelCause(pt.Ctx(t))
	defer cancel(nil)
	_, err := newProvider(api, 3).Complete(ctx, simpleRequest(), func(string) { cancel(core.ErrAborted) })
	if !errors.Is(err, core.ErrAborted) {
		t.Errorf("err = %v, want core.ErrAborted", err)
	}
}

func TestConcurrentCompletes(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "tool_use.sse"))
	pt.CompleteConcurrently(t, newProvider(api, 1), simpleRequest(), 8, func(r core.Response) bool {
		return len(r.ToolCalls) == 1 && r.Text == "Let me check the weather."
	})
}

func TestName(t *testing.T) {
	var p core.Provider = New(Options{APIKey: "x"})
	if p.Name() != "anthropic" {
		t.Errorf("Name = %q", p.Name())
	}
}

// TestPromptTooLongIsAnOverflow: the API's 400s for a prompt over the
// window (the SDK's error, from the exact wire bodies) are
// core.ErrContextOverflow with the sizes they name, so the agent can
// compact and retry.
func TestPromptTooLongIsAnOverflow(t *testing.T) {
	cases := []struct {
		fixture       string
		tokens, limit int64
	}{
		{"error_400_too_long.json", 250000, 200000},
		{"error_400_exceeds_context.json", 195000, 200000},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			pt.WantOverflow(t, func(api *pt.FakeAPI) core.Provider { return newProvider(api, 2) }, simpleRequest(), tc.fixture, tc.tokens, tc.limit)
		})
	}
}

// A refused key is found with one GET /v1/models at startup.
func TestCheckKey(t *testing.T) {
	pt.WantKeyCheck(t, "/v1/models", "X-Api-Key", "ANTHROPIC_API_KEY", func(url, key string) core.KeyChecker {
		return New(Options{APIKey: key, BaseURL: url})
	})
}

// A tool's input schema reaches the API whole: an MCP server's $defs,
// additionalProperties and the rest, not only properties and required.
func TestToolSchemaPassedWhole(t *testing.T) {
	api := pt.NewFakeAPI(t, sse(t, "text.sse"))
	schema := `{"type":"object","$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"properties":{"tree":{"$ref":"#/$defs/node"}},"required":["tree"],"additionalProperties":false}`
	req := simpleRequest()
	req.Tools = []core.ToolSpec{{Name: "mcp__srv__odd", Description: "odd", InputSchema: json.RawMessage(schema)}}
	pt.MustComplete(t, newProvider(api, 1), req)
	var w struct {
		Tools []struct {
			InputSchema json.RawMessage `json:"input_schema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(api.Only(t).Body, &w); err != nil || len(w.Tools) != 1 {
		t.Fatalf("%v: %+v", err, w)
	}
	pt.JSONEqual(t, "input_schema", w.Tools[0].InputSchema, schema)
}
