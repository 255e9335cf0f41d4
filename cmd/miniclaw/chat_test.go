package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The `miniclaw chat` tests run the real binary against a real gateway
// process: on a pseudo-terminal (raw mode, line editing, Ctrl-C as a key)
// and with a pipe as standard input.

// chatWait bounds every wait for chat output.
const chatWait = 15 * time.Second

// ptyChat is `miniclaw chat` running on a pseudo-terminal.
type ptyChat struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File // the terminal's master side: what the user types and sees
	out  *testutil.Buffer
	mark int           // expect looks for output after this offset of screen()
	done chan struct{} // closed once the process has been waited for
}

// ptyWidth is the pseudo-terminal's width.
const ptyWidth = 250

// startChatPTY runs `miniclaw chat --url http://addr args...` on a new
// pseudo-terminal, wide enough that no test line wraps.
func startChatPTY(t *testing.T, addr string, args ...string) *ptyChat {
	t.Helper()
	c := &ptyChat{t: t, out: &testutil.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(binPath, append([]string{"chat", "--url", "http://" + addr}, args...)...)
	c.cmd.Env = childEnv(t, nil)
	tty, err := pty.StartWithSize(c.cmd, &pty.Winsize{Rows: 50, Cols: ptyWidth})
	if err != nil {
		t.Fatalf("start miniclaw chat on a pty: %v", err)
	}
	c.tty = tty
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(c.out, tty) // ends with EIO once the child has exited
	}()
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		tty.Close()
		<-copied
		if strings.Contains(c.out.String(), "WARNING: DATA RACE") {
			t.Errorf("miniclaw chat reported a data race:\n%s", c.out.String())
		}
		if t.Failed() {
			t.Logf("miniclaw chat screen:\n%s", c.screen())
		}
	})
	return c
}

// screen is what the terminal shows, its rows one per line: the client
// moves the cursor back into a reply's last line to write the next words.
func (c *ptyChat) screen() string {
	return strings.Join(testutil.Replay(c.out.String(), ptyWidth), "\n")
}

// expect waits until re matches the output after the previous match, and
// returns the submatches.
func (c *ptyChat) expect(re string) []string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(chatWait)
	for {
		s := c.screen()
		if c.mark <= len(s) {
			if loc := rx.FindStringSubmatchIndex(s[c.mark:]); loc != nil {
				var subs []string
				for i := 0; i < len(loc); i += 2 {
					if loc[i] < 0 {
						subs = append(subs, "")
						continue
					}
					subs = append(subs, s[c.mark+loc[i]:c.mark+loc[i+1]])
				}
				c.mark += loc[1]
				return subs
			}
		}
		select {
		case <-c.done:
			c.t.Fatalf("miniclaw chat exited (%v) before printing %q", c.cmd.ProcessState, re)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("miniclaw chat did not print %q within %s", re, chatWait)
		}
	}
}

// typeKeys writes to the terminal as a user typing.
func (c *ptyChat) typeKeys(s string) {
	c.t.Helper()
	if _, err := c.tty.Write([]byte(s)); err != nil {
		c.t.Fatalf("type %q: %v", s, err)
	}
}

// exitCode waits for the process to end.
func (c *ptyChat) exitCode() int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(chatWait):
		c.t.Fatalf("miniclaw chat still running %s after it was told to quit", chatWait)
		return -1
	}
}

// connectedRE matches the ID and state the client prints on connecting.
var connectedRE = `([A-Za-z0-9._-]+) \((new session|resumed)\)`

// A message streams its echo; /new opens another session; /sessions lists
// both; /switch goes back; Ctrl-C with nothing running quits with status 0.
func TestChatTerminal(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), nil))
	c := startChatPTY(t, g.addr)
	first := c.expect(`Connected to http://` + regexp.QuoteMeta(g.addr) + `: session ` + connectedRE)
	if first[2] != "new session" {
		t.Errorf("first connection to an empty gateway: %q, want a new session", first[2])
	}
	c.typeKeys("hello world\r")
	c.expect(`echo: hello world\n`)

	c.typeKeys("/new\r")
	second := c.expect(`Session ` + connectedRE)
	if second[1] == first[1] || second[2] != "new session" {
		t.Errorf("/new connected to %s (%s); want a new session other than %s", second[1], second[2], first[1])
	}
	c.typeKeys("/sessions\r")
	c.expect(`\* ` + regexp.QuoteMeta(second[1]) + ` `)
	c.mark = 0
	c.expect(regexp.QuoteMeta(first[1]) + `\s+cli\s+2\s+\S.*hello world`)

	c.typeKeys("/switch " + first[1] + "\r")
	if back := c.expect(`Session ` + connectedRE); back[1] != first[1] || back[2] != "resumed" {
		t.Errorf("/switch %s: connected to %s (%s), want it resumed", first[1], back[1], back[2])
	}
	c.typeKeys("\x03")
	if code := c.exitCode(); code != 0 {
		t.Errorf("Ctrl-C with nothing running: exit %d, want 0", code)
	}
}

// Tool calls show as one line each when they start and when they end, with
// ✗ for a tool error.
func TestChatTerminalToolEvents(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{
			{"name": "bash", "input": map[string]string{"command": "echo first-line; echo second-line"}},
			{"name": "read_file", "input": map[string]string{"path": "no-such-file.txt"}},
		}},
		{"text": "all tools ran"},
	})
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_SCRIPT": script}))
	c := startChatPTY(t, g.addr, "--session", "tools-1")
	c.expect(`session tools-1 \(new session\)`)
	c.typeKeys("use the tools\r")
	c.expect(`⚙ bash \{"command":"echo first-line; echo second-line"\}\n`)
	c.expect(`\[1\] ✓ bash: first-line… \(2 lines\)\n`)
	c.expect(`⚙ read_file \{"path":"no-such-file.txt"\}\n`)
	c.expect(`✗ read_file: \S`)
	c.expect(`all tools ran\n`)
	c.typeKeys("/quit\r")
	if code := c.exitCode(); code != 0 {
		t.Errorf("/quit: exit %d, want 0", code)
	}
}

