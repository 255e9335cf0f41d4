package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
		bash(readGatewayEnviron + "; grep ^Cap /proc/self/status > caps.txt"),
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
	checkGatewayEnvironRefused(t, g, ws)
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

// readGatewayEnviron is a bash command that copies the environment of the
// gateway, the parent of bash's parent (the helper), to gateway-environ.txt,
// the gateway's pid to gateway.pid, and bash's uid to bash.uid.
const readGatewayEnviron = "gw=$(cut -d' ' -f4 /proc/$PPID/stat); echo $gw > gateway.pid; id -u > bash.uid; cat /proc/$gw/environ > gateway-environ.txt 2>&1"

// checkGatewayEnvironRefused checks what readGatewayEnviron left in ws: the
// read of g's environment (which holds ANTHROPIC_API_KEY=sk-ant-secret) was
// refused.
func checkGatewayEnvironRefused(t *testing.T, g *gatewayProc, ws string) {
	t.Helper()
	if got, want := strings.TrimSpace(readFile(t, filepath.Join(ws, "gateway.pid"))), strconv.Itoa(g.cmd.Process.Pid); got != want {
		t.Errorf("bash found the gateway's pid %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(ws, "gateway-environ.txt")); !strings.Contains(got, "Permission denied") || strings.Contains(got, "sk-ant-secret") {
		t.Errorf("bash read the gateway's environment: %q", got)
	}
}

// With the sandbox off, bash runs as the gateway's user, unconfined: it can
// do whatever that user can, but the gateway is not dumpable, so a same-user
// process cannot read its environment or memory (its API keys) through
// /proc or ptrace. Root can (CAP_SYS_PTRACE), so when the tests run as
// root the gateway runs as nobody.
func TestGatewayNotDumpable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	uid := os.Getuid()
	var edits []func(*exec.Cmd)
	if uid == 0 {
		uid = 65534
		edits = append(edits, func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		})
		// nobody needs a way to the binary and to its own directory.
		for _, d := range []string{filepath.Dir(binPath), filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkdir := func(name string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ws, home, tmp := mkdir("ws"), mkdir("home"), mkdir("tmp")
	script, err := json.Marshal([]map[string]any{
		{"toolCalls": []map[string]any{{"name": "bash", "input": map[string]string{"command": readGatewayEnviron}}}},
		{"text": "looked"},
	})
	if err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(home, "script.json")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(home, "data"), map[string]string{
		"MINI_OPENCLAW_SCRIPT":  scriptPath,
		"MINI_OPENCLAW_SANDBOX": "off",
		"HOME":                  home,
		"TMPDIR":                tmp,
		"ANTHROPIC_API_KEY":     "sk-ant-secret",
	}), edits...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dialSession(ctx, g.addr, "off")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.send(ctx, "look"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitDone(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(ws, "bash.uid"))); got != strconv.Itoa(uid) {
		t.Fatalf("bash ran as uid %s, want the gateway's %d", got, uid)
	}
	checkGatewayEnvironRefused(t, g, ws)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
