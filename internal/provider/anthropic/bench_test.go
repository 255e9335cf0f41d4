package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	pt "github.com/miniclaw/miniclaw/internal/provider/providertest"
)

// BenchmarkComplete measures the provider's own cost for one model call of
// an agent turn: encoding a request with a system prompt, six tools and a
// history with tool pairs, and parsing a streamed tool_use reply, against a
// local server that answers at once.
func BenchmarkComplete(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "tool_use.sse"))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	defer srv.Close()
	p := New(Options{APIKey: "k", BaseURL: srv.URL})

	schema := json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","description":"a file in the workspace"}},"required":["path"]}`)
	req := core.Request{Model: "claude-sonnet-4-20250514", System: strings.Repeat("You are a helpful assistant. ", 150)}
	for _, n := range []string{"bash", "edit_file", "list_files", "memory_search", "memory_write", "read_file", "write_file"} {
		req.Tools = append(req.Tools, core.ToolSpec{Name: n, Description: "a tool of the benchmark", InputSchema: schema})
	}
	for i := range 10 {
		req.Messages = append(req.Messages,
			core.Message{Role: core.RoleUser, Content: "please read the file number " + string(rune('a'+i))},
			core.Message{Role: core.RoleAssistant, Content: "Let me look.", ToolCalls: []core.ToolCallRecord{{ID: "toolu_" + string(rune('a'+i)), Name: "read_file", Input: json.RawMessage(`{"path":"notes.txt"}`), Output: "     1\tremember the milk\n"}}},
			core.Message{Role: core.RoleAssistant, Content: "It says to remember the milk."})
	}
	req.Messages = append(req.Messages, core.Message{Role: core.RoleUser, Content: "and now?"})
	ctx := context.Background()
	for b.Loop() {
		resp, err := p.Complete(ctx, req, func(string) {})
		if err != nil || len(resp.ToolCalls) != 1 {
			b.Fatalf("%v %+v", err, resp)
		}
	}
}

// A long reply costs in proportion to its length: neither the provider nor
// the SDK's message accumulator rebuilds the reply text on each delta.
func TestLongReplyIsLinear(t *testing.T) {
	pt.WantLinear(t, completeLong)
}

func BenchmarkLongReply(b *testing.B) {
	pt.BenchLongReply(b, completeLong)
}

// completeLong streams a reply of n text deltas of "x " through the
// provider and checks it.
func completeLong(t testing.TB, n int) {
	var body bytes.Buffer
	body.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n")
	body.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for range n {
		body.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x \"}}\n\n")
	}
	body.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	body.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n")
	body.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	resp := pt.CompleteLongHTTP(t, body.Bytes(), func(url string) core.Provider { return New(Options{APIKey: "k", BaseURL: url}) }, simpleRequest(), n)
	if resp.StopReason != "end_turn" {
		t.Fatalf("stop %q, want end_turn", resp.StopReason)
	}
}
