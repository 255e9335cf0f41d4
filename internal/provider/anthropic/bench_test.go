package anthropic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
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
