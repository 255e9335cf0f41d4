package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The real gateway runs bash through its own binary as the sandbox helper:
// no secret in the environment, nothing readable outside the workspace, and
// a gateway killed mid-tool (SIGKILL, as a crash) leaves no tool process
// running, not even a grandchild that left the process group with setsid.
func TestGatewayBashSandbox(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "secret"), []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bash := func(command string) map[string]any {
		return map[string]any{"toolCalls": []map[string]any{{"name": "bash", "input": map[string]string{"command": command}}}}
	}
	script := writeScript(t, []map[string]any{
		bash("env > env.txt; cat " + filepath.Join(home, "secret") + " > secret.txt 2>&1"),
		// The gateway is the parent of bash's parent (the helper).
		bash("gw=$(cut -d' ' -f4 /proc/$PPID/stat); echo $gw > gateway.pid; cat /proc/$gw/environ > gateway-environ.txt 2>&1; grep ^Cap /proc/self/status > caps.txt"),
		{"text": "looked"},
		bash("setsid sleep 300 & echo $! > grandchild.pid; echo $$ > bash.pid; sleep 300"),
		{"text": "never"},
	})
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{
		"MINI_OPENCLAW_SCRIPT":   script,
		"HOME":                   home,
		"ANTHROPIC_API_KEY":      "sk-ant-secret",
		"OPENAI_API_KEY":         "sk-openai-secret",
		"MINICLAW_PASSED":        "passed-by-name",
		"MINI_OPENCLAW_TOOL_ENV": "MINICLAW_PASSED",
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var ready struct{ Sandbox, SandboxWarning string }
	if err := g.getJSON(ctx, "/readyz", &ready); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ready.Sandbox, "workspace (Landlock ABI ") || ready.SandboxWarning != "" {
		t.Errorf("/readyz sandbox %q, warning %q", ready.Sandbox, ready.SandboxWarning)
	}

	c, err := dialSession(ctx, g.addr, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.send(ctx, "look around"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitDone(ctx); err != nil {
		t.Fatal(err)
	}
	env := readFile(t, filepath.Join(ws, "env.txt"))
	for _, s := range []string{"sk-ant-secret", "sk-openai-secret", "MINI_OPENCLAW_"} {
		if strings.Contains(env, s) {
			t.Errorf("bash's environment shows %q:\n%s", s, env)
		}
	}
	if !strings.Contains(env, "MINICLAW_PASSED=passed-by-name\n") {
		t.Errorf("bash's environment lacks the variable named in MINI_OPENCLAW_TOOL_ENV:\n%s", env)
	}
	if got := readFile(t, filepath.Join(ws, "secret.txt")); !strings.Contains(got, "Permission denied") {
		t.Errorf("bash read a file outside the workspace: %q", got)
	}
	// The gateway's environment holds the keys bash's does not: reading it
	// is refused, even to a gateway run as root (as CI and containers do),
	// whose tools hold no capability.
	if got, want := strings.TrimSpace(readFile(t, filepath.Join(ws, "gateway.pid"))), strconv.Itoa(g.cmd.Process.Pid); got != want {
		t.Errorf("bash found the gateway's pid %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(ws, "gateway-environ.txt")); !strings.Contains(got, "Permission denied") || strings.Contains(got, "sk-ant-secret") {
		t.Errorf("bash read the gateway's environment: %q", got)
	}
	if got, want := readFile(t, filepath.Join(ws, "caps.txt")), "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n"; got != want {
		t.Errorf("bash's capabilities:\n%s\nwant\n%s", got, want)
	}

	if err := c.send(ctx, "start something long"); err != nil {
		t.Fatal(err)
	}
	pids := []int{testutil.WaitPidFile(t, filepath.Join(ws, "bash.pid")), testutil.WaitPidFile(t, filepath.Join(ws, "grandchild.pid"))}
	g.kill()
	for _, pid := range pids {
		testutil.WaitGone(t, pid)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
