package gateway_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// withFileTools gives the runtime the file tools on its workspace, which
// holds notes.txt.
func withFileTools(t *testing.T) func(*gateway.Options) {
	return func(o *gateway.Options) {
		dir := o.Runtime.Workspace
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("remember the milk\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ws, err := tools.OpenWorkspace(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		o.Runtime.Tools = tools.NewSet(ws.FileTools()...)
	}
}

// TestToolEventsFanOut: a turn that calls a tool streams tool_start and
// tool_done between its text to every tab, and the transcript keeps the
// whole tool record.
func TestToolEventsFanOut(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[
		{"text": "Let me look.", "toolCalls": [{"name": "list_files", "input": {"directory": "."}}]},
		{"text": "There is notes.txt."}
	]`, withFileTools(t))
	a := ts.dial(t, "/ws?sessionId=tools")
	b := ts.dial(t, "/ws?sessionId=tools")
	a.message("what is here?")

	for _, c := range []*client{a, b} {
		var text strings.Builder
		var start, done event
		for {
			ev := c.next()
			switch ev.Type {
			case "chunk":
				text.WriteString(ev.Content)
				continue
			case "tool_start":
				start = ev
				if text.String() != "Let me look." {
					t.Fatalf("tool_start after text %q, want it after the first round's text", text.String())
				}
				continue
			case "tool_done":
				done = ev
				continue
			case "user_message": // b's: a's message
				continue
			case "message_done":
			default:
				t.Fatalf("unexpected event %s", ev.Raw)
			}
			if ev.Content != "There is notes.txt." || text.String() != "Let me look.There is notes.txt." {
				t.Fatalf("message_done %q after text %q", ev.Content, text.String())
			}
			break
		}
		sf, df := start.fields(t), done.fields(t)
		if sf["toolName"] != "list_files" || sf["sessionId"] != "tools" || sf["toolCallId"] == "" {
			t.Fatalf("tool_start = %s", start.Raw)
		}
		if in, _ := json.Marshal(sf["input"]); string(in) != `{"directory":"."}` {
			t.Fatalf("tool_start input = %s", in)
		}
		if df["toolName"] != "list_files" || df["toolCallId"] != sf["toolCallId"] || !strings.Contains(fmt.Sprint(df["output"]), "notes.txt") {
			t.Fatalf("tool_done = %s", done.Raw)
		}
		if _, ok := df["isError"]; ok {
			t.Fatalf("a successful tool is reported as an error: %s", done.Raw)
		}
	}

	lines := ts.readJSONL(t, "tools")
	if len(lines) < 3 || lines[0].Role != "user" || lines[len(lines)-1].Content != "There is notes.txt." {
		t.Fatalf("transcript = %+v", lines)
	}
	var rec []map[string]any
	for _, l := range lines[1:] {
		if calls, ok := l.Fields["toolCalls"].([]any); ok {
			for _, c := range calls {
				rec = append(rec, c.(map[string]any))
			}
		}
	}
	if len(rec) != 1 || rec[0]["name"] != "list_files" || rec[0]["id"] == "" || !strings.Contains(fmt.Sprint(rec[0]["output"]), "notes.txt") {
		t.Fatalf("transcript tool records = %v, want the list_files call with its output", rec)
	}
}

// TestToolInputAsTyped: a tool input holding shell operators is stored in
// the JSONL, sent in tool_start and served by the API byte for byte as the
// model wrote it, not HTML-escaped (\u0026\u0026, \u003e).
func TestToolInputAsTyped(t *testing.T) {
	t.Parallel()
	const typed = `echo a && echo b > out.txt 2>&1 <in`
	ts := scriptServer(t, `[
		{"text": "Running a && b.", "toolCalls": [{"name": "list_files", "input": {"directory": "`+typed+`"}}]},
		{"text": "Done: a && b > out."}
	]`, withFileTools(t))
	c := ts.dial(t, "/ws?sessionId=typed")
	c.message("run a && b > out")
	var frames []string
	for {
		ev := c.next()
		frames = append(frames, string(ev.Raw))
		if ev.Type == "tool_start" && !strings.Contains(string(ev.Raw), `"input":{"directory":"`+typed+`"}`) {
			t.Fatalf("tool_start = %s, want the input as typed", ev.Raw)
		}
		if ev.Type == "message_done" {
			break
		}
	}
	for _, f := range frames {
		if strings.Contains(f, `\u00`) {
			t.Fatalf("event %s is HTML-escaped", f)
		}
	}

	disk, err := os.ReadFile(filepath.Join(ts.dir, "typed.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(disk), `"input":{"directory":"`+typed+`"}`) || strings.Contains(string(disk), `\u00`) {
		t.Fatalf("transcript on disk:\n%s\nwant the tool input as typed, with no \\u00 escapes", disk)
	}
	status, body := ts.do(t, "GET", "/api/sessions/typed", nil, nil)
	if status != 200 || !strings.Contains(string(body), typed) || strings.Contains(string(body), `\u00`) {
		t.Fatalf("GET /api/sessions/typed = %d %s, want the input as typed", status, body)
	}
}
