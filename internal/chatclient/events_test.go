package chatclient

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// downloadTool reports two steps, then waits until the test lets it end.
type downloadTool struct{ done chan struct{} }

func (downloadTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "download", InputSchema: json.RawMessage(`{"type":"object"}`)}
}
func (downloadTool) ReadOnly() bool { return false }
func (d downloadTool) Run(ctx context.Context, _ json.RawMessage) (string, error) {
	report := tools.ProgressReporter(ctx)
	report(tools.Progress{Progress: 1, Total: 10, Message: "Starting"})
	report(tools.Progress{Progress: 3, Total: 10, Message: "Downloading \x1b[31m"})
	select {
	case <-d.done:
		return "downloaded", nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// On a terminal a running tool's progress is one line below its start,
// rewritten in place and gone once its result shows; a message another
// client sends shows as "› text", the sender's own does not.
func TestTerminalShowsProgressAndOthersMessages(t *testing.T) {
	t.Parallel()
	script, _ := json.Marshal([]scripted.Turn{
		{ToolCalls: []scripted.ToolCall{{Name: "download", Input: json.RawMessage(`{}`)}}},
		{Text: "Fetched."},
		{Text: "Hi there."},
	})
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := scripted.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dl := downloadTool{done: make(chan struct{})}
	// Each reading of the clock is a second later: no progress report is
	// dropped by the rate limit.
	var secs atomic.Int64
	now := func() time.Time { return time.Unix(secs.Add(1), 0) }
	rt := &agent.Runtime{Provider: p, Model: "test", Workspace: t.TempDir(), Tools: tools.NewSet(dl), Now: now}
	g := startGatewayRuntime(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", rt)

	c := startPTY(t, Options{URL: g.addr, SessionID: "shared"}, 100)
	c.waitScreen("session shared")
	c.typeKeys("fetch it\r")
	c.waitScreen(`[1] … download 3/10 Downloading \x1b[31m`)
	if rows := strings.Join(c.screen(), "\n"); strings.Contains(rows, "Starting") {
		t.Errorf("the first progress line was not rewritten:\n%s", rows)
	}
	close(dl.done)
	c.waitScreen("Fetched.")
	if rows := strings.Join(c.screen(), "\n"); strings.Contains(rows, "… download") || !strings.Contains(rows, "[1] ✓ download: downloaded") {
		t.Errorf("the progress line is not replaced by the result:\n%s", rows)
	}

	var out, errOut strings.Builder
	if err := Run(context.Background(), Options{URL: g.addr, SessionID: "shared", In: strings.NewReader("hello from a pipe\n"), Out: &out, Stderr: &errOut}); err != nil {
		t.Fatalf("Run: %v\n%s", err, errOut.String())
	}
	c.waitScreen("› hello from a pipe")
	c.waitScreen("Hi there.")
	if strings.Contains(errOut.String()+out.String(), "›") {
		t.Errorf("the sender was shown its own message:\nstdout %q\nstderr %q", out.String(), errOut.String())
	}
	c.quit()
}
