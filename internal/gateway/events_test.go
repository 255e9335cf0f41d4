package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// downloadTool reports how far it got once, as an MCP server's progress
// notification does through internal/mcp.
type downloadTool struct{}

func (downloadTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "download", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (downloadTool) ReadOnly() bool { return false }
func (downloadTool) Run(ctx context.Context, _ json.RawMessage) (string, error) {
	if report := tools.ProgressReporter(ctx); report != nil {
		report(tools.Progress{Progress: 3, Total: 10, Message: "Downloading"})
	}
	return "downloaded", nil
}

// TestToolProgressOnTheWire: a tool's progress reaches every client of the
// session as tool_progress, between the call's tool_start and tool_done.
func TestToolProgressOnTheWire(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[
		{"toolCalls": [{"name": "download", "input": {}}]},
		{"text": "Done."}
	]`, func(o *gateway.Options) { o.Runtime.Tools = tools.NewSet(downloadTool{}) })
	a := ts.dial(t, "/ws?sessionId=progress")
	b := ts.dial(t, "/ws?sessionId=progress")
	a.message("fetch it")
	for _, c := range []*client{a, b} {
		var types []string
		var progress event
		for ev := c.next(); ev.Type != "message_done"; ev = c.next() {
			if ev.Type == "user_message" || ev.Type == "chunk" {
				continue
			}
			types = append(types, ev.Type)
			if ev.Type == "tool_progress" {
				progress = ev
			}
		}
		if got := strings.Join(types, " "); got != "tool_start tool_progress tool_done" {
			t.Fatalf("events %q, want tool_start tool_progress tool_done", got)
		}
		f := progress.fields(t)
		if f["sessionId"] != "progress" || f["toolName"] != "download" || f["toolCallId"] == "" || f["progress"] != 3.0 || f["total"] != 10.0 || f["message"] != "Downloading" {
			t.Fatalf("tool_progress = %s", progress.Raw)
		}
	}
	// Not persisted: the transcript holds the call and its result only.
	wantTranscript(t, ts.readJSONL(t, "progress"), "user", "fetch it", "assistant", "", "assistant", "Done.")
}

// TestUserMessageReachesTheOtherClients: a message sent by one client (or
// over /v1/chat/completions) reaches the session's other clients as
// user_message when its turn starts, before the reply's first chunk; the
// sender gets none (it shows its own copy).
func TestUserMessageReachesTheOtherClients(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	a := ts.dial(t, "/ws?sessionId=shared")
	b := ts.dial(t, "/ws?sessionId=shared")
	a.message("hello from A")
	if tn := a.readTurn(); tn.text() != "echo: hello from A" {
		t.Fatalf("A's turn: %q", tn.text())
	}
	wantUserMessage(t, b, "hello from A", "webchat")
	if tn := b.readTurn(); tn.text() != "echo: hello from A" {
		t.Fatalf("B's turn: %q", tn.text())
	}

	resp := ts.post(t, context.Background(), chatBody("hello from curl", nil), http.Header{"X-Miniclaw-Session": {"shared"}})
	if resp.StatusCode != 200 {
		t.Fatalf("POST: status %d", resp.StatusCode)
	}
	for _, c := range []*client{a, b} {
		wantUserMessage(t, c, "hello from curl", "openai")
		if tn := c.readTurn(); tn.text() != "echo: hello from curl" {
			t.Fatalf("turn: %q", tn.text())
		}
	}
}

// wantUserMessage reads c's next event, which must be the user_message of
// content from channel.
func wantUserMessage(t *testing.T, c *client, content, channel string) {
	t.Helper()
	ev := c.expect("user_message")
	f := ev.fields(t)
	if f["sessionId"] != "shared" || f["content"] != content || f["channel"] != channel {
		t.Fatalf("user_message = %s, want content %q from %s", ev.Raw, content, channel)
	}
	if ts, _ := f["timestamp"].(float64); ts <= 0 {
		t.Fatalf("user_message = %s: no timestamp", ev.Raw)
	}
}
