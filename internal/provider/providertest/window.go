package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Window is a fake of the Anthropic Messages API with a context window:
// it counts each request's tokens (its body's bytes at BytesPerToken, a
// tokenizer unlike miniclaw's estimate), refuses one over the window with
// the API's exact 400s, and otherwise answers as Reply decides, reporting
// the count as usage.input_tokens.
type Window struct {
	Size          int64   // tokens
	BytesPerToken float64 // e.g. 3.5
	// Reply decides the answer to a request that fits.
	Reply func(req WindowRequest) WindowAnswer

	mu     sync.Mutex
	counts []int64 // every request's tokens, refused ones too
	fits   []WindowRequest
}

// WindowRequest is what the fake read of a request that fits.
type WindowRequest struct {
	System    string
	Tokens    int64
	MaxTokens int64
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	Body []byte
}

// LastUserText is the text of the last user message's blocks (its
// tool_result blocks excluded), "" when it holds only tool results.
func (r WindowRequest) LastUserText() string {
	if len(r.Messages) == 0 {
		return ""
	}
	m := r.Messages[len(r.Messages)-1]
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(m.Content, &blocks)
	var b strings.Builder
	for _, bl := range blocks {
		if bl.Type == "text" {
			b.WriteString(bl.Text)
		}
	}
	return b.String()
}

// WindowAnswer is a reply: text, or one tool call with its JSON input.
type WindowAnswer struct {
	Text      string
	ToolName  string
	ToolInput string
}

// Counts returns the tokens of every request received so far.
func (w *Window) Counts() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.counts...)
}

// Served returns the requests that fitted, in order.
func (w *Window) Served() []WindowRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]WindowRequest(nil), w.fits...)
}

// Handler is the fake's Reply for a FakeAPI.
func (w *Window) Handler(t testing.TB) Reply {
	return func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("window fake: %v", err)
			return
		}
		var req struct {
			System    json.RawMessage `json:"system"`
			MaxTokens int64           `json:"max_tokens"`
			Messages  []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("window fake: request is not JSON: %v", err)
			return
		}
		tokens := int64(float64(len(body)) / w.BytesPerToken)
		w.mu.Lock()
		w.counts = append(w.counts, tokens)
		w.mu.Unlock()
		switch {
		case tokens > w.Size:
			writeAnthropicError(rw, fmt.Sprintf("prompt is too long: %d tokens > %d maximum", tokens, w.Size))
			return
		case tokens+req.MaxTokens > w.Size:
			writeAnthropicError(rw, fmt.Sprintf("input length and `max_tokens` exceed context limit: %d + %d > %d, decrease input length or `max_tokens` and try again", tokens, req.MaxTokens, w.Size))
			return
		}
		wr := WindowRequest{System: systemText(req.System), Tokens: tokens, MaxTokens: req.MaxTokens, Messages: req.Messages, Body: body}
		w.mu.Lock()
		w.fits = append(w.fits, wr)
		w.mu.Unlock()
		writeEvents(rw, nil, messageEvents(w.Reply(wr), tokens))
	}
}

// systemText joins the system prompt, a string or an array of text blocks.
func systemText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &blocks)
	var b strings.Builder
	for _, bl := range blocks {
		b.WriteString(bl.Text)
	}
	return b.String()
}

func writeAnthropicError(w http.ResponseWriter, msg string) {
	body, _ := json.Marshal(map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": "invalid_request_error", "message": msg},
		"request_id": "req_window_fake",
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(body)
}

// messageEvents is the SSE stream of a whole reply, as the API sends it.
func messageEvents(a WindowAnswer, inputTokens int64) [][]byte {
	ev := func(typ string, data any) []byte {
		b, _ := json.Marshal(data)
		return []byte("event: " + typ + "\ndata: " + string(b) + "\n\n")
	}
	stop := "end_turn"
	out := [][]byte{ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_window", "type": "message", "role": "assistant", "model": "claude-test", "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": inputTokens, "output_tokens": 1},
	}})}
	if a.ToolName != "" {
		stop = "tool_use"
		out = append(out,
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "tool_use", "id": fmt.Sprintf("toolu_%d", inputTokens), "name": a.ToolName, "input": map[string]any{}}}),
			ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "input_json_delta", "partial_json": a.ToolInput}}),
		)
	} else {
		out = append(out,
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}),
			ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": a.Text}}),
		)
	}
	return append(out,
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}),
		ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 10}}),
		ev("message_stop", map[string]any{"type": "message_stop"}),
	)
}
