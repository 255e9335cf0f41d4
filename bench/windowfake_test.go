package main

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
)

// The fake is checked through the official SDK, as the gateway's provider
// talks to it: the stream must parse, and usage must follow the documented
// cache rule.

func startTestFake(t *testing.T, window int) (*windowFake, sdk.Client) {
	t.Helper()
	f, err := startWindowFake(window)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	return f, sdk.NewClient(option.WithBaseURL(f.url), option.WithAPIKey("test"), option.WithMaxRetries(0))
}

func stream(t *testing.T, c sdk.Client, p sdk.MessageNewParams) (sdk.Message, error) {
	t.Helper()
	s := c.Messages.NewStreaming(context.Background(), p)
	defer s.Close()
	var msg sdk.Message
	for s.Next() {
		if err := msg.Accumulate(s.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	return msg, s.Err()
}

func cached(b sdk.TextBlockParam) sdk.TextBlockParam {
	b.CacheControl = sdk.NewCacheControlEphemeralParam()
	return b
}

func readFileTool(cache bool) []sdk.ToolUnionParam {
	tool := sdk.ToolParam{Name: "read_file", Description: sdk.String("Read a file."), InputSchema: sdk.ToolInputSchemaParam{Properties: map[string]any{"path": map[string]any{"type": "string"}}}}
	if cache {
		tool.CacheControl = sdk.NewCacheControlEphemeralParam()
	}
	return []sdk.ToolUnionParam{{OfTool: &tool}}
}

func prompt(t *testing.T, m sdk.Message) int64 {
	t.Helper()
	u := m.Usage
	return u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
}

func TestWindowFakeCacheRule(t *testing.T) {
	f, c := startTestFake(t, 100_000)
	turn := longTurnAt(1, 5)
	system := []sdk.TextBlockParam{cached(sdk.TextBlockParam{Text: strings.Repeat("stable prompt ", 100)}), {Text: "Time: 10:00:00"}}
	user := sdk.NewUserMessage(sdk.ContentBlockParamUnion{OfText: ptr(cached(sdk.TextBlockParam{Text: turn.message()}))})
	first, err := stream(t, c, sdk.MessageNewParams{Model: "claude-test", MaxTokens: 100, Tools: readFileTool(true), System: system, Messages: []sdk.MessageParam{user}})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Content) != 1 || first.Content[0].Type != "tool_use" || first.Content[0].Name != "read_file" || string(first.Content[0].Input) != `{"path": "big1.txt"}` {
		t.Fatalf("first answer %+v, want a read_file tool_use of big1.txt", first.Content)
	}
	if u := first.Usage; u.CacheReadInputTokens != 0 || u.InputTokens != 0 || u.CacheCreationInputTokens == 0 {
		t.Fatalf("first request usage %+v: want everything written to the cache (the last breakpoint ends the request)", u)
	}

	// The same prefix plus the tool round, the rolling breakpoint moved to
	// the tool result: everything the first request wrote is read.
	user.Content[0].OfText.CacheControl = sdk.CacheControlEphemeralParam{}
	result := sdk.NewToolResultBlock(turn.toolID(), longFileLine("big1.txt", 1), false)
	result.OfToolResult.CacheControl = sdk.NewCacheControlEphemeralParam()
	msgs := []sdk.MessageParam{user, sdk.NewAssistantMessage(sdk.NewToolUseBlock(turn.toolID(), json.RawMessage(`{"path":"big1.txt"}`), "read_file")), sdk.NewUserMessage(result)}
	second, err := stream(t, c, sdk.MessageNewParams{Model: "claude-test", MaxTokens: 100, Tools: readFileTool(true), System: system, Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Content) != 1 || second.Content[0].Text != turn.reply() {
		t.Fatalf("second answer %+v, want %q", second.Content, turn.reply())
	}
	if u := second.Usage; u.CacheReadInputTokens != prompt(t, first) || u.InputTokens != 0 || u.CacheCreationInputTokens == 0 {
		t.Fatalf("second request usage %+v: want a cache read of the first request's %d tokens, the rest written", u, prompt(t, first))
	}

	// A system block that changes before the messages leaves only the
	// tools and the stable system block to read, and nothing can be shared
	// past the change.
	system[1].Text = "Time: 10:00:01"
	third, err := stream(t, c, sdk.MessageNewParams{Model: "claude-test", MaxTokens: 100, Tools: readFileTool(true), System: system, Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if u := third.Usage; u.CacheReadInputTokens == 0 || u.CacheReadInputTokens >= prompt(t, first)-5 || u.InputTokens != 0 || prompt(t, third) != prompt(t, second) {
		t.Fatalf("third request usage %+v: want only the tools and the stable system block read (less than the first request's %d tokens), the rest written, same size as the second (%d)", u, prompt(t, first), prompt(t, second))
	}
	reqs := f.requests()
	if len(reqs) != 3 || reqs[0].kind != kindReadTool || reqs[1].kind != kindReadDone || reqs[1].shared != reqs[0].bytes || reqs[2].shared >= reqs[0].bytes-20 {
		t.Fatalf("request log %+v", reqs)
	}

	// Without tools, a summary request; without cache_control, nothing
	// cached and nothing counted as shareable.
	sum, err := stream(t, c, sdk.MessageNewParams{Model: "claude-test", MaxTokens: 100, Messages: []sdk.MessageParam{sdk.NewUserMessage(sdk.NewTextBlock("Summarize the conversation so far."))}})
	if err != nil {
		t.Fatal(err)
	}
	if u := sum.Usage; len(sum.Content) != 1 || !strings.HasPrefix(sum.Content[0].Text, "Recap of the conversation") || u.CacheReadInputTokens != 0 || u.CacheCreationInputTokens != 0 || u.InputTokens == 0 {
		t.Fatalf("summary answer %+v, usage %+v", sum.Content, u)
	}
	if r := f.requests()[3]; r.kind != kindSummary || r.shared != 0 {
		t.Fatalf("summary request logged as %+v", r)
	}
}

func TestWindowFakeRefusesOverWindow(t *testing.T) {
	f, c := startTestFake(t, 1000)
	_, err := stream(t, c, sdk.MessageNewParams{Model: "claude-test", MaxTokens: 100, Tools: readFileTool(false),
		Messages: []sdk.MessageParam{sdk.NewUserMessage(sdk.NewTextBlock(strings.Repeat("x", 5000)))}})
	var apiErr *sdk.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("err = %v, want the API's 400", err)
	}
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(apiErr.RawJSON()), &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != "error" || body.Error.Type != "invalid_request_error" || !regexp.MustCompile(`^prompt is too long: 1[0-9]{3} tokens > 1000 maximum$`).MatchString(body.Error.Message) {
		t.Fatalf("error body %s", apiErr.RawJSON())
	}
	if r := f.requests(); len(r) != 1 || !r[0].over || r[0].tokens <= 1000 {
		t.Fatalf("request log %+v", r)
	}
}

func ptr[T any](v T) *T { return &v }
