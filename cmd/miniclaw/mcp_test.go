package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// scriptServer writes a shell script that runs pre, then execs
// server-everything, and returns its path.
func scriptServer(t *testing.T, pre string) string {
	t.Helper()
	ev := everythingServer(t)
	script := filepath.Join(t.TempDir(), "server.sh")
	body := fmt.Sprintf("#!/bin/sh\n%s\nexec %q %q\n", pre, ev["command"], ev["args"].([]string)[0])
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// writeProjectMCP writes the workspace's .mcp.json.
func writeProjectMCP(t *testing.T, ws string, servers map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"mcpServers": servers})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, ".mcp.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

var brokenServer = map[string]any{"command": "/nonexistent/mcp-server"}

// mcpDirs is a workspace and a data dir outside it, so bash cannot write
// the data dir's mcp.json and its servers need no approval, and the
// gateway's environment with a trust file of the test's own.
func mcpDirs(t *testing.T, extra map[string]string) (ws, data string, vars map[string]string) {
	ws, data = t.TempDir(), t.TempDir()
	vars = gatewayEnv(ws, data, extra)
	vars["MINI_OPENCLAW_MCP_TRUST_FILE"] = filepath.Join(t.TempDir(), "config", "mcp-trust.json")
	return ws, data, vars
}

// The model calls an MCP tool in a one-shot turn: the transcript on disk
// holds the call and the server's result.
func TestAgentCallsAnMCPTool(t *testing.T) {
	t.Parallel()
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{{"name": "mcp__everything__echo", "input": map[string]string{"message": "from the model"}}}},
		{"text": "echoed"},
	})
	_, data, vars := mcpDirs(t, map[string]string{"MINI_OPENCLAW_SCRIPT": script})
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
	ws, data, vars := mcpDirs(t, nil)
	writeMCPConfig(t, data, map[string]any{
		"everything": everythingServer(t, ws),
		"broken":     brokenServer,
		"off":        map[string]any{"command": "x", "disabled": true},
	})
	// The agent's bash could have written this one: it waits for approval.
	ran := filepath.Join(t.TempDir(), "ran")
	proj := scriptServer(t, fmt.Sprintf("touch %q", ran))
	writeProjectMCP(t, ws, map[string]any{"proj": map[string]any{"command": proj}})
	g := startGateway(t, "gw", vars)
	waitMCPState(t, g, map[string]string{"everything": "ready", "broken": "started", "proj": "untrusted"})
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
	if h.Status != "ready" || len(h.MCP) != 4 {
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
	if _, err := os.Stat(ran); err == nil {
		t.Error("the untrusted workspace server ran")
	}
	if want := fmt.Sprintf(`level=WARN msg="MCP server not started: its file is one the agent's bash can write, and the operator has not approved it (run: miniclaw mcp trust proj)" server=proj file=%s command=%s`, filepath.Join(ws, ".mcp.json"), proj); !strings.Contains(g.stderr.String(), want) {
		t.Errorf("the log lacks %q", want)
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
	ws, data, vars := mcpDirs(t, nil)
	writeMCPConfig(t, data, map[string]any{"everything": everythingServer(t, ws)})
	g := startGateway(t, "gw", vars)
	waitMCPState(t, g, map[string]string{"everything": "ready"})
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
	_, data, vars := mcpDirs(t, nil)
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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mcp", "--help"}, `Run "miniclaw mcp list --help"`},
		{[]string{"mcp", "list", "--help"}, "Flags of list:\n  --json"},
		{[]string{"mcp", "trust", "--help"}, "-all"},
		{[]string{"mcp", "untrust", "--help"}, "-data-dir"},
	} {
		r = runCLI(t, agentTimeout, nil, tc.args...)
		for _, want := range []string{"miniclaw mcp list [--json]", "miniclaw mcp trust [flags] NAME... | --all", "miniclaw mcp untrust", tc.want} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("%v: exit %d, stdout lacks %q:\n%s", tc.args, r.code, want, r.stdout)
			}
		}
	}
	if r = runCLI(t, agentTimeout, nil, "mcp"); r.code != 2 {
		t.Errorf("mcp without a command: exit %d", r.code)
	}
}

// mcpStates is the mcp field of /readyz, by server name.
func mcpStates(ctx context.Context, g *gatewayProc) (map[string]string, error) {
	var h struct {
		Status string
		MCP    []struct{ Name, State string }
	}
	if err := g.getJSON(ctx, "/readyz", &h); err != nil {
		return nil, err
	}
	if h.Status != "ready" {
		return nil, fmt.Errorf("readyz status %q, want ready", h.Status)
	}
	out := map[string]string{}
	for _, s := range h.MCP {
		out[s.Name] = s.State
	}
	return out, nil
}

