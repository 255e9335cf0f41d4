package anthropic

import (
	"encoding/json"
	"fmt"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/miniclaw/miniclaw/internal/core"
)

// params builds the Messages API request: the system prompt, the tools, and
// the history with every tool call as a tool_use block followed by its
// tool_result in the next user message, as the API requires.
func (p *Provider) params(req core.Request) (sdk.MessageNewParams, error) {
	params := sdk.MessageNewParams{
		Model:     sdk.Model(req.Model),
		MaxTokens: p.maxTokens,
		Messages:  history(req.Messages),
	}
	if !core.Blank(req.System) {
		params.System = []sdk.TextBlockParam{{Text: req.System}}
	}
	for _, t := range req.Tools {
		var schema struct {
			Properties any      `json:"properties"`
			Required   []string `json:"required"`
		}
		if err := json.Unmarshal(t.InputSchema, &schema); err != nil {
			return params, fmt.Errorf("anthropic: tool %s: bad input schema: %w", t.Name, err)
		}
		tool := sdk.ToolParam{
			Name:        t.Name,
			Description: sdk.String(t.Description),
			InputSchema: sdk.ToolInputSchemaParam{Properties: schema.Properties, Required: schema.Required},
		}
		params.Tools = append(params.Tools, sdk.ToolUnionParam{OfTool: &tool})
	}
	return params, nil
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
	addUser := func(blocks ...sdk.ContentBlockParamUnion) {
		if len(blocks) == 0 {
			return
		}
		if n := len(out); n > 0 && out[n-1].Role == sdk.MessageParamRoleUser {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			return
		}
		out = append(out, sdk.NewUserMessage(blocks...))
	}
	for _, m := range msgs {
		switch m.Role {
		case core.RoleUser:
			addUser(textBlocks(m.Content)...)
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
			addUser(results...)
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
