package mcp

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// stdioServer runs the test binary as an MCP server on stdio.
func stdioServer(t *testing.T, name string, env ...string) Server {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Server{Name: name, Type: Stdio, Command: exe, Env: append([]string{serverEnv + "=1"}, env...)}
}

func call(t *testing.T, m *Manager, name, input string) (string, error) {
	t.Helper()
	return tool(t, m, name).Run(context.Background(), json.RawMessage(input))
}

func callOK(t *testing.T, m *Manager, name, input string) string {
	t.Helper()
	out, err := call(t, m, name, input)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// A server that dies during a call: the call is an error result, the
// server is restarted, and the next call works.
func TestStdioServerCrashMidCall(t *testing.T) {
	m := start(t, nil, Options{Helper: helper(t), Restart: true}, stdioServer(t, "t"))
	pid, _ := strconv.Atoi(callOK(t, m, "mcp__t__pid", `{}`))
	crash := tool(t, m, "mcp__t__crash")
	out, err := crash.Run(context.Background(), json.RawMessage(`{}`))
	if err == nil || !strings.Contains(err.Error(), `MCP server "t": crash:`) {
		t.Fatalf("a call the server died in: %q, %v; want an error", out, err)
	}
	testutil.WaitGone(t, pid)
	waitState(t, m, "t", StateReady, 1)
	if got := callOK(t, m, "mcp__t__echo", `{"text":"back"}`); got != "back" {
		t.Errorf("after the restart: %q", got)
	}
	if newPid, _ := strconv.Atoi(callOK(t, m, "mcp__t__pid", `{}`)); newPid == pid || newPid == 0 {
		t.Errorf("pid after the restart %d, before %d", newPid, pid)
	}
}

// A slow call of a real child process aborted by its turn.
func TestStdioSlowCallStoppedByTheTurn(t *testing.T) {
	lb := &testutil.Buffer{}
	abortSlowCall(t, start(t, debugLog(lb), Options{Helper: helper(t)}, stdioServer(t, "t")), "t", lb)
}

// Close leaves nothing running: neither the server nor what it started,
// even a process that left its session.
func TestStdioNoOrphansAfterClose(t *testing.T) {
	m := Start([]Server{stdioServer(t, "t")}, Options{Helper: helper(t), Workspace: t.TempDir(), Environ: os.Environ()})
	defer m.Close()
	if err := m.WaitStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st[0].State != StateReady {
		t.Fatalf("status %+v", st)
	}
	pid, _ := strconv.Atoi(callOK(t, m, "mcp__t__pid", `{}`))
	child, _ := strconv.Atoi(callOK(t, m, "mcp__t__spawn", `{}`))
	if pid == 0 || child == 0 {
		t.Fatalf("pid %d, child %d", pid, child)
	}
	m.Close()
	testutil.WaitGone(t, pid)
	testutil.WaitGone(t, child)
	if len(m.Tools()) != 0 {
		t.Errorf("tools of a stopped server: %v", names(m))
	}
}

// A stdio server gets the tools' environment (an allowlist) plus its own
// env: not the gateway's secrets.
func TestStdioEnvironmentIsFiltered(t *testing.T) {
	environ := []string{"PATH=" + os.Getenv("PATH"), "ANTHROPIC_API_KEY=sk-secret", "MINI_OPENCLAW_TOKEN=tok", "PASSED=yes", "LANG=C.UTF-8"}
	m := start(t, nil, Options{Helper: helper(t), Environ: environ, PassEnv: []string{"PASSED"}}, stdioServer(t, "t", "OWN=mine"))
	env := "\n" + callOK(t, m, "mcp__t__env", `{}`) + "\n"
	for _, want := range []string{"\nPASSED=yes\n", "\nOWN=mine\n", "\nLANG=C.UTF-8\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("the server's environment lacks %q:%s", want, env)
		}
	}
	for _, secret := range []string{"sk-secret", "MINI_OPENCLAW_TOKEN"} {
		if strings.Contains(env, secret) {
			t.Errorf("the server's environment holds %q:%s", secret, env)
		}
	}
}

// A server that cannot start is failed with the reason, and the others
// start all the same; a disabled one is not started.
func TestFailingServerDoesNotStopTheOthers(t *testing.T) {
	missing := Server{Name: "missing", Type: Stdio, Command: "/nonexistent/mcp-server"}
	off := stdioServer(t, "off")
	off.Status = StateDisabled
	m := start(t, nil, Options{Helper: helper(t)}, missing, stdioServer(t, "good"), off)
	got := map[string]Status{}
	for _, s := range m.Status() {
		got[s.Name] = s
	}
	if s := got["good"]; s.State != StateReady || s.Tools == 0 {
		t.Errorf("good: %+v", s)
	}
	if s := got["missing"]; s.State != StateFailed || !strings.Contains(s.LastError, "/nonexistent/mcp-server") {
		t.Errorf("missing: %+v", s)
	}
	if s := got["off"]; s.State != StateDisabled {
		t.Errorf("off: %+v", s)
	}
	callOK(t, m, "mcp__good__echo", `{"text":"x"}`)
}

// A server that never answers initialize fails at the start timeout, and
// is killed.
func TestStartTimeout(t *testing.T) {
	mute := Server{Name: "mute", Type: Stdio, Command: "sleep", Args: []string{"60"}}
	m := start(t, nil, Options{Helper: helper(t), StartTimeout: 300 * time.Millisecond}, mute)
	if s := m.Status()[0]; s.State != StateFailed || s.LastError != "start: no answer within 300ms (MINI_OPENCLAW_MCP_START_TIMEOUT)" {
		t.Errorf("mute: %+v", s)
	}
}
