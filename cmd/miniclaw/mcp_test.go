package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// writeMCPConfig writes the data dir's mcp.json.
func writeMCPConfig(t *testing.T, data string, servers map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"mcpServers": servers})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "mcp.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// everythingServer is server-everything's entry in mcp.json, run with the
// pinned Node.
func everythingServer(t *testing.T, mark ...string) map[string]any {
	in := testutil.NeedInterop(t)
	s := map[string]any{"command": in.Node, "args": []string{filepath.Join(in.Modules, "@modelcontextprotocol", "server-everything", "dist", "index.js")}}
	if len(mark) > 0 {
		s["env"] = map[string]string{"MINICLAW_TEST_MARK": mark[0]}
	}
	return s
}

var brokenServer = map[string]any{"command": "/nonexistent/mcp-server"}

// The model calls an MCP tool in a one-shot turn: the transcript on disk
// holds the call and the server's result.
func TestAgentCallsAnMCPTool(t *testing.T) {
	t.Parallel()
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{{"name": "mcp__everything__echo", "input": map[string]string{"message": "from the model"}}}},
		{"text": "echoed"},
	})
	_, data, vars := agentDirs(t, map[string]string{"MINI_OPENCLAW_SCRIPT": script})
	writeMCPConfig(t, data, map[string]any{"everything": everythingServer(t)})
	r := agentRun(t, vars, nil, "-v", "-m", "echo something")
	wantReply(t, r, "echoed\n")
	files, _ := filepath.Glob(filepath.Join(data, "sessions", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("transcripts %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m core.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		for _, c := range m.ToolCalls {
			found = c.Name == "mcp__everything__echo" && string(c.Input) == `{"message":"from the model"}` && c.Output == "Echo: from the model" && !c.IsError
		}
	}
	if !found {
		t.Errorf("the transcript lacks the MCP call and its result:\n%s\nstderr:\n%s", b, r.stderr)
	}
}

