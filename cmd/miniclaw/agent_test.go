package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentTimeout bounds one `miniclaw agent` run (a -race binary on a loaded
// machine is slow to start).
const agentTimeout = 30 * time.Second

// agentDirs is a workspace and a data dir for `miniclaw agent` runs, and
// their environment (the gateway's, on the scripted provider).
func agentDirs(t *testing.T, extra map[string]string) (ws, data string, vars map[string]string) {
	ws = t.TempDir()
	data = filepath.Join(ws, "data")
	return ws, data, gatewayEnv(ws, data, extra)
}

// agentRun runs `miniclaw agent` with stdin (nil: none) to completion.
func agentRun(t *testing.T, vars map[string]string, stdin io.Reader, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"agent"}, args...)...)
	cmd.Env = childEnv(t, vars)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("miniclaw agent %s: still running after %s (killed)\nstderr:\n%s", strings.Join(args, " "), agentTimeout, stderr.String())
	}
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("miniclaw agent %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("miniclaw agent %s: data race:\n%s", strings.Join(args, " "), stderr.String())
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// wantReply checks a successful run's stdout byte for byte.
func wantReply(t *testing.T, r cliResult, stdout string) {
	t.Helper()
	if r.code != 0 || r.stdout != stdout {
		t.Errorf("exit %d, stdout %q, want 0 and %q\nstderr:\n%s", r.code, r.stdout, stdout, r.stderr)
	}
}

// agentDone is the message_done event --json prints.
type agentDone struct {
	Type       string `json:"type"`
	SessionID  string `json:"sessionId"`
	Content    string `json:"content"`
	StopReason string `json:"stopReason"`
}

func agentJSON(t *testing.T, vars map[string]string, args ...string) agentDone {
	t.Helper()
	r := agentRun(t, vars, nil, append([]string{"--json"}, args...)...)
	var done agentDone
	if r.code != 0 || !strings.HasSuffix(r.stdout, "}\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("--json: exit %d, stdout %q, want 0 and one JSON line\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &done); err != nil || done.Type != "message_done" || done.SessionID == "" {
		t.Fatalf("--json printed %q (%v), want a message_done event with a sessionId", r.stdout, err)
	}
	return done
}

func TestAgentReplyOnStdout(t *testing.T) {
	t.Parallel()
	ws, data, vars := agentDirs(t, nil)
	// The scripted provider was chosen: no notice.
	r := agentRun(t, vars, nil, "-m", "summarise README.md")
	wantReply(t, r, "echo: summarise README.md\n")
	if r.stderr != "" {
		t.Errorf("stderr %q, want nothing", r.stderr)
	}

	// Fallen back to: the notice goes to stderr, stdout is the reply alone.
	r = agentRun(t, gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_PROVIDER": ""}), nil, "-m", "second one")
	wantReply(t, r, "echo: second one\n")
	if !strings.Contains(r.stderr, "scripted provider") {
		t.Errorf("stderr %q, want the scripted-provider notice", r.stderr)
	}

	// Both are new sessions of channel cli, listed with their titles.
	l := runCLI(t, agentTimeout, sessionsEnv(ws, data), "sessions", "list", "--json")
	var metas []struct {
		Title   string `json:"title"`
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal([]byte(l.stdout), &metas); err != nil {
		t.Fatalf("sessions list --json: %v: %q %s", err, l.stdout, l.stderr)
	}
	titles := map[string]string{}
	for _, m := range metas {
		titles[m.Title] = m.Channel
	}
	if len(metas) != 2 || titles["summarise README.md"] != "cli" || titles["second one"] != "cli" {
		t.Errorf("sessions list: %+v, want the two sessions of channel cli", metas)
	}
}

func TestAgentStdin(t *testing.T) {
	t.Parallel()
	_, _, vars := agentDirs(t, nil)
	wantReply(t, agentRun(t, vars, strings.NewReader("from stdin\n")), "echo: from stdin\n")
	diff := "--- a/x\n+++ b/x\n+new line\n"
	wantReply(t, agentRun(t, vars, strings.NewReader(diff), "-m", "review this"), "echo: review this\n\n"+strings.TrimSuffix(diff, "\n")+"\n")

	r := agentRun(t, vars, strings.NewReader(""))
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "no message") {
		t.Errorf("empty stdin: exit %d, stdout %q, stderr %q; want 2, nothing, a no-message error", r.code, r.stdout, r.stderr)
	}
}

func TestAgentJSONAndSession(t *testing.T) {
	t.Parallel()
	_, data, vars := agentDirs(t, nil)
	first := agentJSON(t, vars, "-m", "first turn")
	if first.Content != "echo: first turn" {
		t.Errorf("content %q, want %q", first.Content, "echo: first turn")
	}
	second := agentJSON(t, vars, "--session", first.SessionID, "-m", "second turn")
	// A unique prefix names the session too.
	wantReply(t, agentRun(t, vars, nil, "--session", first.SessionID[:8], "-m", "third turn"), "echo: third turn\n")
	if second.SessionID != first.SessionID {
		t.Errorf("--session %s answered on session %s", first.SessionID, second.SessionID)
	}
	tr, err := readTranscript(filepath.Join(data, "sessions", first.SessionID+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range tr.msgs {
		got = append(got, m.Role+": "+m.Content)
	}
	want := []string{"user: first turn", "assistant: echo: first turn", "user: second turn", "assistant: echo: second turn", "user: third turn", "assistant: echo: third turn"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	r := agentRun(t, vars, nil, "--session", "no-such-session", "-m", "x")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "no-such-session") {
		t.Errorf("unknown session: exit %d, stdout %q, stderr %q; want 1, nothing, the ID named", r.code, r.stdout, r.stderr)
	}
}

func TestAgentToolLines(t *testing.T) {
	t.Parallel()
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{
			{"name": "bash", "input": map[string]string{"command": "echo first-line; echo second-line"}},
			{"name": "read_file", "input": map[string]string{"path": "no-such-file.txt"}},
		}},
		{"text": "all tools ran"},
	})
	tmp := t.TempDir()
	_, _, vars := agentDirs(t, map[string]string{"MINI_OPENCLAW_SCRIPT": script, "TMPDIR": tmp})
	r := agentRun(t, vars, nil, "-m", "run the tools")
	wantReply(t, r, "all tools ran\n")
	if strings.Contains(r.stderr, "bash") {
		t.Errorf("without -v, stderr %q names a tool", r.stderr)
	}
	r = agentRun(t, vars, nil, "-v", "-m", "run the tools")
	wantReply(t, r, "all tools ran\n")
	for _, want := range []string{`⚙ bash {"command":"echo first-line; echo second-line"}`, "✓ bash: first-line…", "⚙ read_file", "✗ read_file: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-v: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// The bash sandbox's temp dir was removed, as the gateway removes its own.
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("TMPDIR holds %v after the runs, want nothing", left)
	}
}

func TestAgentProviderFails(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	_, _, vars := agentDirs(t, map[string]string{"MINI_OPENCLAW_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": closed})
	r := agentRun(t, vars, nil, "-m", "hello")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "miniclaw agent: ") || strings.Count(r.stderr, "connection refused") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, the provider's error once", r.code, r.stdout, r.stderr)
	}
}

