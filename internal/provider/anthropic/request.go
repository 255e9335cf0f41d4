package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/miniclaw/miniclaw/internal/core"
)

// params builds the Messages API request: the system prompt, the tools, and
// the history with every tool call as a tool_use block followed by its
// tool_result in the next user message, as the API requires; then the
// cache breakpoints, and the volatile part of the prompt last.
func (p *Provider) params(req core.Request) (sdk.MessageNewParams, error) {
	params := sdk.MessageNewParams{
		Model:     sdk.Model(req.Model),
		MaxTokens: p.maxTokens,
		Messages:  history(req.Messages),
	}
	if !core.Blank(req.System) {
		params.System = []sdk.TextBlockParam{{Text: req.System, CacheControl: sdk.NewCacheControlEphemeralParam()}}
	}
	for _, t := range req.Tools {
		var schema struct {
			Properties any      `json:"properties"`
			Required   []string `json:"required"`
		}
		// The rest of the schema ($defs, additionalProperties...) goes
		// as it is: MCP servers' schemas refer to their $defs.
		var rest map[string]any
		if err := errors.Join(json.Unmarshal(t.InputSchema, &schema), json.Unmarshal(t.InputSchema, &rest)); err != nil {
			return params, fmt.Errorf("anthropic: tool %s: bad input schema: %w", t.Name, err)
		}
		for _, k := range []string{"type", "properties", "required"} {
			delete(rest, k)
		}
		tool := sdk.ToolParam{
			Name:        t.Name,
			Description: sdk.String(t.Description),
			InputSchema: sdk.ToolInputSchemaParam{Properties: schema.Properties, Required: schema.Required, ExtraFields: rest},
		}
		params.Tools = append(params.Tools, sdk.ToolUnionParam{OfTool: &tool})
	}
	if n := len(params.Tools); n > 0 {
		params.Tools[n-1].OfTool.CacheControl = sdk.NewCacheControlEphemeralParam()
	}
	cacheConversation(params.Messages)
	if !core.Blank(req.Volatile) {
		addUser(&params.Messages, sdk.NewTextBlock(req.Volatile))
	}
	return params, nil
}

// cacheConversation puts the conversation's cache breakpoints (the API
// allows four; the tools and the system prompt take two). The API caches
// the prefix up to a breakpoint: tools, system, messages. One sits on the
// last message, which the next request of the session (the next round, or
// the next turn) extends. The other sits on the third message from the
// end, where the previous request's last message was (each round adds an
// assistant message and a user one): it reads the cache that request wrote
// even when this round added more blocks than the API looks back over to
// find an earlier breakpoint by itself (about 20; a round of parallel tool
// calls can add 40).
func cacheConversation(msgs []sdk.MessageParam) {
	for _, i := range []int{len(msgs) - 1, len(msgs) - 3} {
		if i < 0 {
			continue
		}
		blocks := msgs[i].Content
		if cc := blocks[len(blocks)-1].GetCacheControl(); cc != nil {
			*cc = sdk.NewCacheControlEphemeralParam()
		}
	}
}

// addUser adds blocks to the last message if it is the user's, else as a
// new user message: the API wants the roles to alternate.
func addUser(msgs *[]sdk.MessageParam, blocks ...sdk.ContentBlockParamUnion) {
	if len(blocks) == 0 {
		return
	}
	if n := len(*msgs); n > 0 && (*msgs)[n-1].Role == sdk.MessageParamRoleUser {
		(*msgs)[n-1].Content = append((*msgs)[n-1].Content, blocks...)
		return
	}
	*msgs = append(*msgs, sdk.NewUserMessage(blocks...))
}

// history converts transcript messages. Consecutive user-side blocks (tool
// results, then the next user text) are merged into one user message. Blank
// text (core.Blank) is never sent, as the API refuses it with a 400 that
// would recur on every later turn of the session; a message left with no
// blocks is left out, since the API refuses empty content too, and its
// neighbours merge when both are the user's. Tool pairs are never split: an
// assistant message with tool calls always has its tool_use blocks.
func history(msgs []core.Message) []sdk.MessageParam {
	var out []sdk.MessageParam
	for _, m := range msgs {
		switch m.Role {
		case core.RoleUser:
			addUser(&out, textBlocks(m.Content)...)
		case core.RoleAssistant:
			blocks := textBlocks(m.Content)
			var results []sdk.ContentBlockParamUnion
			for _, tc := range m.ToolCalls {
				input := json.RawMessage(tc.Input)
				if len(input) == 0 {
					input = json.RawMessage("{}")
				}
				blocks = append(blocks, sdk.NewToolUseBlock(tc.ID, input, tc.Name))
				results = append(results, toolResult(tc))
			}
			if len(blocks) == 0 {
				continue
			}
			out = append(out, sdk.NewAssistantMessage(blocks...))
			addUser(&out, results...)
		}
	}
	return out
}

// textBlocks is the text block of s, or none when s is blank.
func textBlocks(s string) []sdk.ContentBlockParamUnion {
	if core.Blank(s) {
		return nil
	}
	return []sdk.ContentBlockParamUnion{sdk.NewTextBlock(s)}
}

// toolResult is the tool_result block of a call. A blank output is sent as
// a result without content: the API rejects blank text blocks, and a
// command with no output is common.
func toolResult(tc core.ToolCallRecord) sdk.ContentBlockParamUnion {
	if !core.Blank(tc.Output) {
		return sdk.NewToolResultBlock(tc.ID, tc.Output, tc.IsError)
	}
	return sdk.ContentBlockParamUnion{OfToolResult: &sdk.ToolResultBlockParam{ToolUseID: tc.ID, IsError: sdk.Bool(tc.IsError)}}
}