// /readyz shows each server's state; a failing one leaves the gateway
// ready.
func TestGatewayReadyzShowsMCPServers(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	writeMCPConfig(t, data, map[string]any{
		"everything": everythingServer(t, ws),
		"broken":     brokenServer,
		"off":        map[string]any{"command": "x", "disabled": true},
	})
	g := startGateway(t, "gw", gatewayEnv(ws, data, nil))
	var h struct {
		Status string
		MCP    []struct {
			Name, Transport, State, LastError string
			Tools                             int
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.getJSON(ctx, "/readyz", &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "ready" || len(h.MCP) != 3 {
		t.Fatalf("readyz %+v", h)
	}
	byName := map[string]int{}
	for i, s := range h.MCP {
		byName[s.Name] = i
	}
	if s := h.MCP[byName["everything"]]; s.State != "ready" || s.Tools < 5 || s.Transport != "stdio" {
		t.Errorf("everything: %+v", s)
	}
	if s := h.MCP[byName["broken"]]; (s.State != "failed" && s.State != "restarting") || !strings.Contains(s.LastError, "/nonexistent/mcp-server") {
		t.Errorf("broken: %+v", s)
	}
	if s := h.MCP[byName["off"]]; s.State != "disabled" {
		t.Errorf("off: %+v", s)
	}
	// SIGTERM stops the server and everything under it.
	pids := markedProcesses(t, ws)
	if len(pids) == 0 {
		t.Fatal("no process of the MCP server found")
	}
	if code, _ := g.terminate(20 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, pid := range pids {
		testutil.WaitGone(t, pid)
	}
}

// A gateway killed by SIGKILL leaves no MCP server running.
func TestGatewayKilledLeavesNoMCPServer(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	writeMCPConfig(t, data, map[string]any{"everything": everythingServer(t, ws)})
	g := startGateway(t, "gw", gatewayEnv(ws, data, nil))
	pids := markedProcesses(t, ws)
	if len(pids) < 2 {
		t.Fatalf("processes of the MCP server: %v, want the helper and node", pids)
	}
	g.kill()
	for _, pid := range pids {
		testutil.WaitGone(t, pid)
	}
}

// markedProcesses finds the processes whose environment holds
// MINICLAW_TEST_MARK=mark (everythingServer's env): an MCP server and
// the helper that runs it.
func markedProcesses(t *testing.T, mark string) []int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if kv == "MINICLAW_TEST_MARK="+mark {
				pid, _ := strconv.Atoi(filepath.Base(d))
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func TestMCPList(t *testing.T) {
	t.Parallel()
	_, data, vars := agentDirs(t, nil)
	writeMCPConfig(t, data, map[string]any{"everything": everythingServer(t), "broken": brokenServer, "off": map[string]any{"command": "x", "disabled": true}})
	r := runCLI(t, agentTimeout, vars, "mcp", "list")
	for _, want := range []string{
		"broken (stdio): failed: start: ",
		"everything (stdio): ready\n",
		"  mcp__everything__echo  Echoes back the input string\n",
		"off (stdio): disabled\n",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("mcp list: exit %d, stdout lacks %q:\n%s\nstderr:\n%s", r.code, want, r.stdout, r.stderr)
		}
	}
	r = runCLI(t, agentTimeout, vars, "mcp", "list", "--json")
	var list []struct {
		Name, State string
		ToolList    []struct{ Name, Description string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 || len(list) != 3 || list[1].Name != "everything" || len(list[1].ToolList) == 0 {
		t.Errorf("mcp list --json: exit %d, %v:\n%s", r.code, err, r.stdout)
	}
}

func TestMCPListConfigErrorAndHelp(t *testing.T) {
	t.Parallel()
	_, data, vars := agentDirs(t, nil)
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "mcp.json"), []byte(`{"mcpServers": {"a": {"type": "sse", "url": "http://x"}}}`), 0o600)
	r := runCLI(t, agentTimeout, vars, "mcp", "list")
	want := "miniclaw mcp: " + filepath.Join(data, "mcp.json") + `: server "a": type: "sse" is not supported (want "stdio" or "http")` + "\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	r = runCLI(t, agentTimeout, vars, "agent", "-m", "hi")
	if r.code != 1 || !strings.Contains(r.stderr, `server "a": type: "sse" is not supported`) {
		t.Errorf("agent with a bad mcp.json: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"mcp", "--help"}, {"mcp", "list", "--help"}} {
		r = runCLI(t, agentTimeout, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: miniclaw mcp list") || !strings.Contains(r.stdout, "--json") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	if r = runCLI(t, agentTimeout, nil, "mcp"); r.code != 2 {
		t.Errorf("mcp without a command: exit %d", r.code)
	}
}

// An MCP server's progress notifications show on stderr with -v, between
// the call's start and its result, and never on stdout.
func TestAgentShowsMCPProgress(t *testing.T) {
	t.Parallel()
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{{"name": "mcp__everything__trigger-long-running-operation", "input": map[string]any{"duration": 0.4, "steps": 2}}}},
		{"text": "done"},
	})
	_, data, vars := agentDirs(t, map[string]string{"MINI_OPENCLAW_SCRIPT": script})
	writeMCPConfig(t, data, map[string]any{"everything": everythingServer(t)})
	r := agentRun(t, vars, nil, "-v", "-m", "run it")
	wantReply(t, r, "done\n")
	start := strings.Index(r.stderr, "⚙ mcp__everything__trigger-long-running-operation")
	progress := strings.Index(r.stderr, "… mcp__everything__trigger-long-running-operation 1/2")
	done := strings.Index(r.stderr, "✓ mcp__everything__trigger-long-running-operation:")
	if start < 0 || progress < start || done < progress {
		t.Errorf("stderr lacks start, progress 1/2 and result in that order:\n%s", r.stderr)
	}
}