func TestAgentHelp(t *testing.T) {
	t.Parallel()
	r := runCLI(t, agentTimeout, nil, "agent", "--help")
	for _, want := range []string{"Usage: miniclaw agent", "-m ", "-session", "-json", "Examples:", "Exit status", "130"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("agent --help: exit %d, stdout lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
	if r := runCLI(t, agentTimeout, nil, "help"); !strings.Contains(r.stdout, "miniclaw agent") {
		t.Errorf("miniclaw help does not list agent:\n%s", r.stdout)
	}
}

// startAgent starts `miniclaw agent` with its stdout read line by line (on
// lines) and its stderr collected; wait reaps it.
type agentProc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *watchBuf
	done   chan struct{}
}

// watchBuf collects a child's stderr and closes seen once it holds want.
type watchBuf struct {
	logBuf
	want string
	seen chan struct{}
}

func (b *watchBuf) Write(p []byte) (int, error) {
	b.logBuf.Write(p)
	if b.want != "" && strings.Contains(b.String(), b.want) {
		b.want = ""
		close(b.seen)
	}
	return len(p), nil
}

func startAgent(t *testing.T, vars map[string]string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{lines: make(chan string, 100), stderr: &watchBuf{logBuf: logBuf{addrCh: make(chan string, 1)}, want: "waiting for another process's turn", seen: make(chan struct{})}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, append([]string{"agent"}, args...)...)
	p.cmd.Env = childEnv(t, vars)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		r := bufio.NewReader(out)
		for {
			s, err := r.ReadString(' ')
			if s != "" {
				p.lines <- s
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			p.wait(t)
		}
	})
	return p
}