// waitMCPState polls /readyz until each named server has its state
// ("started": any state but starting).
func waitMCPState(t *testing.T, g *gatewayProc, want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		got, err := mcpStates(ctx, g)
		ok := err == nil
		for name, state := range want {
			ok = ok && (got[name] == state || state == "started" && got[name] != "starting" && got[name] != "")
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("MCP servers never %v: %v, last %v", want, err, got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The gateway listens and is ready while an MCP server is still starting:
// the server is held before it execs until the test opens a FIFO, so the
// listening line, /healthz and /readyz ("starting") come before it can
// possibly be ready; then it becomes ready.
func TestGatewayListensBeforeMCPServersAreReady(t *testing.T) {
	t.Parallel()
	_, data, vars := mcpDirs(t, map[string]string{"MINI_OPENCLAW_MCP_START_TIMEOUT": "10m"})
	gate := filepath.Join(t.TempDir(), "gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	script := scriptServer(t, fmt.Sprintf("cat %q >/dev/null", gate))
	writeMCPConfig(t, data, map[string]any{"slow": map[string]any{"command": script}})
	// A start timeout (in vars) far beyond the test's wait for the
	// listening line.
	g := startGateway(t, "gw", vars)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var health struct{ Status string }
	if err := g.getJSON(ctx, "/healthz", &health); err != nil || health.Status != "ok" {
		t.Fatalf("/healthz while the MCP server starts: %v %+v", err, health)
	}
	if got, err := mcpStates(ctx, g); err != nil || got["slow"] != "starting" {
		t.Fatalf("/readyz while the MCP server starts: %v %v", got, err)
	}
	f, err := os.OpenFile(gate, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitMCPState(t, g, map[string]string{"slow": "ready"})
}

// A server of the workspace's .mcp.json runs once `mcp trust` approved
// its entry, and no longer once the entry is edited or `mcp untrust`ed.
func TestMCPTrust(t *testing.T) {
	t.Parallel()
	ws, data, vars := mcpDirs(t, nil)
	trustFile := vars["MINI_OPENCLAW_MCP_TRUST_FILE"]
	ran := filepath.Join(t.TempDir(), "ran")
	proj := scriptServer(t, fmt.Sprintf("touch %q", ran))
	writeProjectMCP(t, ws, map[string]any{"proj": map[string]any{"command": proj}})
	list := func(want string, runs bool) {
		t.Helper()
		os.Remove(ran)
		r := runCLI(t, agentTimeout, vars, "mcp", "list")
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("mcp list: exit %d, stdout lacks %q:\n%s\nstderr:\n%s", r.code, want, r.stdout, r.stderr)
		}
		if _, err := os.Stat(ran); (err == nil) != runs {
			t.Errorf("mcp list: the server ran: %v, want %v", err == nil, runs)
		}
	}
	list("proj (stdio): untrusted: not approved to run; run: miniclaw mcp trust proj\n", false)

	r := runCLI(t, agentTimeout, vars, "mcp", "trust", "proj")
	if want := "trusted proj (stdio): " + proj + "\n"; r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("mcp trust: exit %d, stdout %q, stderr %q; want 0, %q", r.code, r.stdout, r.stderr, want)
	}
	// The approval is in the trust file, for this workspace; nothing in
	// the data dir.
	var approvals struct {
		Workspaces map[string]map[string]struct{ SHA256, File string }
	}
	if b, err := os.ReadFile(trustFile); err != nil || json.Unmarshal(b, &approvals) != nil || len(approvals.Workspaces[ws]["proj"].SHA256) != 64 || approvals.Workspaces[ws]["proj"].File != filepath.Join(ws, ".mcp.json") {
		t.Errorf("trust file after mcp trust: %v %+v", err, approvals)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("data dir after mcp trust: %v", entries)
	}
	list("proj (stdio): ready\n", true)

	writeProjectMCP(t, ws, map[string]any{"proj": map[string]any{"command": proj, "args": []string{"--more"}}})
	list("proj (stdio): untrusted: not approved to run; run: miniclaw mcp trust proj\n", false)

	if r = runCLI(t, agentTimeout, vars, "mcp", "trust", "--all"); r.code != 0 || !strings.HasPrefix(r.stdout, "trusted proj (stdio): "+proj+" --more\n") {
		t.Errorf("mcp trust --all: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r = runCLI(t, agentTimeout, vars, "mcp", "untrust", "proj"); r.code != 0 || r.stdout != "untrusted proj: it will not start\n" {
		t.Errorf("mcp untrust: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	list("proj (stdio): untrusted", false)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"untrust", "proj"}, `server "proj" is not approved in ` + trustFile},
		{[]string{"trust", "nope"}, `no server "nope" in ` + filepath.Join(ws, ".mcp.json")},
	} {
		if r = runCLI(t, agentTimeout, vars, append([]string{"mcp"}, tc.args...)...); r.code != 1 || r.stderr != "miniclaw mcp: "+tc.want+"\n" {
			t.Errorf("mcp %v: exit %d, stderr %q; want 1, %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// A damaged trust file stops what would read it, naming it.
	if err := os.WriteFile(trustFile, []byte(`{"workspaces": {`), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "miniclaw mcp: " + trustFile + ": invalid JSON: unexpected EOF\n"
	if r = runCLI(t, agentTimeout, vars, "mcp", "list"); r.code != 1 || r.stderr != want {
		t.Errorf("mcp list with a bad trust file: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// With the data dir where bash can write (the default, in the workspace,
// or a MINI_OPENCLAW_SANDBOX_WRITE path), a server of its mcp.json waits
// for approval like the workspace's; out of bash's reach, or with the
// sandbox off, it runs without. A trust file left in the data dir by an
// older miniclaw is not read, and the log says so.
func TestMCPDataDirServersNeedApprovalWhereBashCanWrite(t *testing.T) {
	t.Parallel()
	ws, data, vars := agentDirs(t, nil) // data inside the workspace
	vars["MINI_OPENCLAW_MCP_TRUST_FILE"] = filepath.Join(t.TempDir(), "mcp-trust.json")
	writeMCPConfig(t, data, map[string]any{"broken": brokenServer})
	list := func(vars map[string]string, want string) cliResult {
		t.Helper()
		r := runCLI(t, agentTimeout, vars, "mcp", "list")
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Errorf("mcp list: exit %d, stdout %q, want %q...\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
		}
		return r
	}
	untrusted := "broken (stdio): untrusted: not approved to run; run: miniclaw mcp trust broken\n"
	list(vars, untrusted)

	old := filepath.Join(data, "mcp-trust.json")
	os.WriteFile(old, []byte(`{"servers": {}}`), 0o600)
	r := list(vars, untrusted)
	if want := old + " is no longer read"; !strings.Contains(r.stderr, want) {
		t.Errorf("mcp list stderr lacks %q:\n%s", want, r.stderr)
	}

	if r := runCLI(t, agentTimeout, vars, "mcp", "trust", "broken"); r.code != 0 || r.stdout != "trusted broken (stdio): /nonexistent/mcp-server\n" {
		t.Errorf("mcp trust: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	list(vars, "broken (stdio): failed: ")

	// Out of bash's reach: no approval needed.
	outside := t.TempDir()
	writeMCPConfig(t, outside, map[string]any{"broken": brokenServer})
	list(gatewayEnv(ws, outside, map[string]string{"MINI_OPENCLAW_MCP_TRUST_FILE": filepath.Join(t.TempDir(), "t.json")}), "broken (stdio): failed: ")
	// ...unless bash may write it after all.
	list(gatewayEnv(ws, outside, map[string]string{"MINI_OPENCLAW_MCP_TRUST_FILE": filepath.Join(t.TempDir(), "t.json"), "MINI_OPENCLAW_SANDBOX_WRITE": outside}), untrusted)
	// The sandbox off: the operator's file runs as configured.
	list(gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_MCP_TRUST_FILE": filepath.Join(t.TempDir(), "t.json"), "MINI_OPENCLAW_SANDBOX": "off"}), "broken (stdio): failed: ")
}

// An approval is for one workspace: the same entry in another waits for
// its own.
func TestMCPTrustIsPerWorkspace(t *testing.T) {
	t.Parallel()
	wsA, _, vars := mcpDirs(t, nil)
	wsB := t.TempDir()
	for _, ws := range []string{wsA, wsB} {
		writeProjectMCP(t, ws, map[string]any{"proj": brokenServer})
	}
	if r := runCLI(t, agentTimeout, vars, "mcp", "trust", "proj"); r.code != 0 {
		t.Fatalf("mcp trust: exit %d, stderr %q", r.code, r.stderr)
	}
	for ws, want := range map[string]string{wsA: "proj (stdio): failed: ", wsB: "proj (stdio): untrusted: "} {
		varsWS := maps.Clone(vars)
		varsWS["MINI_OPENCLAW_WORKSPACE"] = ws
		if r := runCLI(t, agentTimeout, varsWS, "mcp", "list"); r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Errorf("mcp list in %s: exit %d, stdout %q, want %q...", ws, r.code, r.stdout, want)
		}
	}
}

// Approvals kept where the agent's bash can write protect nothing: mcp
// trust and the gateway say so.
func TestMCPTrustWarnsOfATrustFileBashCanWrite(t *testing.T) {
	t.Parallel()
	ws, _, vars := mcpDirs(t, nil)
	trustFile := filepath.Join(ws, "home", ".config", "miniclaw", "mcp-trust.json")
	vars["MINI_OPENCLAW_MCP_TRUST_FILE"] = trustFile
	writeProjectMCP(t, ws, map[string]any{"proj": map[string]any{"command": "x"}})
	want := "the MCP trust file " + trustFile + " is where the agent's bash can write"
	r := runCLI(t, agentTimeout, vars, "mcp", "trust", "proj")
	if r.code != 0 || !strings.HasPrefix(r.stderr, "miniclaw mcp: warning: "+want) {
		t.Errorf("mcp trust: exit %d, stderr %q; want 0, %q...", r.code, r.stderr, want)
	}
	if r = runCLI(t, agentTimeout, vars, "mcp", "list"); r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("mcp list: exit %d, stderr %q; want 0, %q...", r.code, r.stderr, want)
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
	_, data, vars := mcpDirs(t, map[string]string{"MINI_OPENCLAW_SCRIPT": script})
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
