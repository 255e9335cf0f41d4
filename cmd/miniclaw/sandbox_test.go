package main

import (
	"context"
	"os"
	"path/filepath"
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
