package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestOpenClawCLI runs OpenClaw's own CLI (the openclaw npm package
// 2026.9.6) against a real gateway at /openclaw: `openclaw gateway call
// health` and `chat.history`, `openclaw agent -m` through
// OPENCLAW_GATEWAY_URL, and the TUI (`openclaw tui --message`, on a
// terminal made by script(1)), which must show the reply and then go idle:
// it stays busy when a run's first events come too soon after the ack (see
// firstEventDelay). The CLI is 650 MB of node_modules and is not pinned in
// interop/package.json: the test runs when it is installed there
// (interop/node_modules/openclaw) and skips otherwise.

// ansi matches the TUI's escape sequences, stripped from its screen.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func TestOpenClawCLI(t *testing.T) {
	t.Parallel()
	in := testutil.NeedInterop(t)
	cli := filepath.Join(in.Modules, "openclaw", "openclaw.mjs")
	if _, err := os.Stat(cli); err != nil {
		t.Skipf("OpenClaw's CLI is not installed (%v); `npm install openclaw@2026.9.6` in interop/ runs this test", err)
	}
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skipf("script(1) is needed for the TUI's terminal: %v", err)
	}
	ws, data := t.TempDir(), t.TempDir()
	turns := filepath.Join(t.TempDir(), "script.json")
	// Played in the order the turns start: agent -m first, then the TUI.
	if err := os.WriteFile(turns, []byte(`[{"text":"Hello, OpenClaw CLI."},{"text":"Hello, OpenClaw TUI."}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "gateway", gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_SCRIPT": turns, "MINI_OPENCLAW_TOKEN": "cli-key"}))
	url := "ws://" + g.addr + "/openclaw"
	env := map[string]string{
		// OpenClaw runs `node` again in places: the pinned one (the
		// machine's may be too old for it).
		"PATH":                   filepath.Dir(in.Node) + ":" + os.Getenv("PATH"),
		"OPENCLAW_GATEWAY_URL":   url,
		"OPENCLAW_GATEWAY_TOKEN": "cli-key",
		// OpenClaw turns on Node's compile cache in TMPDIR, which a process
		// of the killed TUI may still be writing when the test removes it.
		"NODE_DISABLE_COMPILE_CACHE": "1",
	}
	openclaw := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, in.Node, append([]string{cli}, args...)...)
		cmd.Env = childEnv(t, env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openclaw %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	if out := openclaw("gateway", "call", "health", "--url", url, "--token", "cli-key"); !strings.Contains(out, `"ok": true`) {
		t.Errorf("openclaw gateway call health printed:\n%s", out)
	}
	if out := openclaw("agent", "-m", "hello from the CLI"); !strings.Contains(out, "Hello, OpenClaw CLI.") {
		t.Errorf("openclaw agent -m printed:\n%s", out)
	}
	hist := openclaw("gateway", "call", "chat.history", "--params", `{"sessionKey":"main"}`, "--url", url, "--token", "cli-key")
	for _, want := range []string{`"hello from the CLI"`, `"Hello, OpenClaw CLI."`, `"sessionKey": "agent:main:main"`} {
		if !strings.Contains(hist, want) {
			t.Errorf("chat.history lacks %s:\n%s", want, hist)
		}
	}
	wantLines(t, filepath.Join(data, "sessions", "main.jsonl"), "user", "hello from the CLI", "assistant", "Hello, OpenClaw CLI.")

	screen := runTUI(t, scriptBin, in.Node, cli, childEnv(t, env), url)
	reply := strings.Index(screen, "Hello, OpenClaw TUI.")
	if reply < 0 || !strings.Contains(screen[reply:], "idle") {
		t.Errorf("the TUI did not show the reply and go idle; its screen ended with:\n%s", tail(screen, 2000))
	}
	wantLines(t, filepath.Join(data, "sessions", "tui.jsonl"), "user", "hello from the TUI", "assistant", "Hello, OpenClaw TUI.")
}

// runTUI runs `openclaw tui --session tui --message …` on a terminal until
// its screen shows the reply followed by "idle", or 2 minutes pass, and
// returns what it printed, colour and cursor escapes removed.
func runTUI(t *testing.T, scriptBin, node, cli string, env []string, url string) string {
	t.Helper()
	line := strings.Join([]string{node, cli, "tui", "--url", url, "--token", "cli-key", "--session", "tui", "--message", "'hello from the TUI'"}, " ")
	cmd := exec.Command(scriptBin, "-qfec", line, "/dev/null")
	cmd.Env = append(env, "TERM=xterm-256color", "COLUMNS=100", "LINES=30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = strings.NewReader("") // script(1) gives the TUI its own terminal
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the TUI: %v", err)
	}
	var mu sync.Mutex
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := out.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.ReplaceAll(ansi.ReplaceAllString(screen.String(), ""), "\r", "\n")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		s := text()
		if i := strings.Index(s, "Hello, OpenClaw TUI."); i >= 0 && strings.Contains(s[i:], "idle") {
			break
		}
		select {
		case <-done:
			deadline = time.Now()
		case <-time.After(200 * time.Millisecond): // polling a screen: there is no event to wait for
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	<-done
	io.Copy(io.Discard, out)
	return text()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
