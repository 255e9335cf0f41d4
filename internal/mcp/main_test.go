package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/miniclaw/miniclaw/internal/sandbox"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// serverEnv makes the test binary an MCP server on stdio (testServer), so
// the stdio tests run a real child process.
const serverEnv = "MINICLAW_MCP_TEST_SERVER"

func TestMain(m *testing.M) {
	sandbox.RunHelperIfAsked()
	if os.Getenv(serverEnv) == "1" {
		// syscall.Exit: a -race build's os.Exit sleeps a second first.
		srv := testServer(func(*sdk.ServerSession) { syscall.Exit(3) })
		if err := srv.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			syscall.Exit(1)
		}
		syscall.Exit(0)
	}
	os.Exit(m.Run())
}

// oddSchema is a schema with what converters like to lose: $defs and a
// recursive $ref, deep nesting, a top-level keyword besides properties.
const oddSchema = `{"type":"object","$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"properties":{"tree":{"$ref":"#/$defs/node"},"deep":{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"object","properties":{"c":{"type":"string","enum":["x","y"]}}}}}}}},"additionalProperties":false}`

func text(s string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
}

// testServer is an MCP server built with the same SDK. crash is what its
// crash tool does: exit the process (stdio) or drop the session (memory).
func testServer(crash func(*sdk.ServerSession)) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	add := func(name, schema string, readOnly bool, h func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult) {
		t := &sdk.Tool{Name: name, Description: "the " + name + " tool\nsecond line", InputSchema: json.RawMessage(schema)}
		if readOnly {
			t.Annotations = &sdk.ToolAnnotations{ReadOnlyHint: true}
		}
		s.AddTool(t, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return h(ctx, req), nil
		})
	}
	obj := `{"type":"object"}`
	add("echo", `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`, true, func(_ context.Context, req *sdk.CallToolRequest) *sdk.CallToolResult {
		var in struct{ Text string }
		json.Unmarshal(req.Params.Arguments, &in)
		return text(in.Text)
	})
	add("odd", oddSchema, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult { return text("ok") })
	add("none", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult { return text("ok") })
	add("pid", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult { return text(fmt.Sprint(os.Getpid())) })
	add("env", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return text(strings.Join(os.Environ(), "\n"))
	})
	add("spawn", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		// A grandchild that leaves the server's session: only the
		// helper's subreaper finds it.
		cmd := exec.Command("sleep", "600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}}}
		}
		return text(fmt.Sprint(cmd.Process.Pid))
	})
	add("crash", obj, false, func(_ context.Context, req *sdk.CallToolRequest) *sdk.CallToolResult {
		crash(req.Session)
		return text("still here")
	})
	add("slow", obj, false, func(ctx context.Context, req *sdk.CallToolRequest) *sdk.CallToolResult {
		req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1, Total: 2, Message: "halfway"})
		select {
		case <-ctx.Done():
			return text("cancelled")
		case <-time.After(time.Minute):
			return text("finished")
		}
	})
	add("fail", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "it broke"}}}
	})
	add("rich", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{
			&sdk.TextContent{Text: "look:"},
			&sdk.ImageContent{MIMEType: "image/png", Data: make([]byte, 12345)},
			&sdk.AudioContent{MIMEType: "audio/wav", Data: make([]byte, 10)},
			&sdk.ResourceLink{URI: "file:///a.txt", Name: "a.txt", MIMEType: "text/plain"},
			&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://note", MIMEType: "text/plain", Text: "the note"}},
			&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://blob", Blob: []byte{1, 2, 3}}},
		}}
	})
	add("structured", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		return &sdk.CallToolResult{Content: []sdk.Content{}, StructuredContent: map[string]any{"sum": 3}}
	})
	add("grow", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult {
		add("late", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult { return text("late") })
		return text("grown")
	})
	add("with.dots", obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult { return text("dots") })
	add(strings.Repeat("x", 60), obj, false, func(context.Context, *sdk.CallToolRequest) *sdk.CallToolResult { return text("long") })
	return s
}

// inMemory connects every start of a server to a new testServer in
// memory; its crash tool drops the session.
func inMemory(Server) (sdk.Transport, error) {
	st, ct := sdk.NewInMemoryTransports()
	srv := testServer(func(ss *sdk.ServerSession) { go ss.Close() })
	if _, err := srv.Connect(context.Background(), st, nil); err != nil {
		return nil, err
	}
	return ct, nil
}

// start starts the servers with test options (fast restarts, a log in
// the test's output), stopped at the end of the test.
func start(t *testing.T, log *slog.Logger, opts Options, servers ...Server) *Manager {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts.Log = log
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Workspace == "" {
		opts.Workspace = t.TempDir()
	}
	m := Start(servers, opts)
	t.Cleanup(m.Close)
	if err := m.WaitStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// helper is a sandbox of mode off: the process-tree care of bash without
// its confinement, as miniclaw runs stdio servers.
func helper(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.New(sandbox.Config{Mode: sandbox.Off, Workspace: t.TempDir(), TempDir: t.TempDir(), Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// tool finds an agent tool by name.
func tool(t *testing.T, m *Manager, name string) Tool {
	t.Helper()
	for _, tl := range m.Tools() {
		if tl.Spec().Name == name {
			return tl.(Tool)
		}
	}
	t.Fatalf("no tool %s among %v", name, names(m))
	return Tool{}
}

func names(m *Manager) []string {
	var out []string
	for _, tl := range m.Tools() {
		out = append(out, tl.Spec().Name)
	}
	return out
}

// waitState waits for a server's state after at least restarts restarts.
func waitState(t *testing.T, m *Manager, name, state string, restarts int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := m.waitFor(ctx, func() bool {
		for _, s := range m.servers {
			if s.cfg.Name == name {
				return s.state == state && s.restarts >= restarts
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("server %s never %s: %v; status %+v", name, state, err, m.Status())
	}
}

// debugLog logs to lb at debug level (progress notifications).
func debugLog(lb *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