// With --full every tool call shows its whole input and output, in pipe
// mode on stderr with the other tool lines.
func TestChatFullToolOutput(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	script := writeScript(t, []map[string]any{
		{"toolCalls": []map[string]any{{"name": "bash", "input": map[string]string{"command": "echo first-line; echo second-line"}}}},
		{"text": "ran it"},
	})
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_SCRIPT": script}))
	r := runChatPiped(t, "go\n", "--url", g.addr, "--full")
	want := "[1] ⚙ bash\n{\n  \"command\": \"echo first-line; echo second-line\"\n}\n[1] ✓ bash:\nfirst-line\nsecond-line\n"
	if r.code != 0 || r.stdout != "ran it\n" || !strings.Contains(r.stderr, want) {
		t.Errorf("chat --full: exit %d\nstdout: %q\nstderr:\n%s\nwant on stderr:\n%s", r.code, r.stdout, r.stderr, want)
	}
}

// Ctrl-C aborts a slow reply: the client shows the aborted error and takes
// the next message; a second Ctrl-C within 2 s quits with status 0.
func TestChatTerminalCtrlC(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	slow := map[string]any{"text": "slow " + strings.Repeat("word ", 200), "chunkDelayMs": 100}
	script := writeScript(t, []map[string]any{slow, {"text": "quick reply after the abort"}})
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_SCRIPT": script}))
	c := startChatPTY(t, g.addr, "--session", "slow-1")
	c.expect(`session slow-1 \(new session\)`)

	c.typeKeys("take your time\r")
	c.expect(`slow word `)
	c.typeKeys("\x03")
	c.expect(`error \[aborted\]: `)
	c.expect(`(?m)^>$`) // the prompt is back (the screen has no trailing blanks)

	c.typeKeys("are you there?\r")
	c.expect(`quick reply after the abort\n`)

	c.typeKeys("once more\r") // the script cycles: slow again
	c.expect(`slow word `)
	c.typeKeys("\x03")
	c.expect(`aborting`)
	c.typeKeys("\x03")
	if code := c.exitCode(); code != 0 {
		t.Errorf("second Ctrl-C: exit %d, want 0", code)
	}
	tr, err := readTranscript(filepath.Join(ws, "data", "sessions", "slow-1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.msgs) < 4 || tr.msgs[1].Status != "aborted" {
		t.Errorf("transcript: %+v; want the first reply persisted as aborted", tr.msgs)
	}
}

// With a pipe as standard input each line is a message answered before the
// next is read; the command ends at EOF with status 0, or 1 when a message
// was answered with an error.
func TestChatPiped(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), nil))
	r := runChatPiped(t, "one\n\ntwo words\n/sessions\nthree", "--url", "ws://"+g.addr+"/ws", "--session", "piped-1")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// stdout carries the replies (and the table /sessions asked for) alone.
	if !strings.HasPrefix(r.stdout, "echo: one\necho: two words\n") || !strings.HasSuffix(r.stdout, "\necho: three\n") {
		t.Errorf("stdout is not the replies alone:\n%s", r.stdout)
	}
	for _, note := range []string{"session piped-1 (new session)", "The gateway runs on the offline scripted provider: no model is called.\n"} {
		if !strings.Contains(r.stderr, note) {
			t.Errorf("stderr lacks %q:\n%s", note, r.stderr)
		}
	}
	want := []string{"echo: one\n", "echo: two words\n", "* piped-1", "echo: three\n"}
	rest := r.stdout
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("stdout lacks %q (in order):\n%s", w, r.stdout)
		}
		rest = rest[i+len(w):]
	}
	tr, err := readTranscript(filepath.Join(ws, "data", "sessions", "piped-1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.msgs) != 6 {
		t.Errorf("transcript has %d lines, want 6 (three turns)", len(tr.msgs))
	}
}

func TestChatErrors(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_TOKEN": "s3cret"}))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad session ID", []string{"--url", g.addr, "--session", "../etc"}, 2, "--session"},
		{"stray argument", []string{"--url", g.addr, "extra"}, 2, "unexpected argument"},
		{"bad flag", []string{"--nope"}, 2, "nope"},
		{"no token", []string{"--url", g.addr}, 1, "token"},
		{"no gateway", []string{"--url", "http://127.0.0.1:1"}, 1, "cannot connect"},
		{"bad scheme", []string{"--url", "ftp://" + g.addr}, 1, "scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runChatPiped(t, "hello\n", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d naming %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
	r := runChatPiped(t, "hello\n", "--url", g.addr, "--token", "s3cret")
	if r.code != 0 || !strings.Contains(r.stdout, "echo: hello") {
		t.Errorf("with the token: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, cliTimeout, nil, "chat", "--help"); r.code != 0 || !strings.Contains(r.stderr, "-session") {
		t.Errorf("chat --help: exit %d, stderr %q", r.code, r.stderr)
	}
}

// runChatPiped runs `miniclaw chat args...` with input as its standard input.
func runChatPiped(t *testing.T, input string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chatWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"chat"}, args...)...)
	cmd.Env = childEnv(t, nil)
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("miniclaw chat %v: still running after %s\nstdout:\n%s\nstderr:\n%s", args, chatWait, stdout.String(), stderr.String())
	}
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}