// next is the next space-ended word of stdout ("" at its end).
func (p *agentProc) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-p.lines:
		return s
	case <-time.After(agentTimeout):
		t.Fatalf("no output within %s\nstderr:\n%s", agentTimeout, p.stderr.String())
	}
	return ""
}

// wait reaps the process and returns its exit status and all it printed
// on stdout after what next read.
func (p *agentProc) wait(t *testing.T) (int, string) {
	t.Helper()
	var rest strings.Builder
	for s := range p.lines {
		rest.WriteString(s)
	}
	p.cmd.Wait()
	close(p.done)
	if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("miniclaw agent: data race:\n%s", p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode(), rest.String()
}

// Ctrl-C aborts the turn: exit 130, the transcript marks the reply aborted.
func TestAgentCtrlC(t *testing.T) {
	t.Parallel()
	slow := map[string]any{"text": "slow " + strings.Repeat("word ", 200), "chunkDelayMs": 50}
	_, data, vars := agentDirs(t, map[string]string{"MINI_OPENCLAW_SCRIPT": writeScript(t, []map[string]any{slow})})
	p := startAgent(t, vars, "-m", "take your time")
	if w := p.next(t); w != "slow " {
		t.Fatalf("first word %q, want %q", w, "slow ")
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	code, rest := p.wait(t)
	if code != 130 || !strings.Contains(p.stderr.String(), "aborted") {
		t.Errorf("exit %d, stderr %q; want 130 and the abort said", code, p.stderr.String())
	}
	if strings.Count(rest, "word") >= 199 || !strings.HasSuffix(rest, "\n") {
		t.Errorf("stdout after the abort %q: want the rest cut short, ending with a newline", rest)
	}
	ids := sessionFiles(t, filepath.Join(data, "sessions"))
	if len(ids) != 1 {
		t.Fatalf("sessions %v, want one", ids)
	}
	tr, err := readTranscript(filepath.Join(data, "sessions", ids[0]+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.msgs); n != 2 || tr.msgs[1].Status != "aborted" {
		t.Errorf("transcript %+v: want the user message and an aborted reply", tr.msgs)
	}
}

// Beside a gateway on the same data dir, the one-shot waits for the
// gateway's turn of the session (and says so), then runs its own: both
// turns land whole, in order.
func TestAgentBesideGateway(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	// The gateway's turn blocks in a tool until the test writes the FIFO.
	fifo := filepath.Join(ws, "release.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{{"name": "bash", "input": map[string]string{"command": "cat release.fifo"}}}},
		{"text": "gateway reply"},
	})
	g := startGateway(t, "gateway", gatewayEnv(ws, data, map[string]string{"MINI_OPENCLAW_SCRIPT": script}))
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	c, err := dialSession(ctx, g.addr, "shared")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.send(ctx, "to the gateway"); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := c.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "tool_start" {
			break
		}
	}
	waiting := func(p *agentProc) {
		t.Helper()
		select {
		case <-p.stderr.seen:
		case <-ctx.Done():
			t.Fatalf("the agent never said it waits\nstderr:\n%s", p.stderr.String())
		}
	}
	// Ctrl-C while it waits: exit 130, nothing saved.
	quitter := startAgent(t, gatewayEnv(ws, data, nil), "--session", "shared", "-m", "never sent")
	waiting(quitter)
	quitter.cmd.Process.Signal(syscall.SIGINT)
	if code, out := quitter.wait(t); code != 130 || out != "" || !strings.Contains(quitter.stderr.String(), "the message was not saved") {
		t.Errorf("Ctrl-C while waiting: exit %d, stdout %q, stderr %q; want 130, nothing, not saved", code, out, quitter.stderr.String())
	}
	p := startAgent(t, gatewayEnv(ws, data, nil), "--session", "shared", "-m", "to the agent")
	waiting(p)
	if err := os.WriteFile(fifo, []byte("released\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitDone(ctx); err != nil {
		t.Fatal(err)
	}
	code, out := p.wait(t)
	if code != 0 || out != "echo: to the agent\n" {
		t.Errorf("agent: exit %d, stdout %q; want 0 and its reply\nstderr:\n%s", code, out, p.stderr.String())
	}
	tr, err := readTranscript(filepath.Join(data, "sessions", "shared.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range tr.msgs {
		got = append(got, m.Role+": "+m.Content)
	}
	want := []string{"user: to the gateway", "assistant: ", "assistant: gateway reply", "user: to the agent", "assistant: echo: to the agent"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("transcript %q, want %q", got, want)
	}
}
