package openai

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Request and stream chunk shapes of the chat completions API, only the
// fields miniclaw uses.

type chatRequest struct {
	Model         string         `json:"model"`
	Messages      []chatMessage  `json:"messages"`
	Tools         []chatTool     `json:"tools,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role       string         `json:"role"`
	Content    string         `json:"content"`
	ToolCalls  []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type chunk struct {
	Choices []struct {
		Delta struct {
			Content   string         `json:"content"`
			ToolCalls []chatToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// buildRequest maps the conversation: each assistant tool call becomes a
// tool_calls entry followed by a "tool" message with its result. Blank text
// (core.Blank) is not sent, as the Anthropic provider does not send it: a
// message with nothing else is left out, and a blank tool output or text
// beside tool calls is sent as "". The volatile part of the prompt comes
// last, so that a server's prefix cache (vLLM, llama.cpp) serves the whole
// conversation before it: appended to the last user message, or as a user
// message after tool results (a second user message in a row, or a system
// message that is not the first, breaks some chat templates).
func buildRequest(req core.Request) chatRequest {
	cr := chatRequest{Model: req.Model, Stream: true, StreamOptions: &streamOptions{IncludeUsage: true}}
	if !core.Blank(req.System) {
		cr.Messages = append(cr.Messages, chatMessage{Role: "system", Content: req.System})
	}
	for _, m := range req.Messages {
		switch {
		case m.Role == core.RoleUser && !core.Blank(m.Content):
			cr.Messages = append(cr.Messages, chatMessage{Role: "user", Content: m.Content})
		case m.Role == core.RoleAssistant && (!core.Blank(m.Content) || len(m.ToolCalls) > 0):
			am := chatMessage{Role: "assistant", Content: shown(m.Content)}
			for _, tc := range m.ToolCalls {
				c := chatToolCall{ID: tc.ID, Type: "function"}
				c.Function.Name = tc.Name
				c.Function.Arguments = string(tc.Input)
				if c.Function.Arguments == "" {
					c.Function.Arguments = "{}"
				}
				am.ToolCalls = append(am.ToolCalls, c)
			}
			cr.Messages = append(cr.Messages, am)
			for _, tc := range m.ToolCalls {
				out := shown(tc.Output)
				if tc.IsError {
					out = "Error: " + out
				}
				cr.Messages = append(cr.Messages, chatMessage{Role: "tool", ToolCallID: tc.ID, Content: out})
			}
		}
	}
	if !core.Blank(req.Volatile) {
		if n := len(cr.Messages); n > 0 && cr.Messages[n-1].Role == "user" {
			cr.Messages[n-1].Content += "\n\n" + req.Volatile
		} else {
			cr.Messages = append(cr.Messages, chatMessage{Role: "user", Content: req.Volatile})
		}
	}
	for _, t := range req.Tools {
		var ct chatTool
		ct.Type = "function"
		ct.Function.Name, ct.Function.Description, ct.Function.Parameters = t.Name, t.Description, t.InputSchema
		cr.Tools = append(cr.Tools, ct)
	}
	return cr
}

// shown is s, or "" when s is blank.
func shown(s string) string {
	if core.Blank(s) {
		return ""
	}
	return s
}

// readStream parses the SSE stream, relaying text deltas as they come and
// assembling tool calls. A delta with an index continues the call at that
// index (OpenAI splits arguments over many deltas), unless it carries an ID
// other than that call's: some Ollama versions send every call of a parallel
// response whole with index 0. A delta without an index starts a new call
// when it carries a new ID and continues the last one otherwise (some local
// servers omit the index and send a call whole).
func readStream(ctx context.Context, body io.Reader, onText func(string)) (resp core.Response, err error) {
	// Text and names are built, not grown with +=, which would copy all
	// that came before on every chunk: quadratic on a long reply.
	var text strings.Builder
	defer func() { resp.Text = text.String() }()
	type building struct {
		id         string
		name, args strings.Builder
	}
	var calls []*building
	byIndex := map[int]*building{}
	done := false
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue // comments, event names, blank separators
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			done = true
			break
		}
		var c chunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return resp, fmt.Errorf("openai: malformed stream chunk: %w", err)
		}
		if len(c.Error) > 0 {
			return resp, fmt.Errorf("openai: error in stream: %s", c.Error)
		}
		if u := c.Usage; u != nil {
			// prompt_tokens includes the cached ones; core.Usage counts
			// them apart.
			resp.Usage = core.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
			if d := u.PromptTokensDetails; d != nil && d.CachedTokens > 0 && d.CachedTokens <= u.PromptTokens {
				resp.Usage.InputTokens, resp.Usage.CacheReadTokens = u.PromptTokens-d.CachedTokens, d.CachedTokens
			}
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != "" {
				text.WriteString(ch.Delta.Content)
				onText(ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				var b *building
				switch {
				case tc.Index != nil && byIndex[*tc.Index] != nil && (tc.ID == "" || tc.ID == byIndex[*tc.Index].id || byIndex[*tc.Index].id == ""):
					b = byIndex[*tc.Index]
				case tc.Index == nil && len(calls) > 0 && (tc.ID == "" || tc.ID == calls[len(calls)-1].id):
					b = calls[len(calls)-1]
				default:
					b = &building{}
					calls = append(calls, b)
					if tc.Index != nil {
						byIndex[*tc.Index] = b
					}
				}
				if tc.ID != "" {
					b.id = tc.ID
				}
				b.name.WriteString(tc.Function.Name)
				b.args.WriteString(tc.Function.Arguments)
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				resp.StopReason = *ch.FinishReason
			}
		}
	}
	if err := sc.Err(); err != nil {
		return resp, fmt.Errorf("openai: stream broke off: %w", err)
	}
	if ctx.Err() != nil {
		return resp, context.Cause(ctx)
	}
	if !done && resp.StopReason == "" {
		return resp, errors.New("openai: the stream ended before [DONE] (connection cut mid-reply)")
	}
	for i, b := range calls {
		args := strings.TrimSpace(b.args.String())
		if args == "" {
			args = "{}"
		}
		if !json.Valid([]byte(args)) {
			return resp, fmt.Errorf("openai: tool call %s has arguments that are not valid JSON: %.200s", b.name.String(), args)
		}
		id := b.id
		if id == "" {
			id = fmt.Sprintf("call_%d", i)
		}
		resp.ToolCalls = append(resp.ToolCalls, core.ToolCall{ID: id, Name: b.name.String(), Input: json.RawMessage(args)})
	}
	return resp, nil
}
