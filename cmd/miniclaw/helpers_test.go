package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// This file is the harness of the process-level tests: it runs the real
// miniclaw binary built by TestMain, talks to it over HTTP and WebSocket,
// and reads the transcripts it leaves on disk.

// startTimeout bounds how long a gateway may take to print its listening
// line (a -race binary on a loaded machine is slow to start).
const startTimeout = 15 * time.Second

// childEnv is a minimal environment for a child process: nothing from the
// test's own environment leaks in (no ANTHROPIC_API_KEY, no MINI_OPENCLAW_*)
// except PATH, plus the given variables.
func childEnv(t *testing.T, vars map[string]string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		// The gateway's tools temp dir goes here: a SIGKILLed gateway leaves
		// it behind, and the test removes it.
		"TMPDIR=" + t.TempDir(),
		// A -race binary otherwise sleeps 1s at exit; races are still reported.
		"GORACE=atexit_sleep_ms=0",
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// cliResult is what a one-shot command printed and how it ended.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary to completion, killing it after timeout.
func runCLI(t *testing.T, timeout time.Duration, vars map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = childEnv(t, vars)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("miniclaw %s: still running after %s (killed)\nstderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("miniclaw %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

var listenRE = regexp.MustCompile(`msg="miniclaw gateway listening" url=http://(127\.0\.0\.1:\d+)`)

// logBuf collects a child's stderr and reports the listening address once.
type logBuf struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	found  bool
	addrCh chan string // receives the listening address, once
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if !b.found {
		if m := listenRE.FindSubmatch(b.buf.Bytes()); m != nil {
			b.found = true
			b.addrCh <- string(m[1])
		}
	}
	return len(p), nil
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gatewayProc is one running `miniclaw gateway`.
type gatewayProc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr *logBuf
	addr   string        // 127.0.0.1:port, parsed from the listening log line
	done   chan struct{} // closed once the process has been waited for
}

// gatewayEnv is the usual environment of a test gateway on the given data
// directory: port 0, the scripted provider, the workspace and data dir set.
func gatewayEnv(workspace, dataDir string, extra map[string]string) map[string]string {
	vars := map[string]string{
		"MINI_OPENCLAW_PORT":      "0",
		"MINI_OPENCLAW_WORKSPACE": workspace,
		"MINI_OPENCLAW_DATA_DIR":  dataDir,
		"MINI_OPENCLAW_PROVIDER":  "scripted",
		// The largest window: these tests count transcript lines, which
		// a compaction's summary line would change (compaction has its
		// own tests in internal/gateway and internal/agent).
		"MINI_OPENCLAW_CONTEXT_WINDOW": "10000000",
	}
	for k, v := range extra {
		if v == "" {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	return vars
}

// startGateway runs `miniclaw gateway` with exactly the given variables and
// waits for its listening line. The process is killed in t.Cleanup if it is
// still running, and its log is checked for data races (the binary is built
// with -race when the tests are). Each edit may change the command before it
// starts.
func startGateway(t *testing.T, name string, vars map[string]string, edits ...func(*exec.Cmd)) *gatewayProc {
	t.Helper()
	g := &gatewayProc{
		t:      t,
		name:   name,
		stderr: &logBuf{addrCh: make(chan string, 1)},
		done:   make(chan struct{}),
	}
	g.cmd = exec.Command(binPath, "gateway")
	g.cmd.Env = childEnv(t, vars)
	g.cmd.Stdout = io.Discard
	g.cmd.Stderr = g.stderr
	for _, edit := range edits {
		edit(g.cmd)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	go func() {
		g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			g.cmd.Process.Kill()
			select {
			case <-g.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s: not reaped 10s after SIGKILL", name)
			}
		}
		if log := g.stderr.String(); strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("%s: the gateway reported a data race:\n%s", name, log)
		}
		if t.Failed() {
			t.Logf("%s stderr (last 4 KiB):\n%s", name, lastBytes(g.stderr.String(), 4<<10))
		}
	})
	select {
	case g.addr = <-g.stderr.addrCh:
	case <-g.done:
		t.Fatalf("%s: exited before listening (%v)\nstderr:\n%s", name, g.cmd.ProcessState, g.stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("%s: no listening line within %s\nstderr:\n%s", name, startTimeout, g.stderr.String())
	}
	return g
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (g *gatewayProc) kill() {
	g.t.Helper()
	if err := g.cmd.Process.Kill(); err != nil {
		g.t.Fatalf("%s: kill: %v", g.name, err)
	}
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		g.t.Fatalf("%s: not reaped 10s after SIGKILL", g.name)
	}
}

// terminate sends SIGTERM and waits up to limit for the process to exit. It
// returns the exit code and how long the exit took.
func (g *gatewayProc) terminate(limit time.Duration) (int, time.Duration) {
	g.t.Helper()
	start := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		g.t.Fatalf("%s: SIGTERM: %v", g.name, err)
	}
	return g.waitExit(start, limit)
}

// waitExit waits up to limit for the process to exit on its own.
func (g *gatewayProc) waitExit(start time.Time, limit time.Duration) (int, time.Duration) {
	g.t.Helper()
	select {
	case <-g.done:
		return g.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(limit):
		g.t.Fatalf("%s: still running %s after SIGTERM\nstderr:\n%s", g.name, limit, g.stderr.String())
		return -1, 0
	}
}

func (g *gatewayProc) url(path string) string { return "http://" + g.addr + path }

// getJSON fetches a JSON document from the gateway into v.
func (g *gatewayProc) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url(path), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v in %s", path, err, body)
	}
	return nil
}

// apiSession is one entry of GET /api/sessions.
type apiSession struct {
	SessionID    string `json:"sessionId"`
	MessageCount int    `json:"messageCount"`
	Busy         bool   `json:"busy"`
}

func (g *gatewayProc) listSessions(ctx context.Context) (map[string]apiSession, error) {
	var body struct {
		Sessions []apiSession `json:"sessions"`
	}
	if err := g.getJSON(ctx, "/api/sessions", &body); err != nil {
		return nil, err
	}
	out := map[string]apiSession{}
	for _, s := range body.Sessions {
		if _, dup := out[s.SessionID]; dup {
			return nil, fmt.Errorf("GET /api/sessions lists %s twice", s.SessionID)
		}
		out[s.SessionID] = s
	}
	return out, nil
}

// serverEvent is any server → client event.
type serverEvent struct {
	Type      string `json:"type"`
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Resumed   bool   `json:"resumed"`
	// StopReason is a message_done's, State a status event's.
	StopReason string `json:"stopReason"`
	State      string `json:"state"`
}

// wsClient is one WebSocket connection to a gateway.
type wsClient struct {
	c         *websocket.Conn
	sessionID string
}

// dialSession connects to ws://addr/ws?sessionId=id and reads the
// connected event.
func dialSession(ctx context.Context, addr, id string) (*wsClient, error) {
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws?sessionId="+id, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(8 << 20)
	w := &wsClient{c: c, sessionID: id}
	ev, err := w.read(ctx)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	if ev.Type != "connected" || ev.SessionID != id {
		c.CloseNow()
		return nil, fmt.Errorf("first event is %+v, want connected to %s", ev, id)
	}
	return w, nil
}

func (w *wsClient) read(ctx context.Context) (serverEvent, error) {
	typ, data, err := w.c.Read(ctx)
	if err != nil {
		return serverEvent{}, err
	}
	if typ != websocket.MessageText {
		return serverEvent{}, fmt.Errorf("binary frame from the server")
	}
	var ev serverEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return serverEvent{}, fmt.Errorf("server frame %q: %v", data, err)
	}
	return ev, nil
}

func (w *wsClient) send(ctx context.Context, content string) error {
	return w.sendTo(ctx, "", content)
}

// sendTo sends a message event naming sessionID (none when ""), which
// routes the message to that session and attaches the connection to it.
func (w *wsClient) sendTo(ctx context.Context, sessionID, content string) error {
	ev := map[string]string{"type": "message", "content": content}
	if sessionID != "" {
		ev["sessionId"] = sessionID
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return w.c.Write(ctx, websocket.MessageText, b)
}

// exchange sends one message and waits for the message_done that answers
// it, recognised by the echo provider's reply "echo: <content>" (other
// clients may share the session and see their own replies go by). An error
// event is returned as an error.
func (w *wsClient) exchange(ctx context.Context, content string) error {
	return w.exchangeIn(ctx, "", content)
}

// exchangeIn is exchange with the message routed to sessionID (see sendTo).
func (w *wsClient) exchangeIn(ctx context.Context, sessionID, content string) error {
	if err := w.sendTo(ctx, sessionID, content); err != nil {
		return err
	}
	return w.awaitReply(ctx, content)
}

// awaitReply reads until the message_done that answers content (see
// exchange); an error event is returned as an error.
func (w *wsClient) awaitReply(ctx context.Context, content string) error {
	want := "echo: " + content
	for {
		ev, err := w.read(ctx)
		if err != nil {
			return err
		}
		switch ev.Type {
		case "message_done":
			if ev.Content == want {
				return nil
			}
		case "error":
			return &eventError{ev}
		}
	}
}

// waitDone reads until the message_done of the running turn; an error
// event is returned as an error.
func (w *wsClient) waitDone(ctx context.Context) (serverEvent, error) {
	for {
		ev, err := w.read(ctx)
		if err != nil {
			return ev, err
		}
		switch ev.Type {
		case "message_done":
			return ev, nil
		case "error":
			return ev, &eventError{ev}
		}
	}
}

// eventError is an error event received where a reply was expected.
type eventError struct{ ev serverEvent }

func (e *eventError) Error() string {
	return fmt.Sprintf("error event: code=%s session=%s: %s", e.ev.Code, e.ev.SessionID, e.ev.Message)
}

func (w *wsClient) close() { w.c.Close(websocket.StatusNormalClosure, "") }

// diskMsg is one transcript line as the tests check it.
type diskMsg struct {
	Role      string `json:"role"`
	Content   string `json:"content"`
	Timestamp int64  `json:"timestamp"`
	Status    string `json:"status"`
	Error     string `json:"error"`
}

// decodeDiskLine parses one transcript line strictly: a JSON object with a
// known role, a string content and a positive Unix-ms timestamp.
func decodeDiskLine(b []byte) (diskMsg, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return diskMsg{}, err
	}
	if raw == nil {
		return diskMsg{}, errors.New("not a JSON object")
	}
	for _, k := range []string{"role", "content", "timestamp"} {
		if _, ok := raw[k]; !ok {
			return diskMsg{}, fmt.Errorf("no %q field", k)
		}
	}
	var m diskMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return diskMsg{}, err
	}
	switch m.Role {
	case "user", "assistant", "system", "summary":
	default:
		return diskMsg{}, fmt.Errorf("unknown role %q", m.Role)
	}
	// Between 2020 and 2100, in milliseconds.
	if m.Timestamp < 1577836800000 || m.Timestamp > 4102444800000 {
		return diskMsg{}, fmt.Errorf("timestamp %d is not Unix milliseconds", m.Timestamp)
	}
	return m, nil
}

// transcript is a session's JSONL as found on disk.
type transcript struct {
	msgs []diskMsg // the complete lines, all decoded
	torn []byte    // bytes after the last newline, if any
}

// readTranscript reads a JSONL file. Every complete (newline-terminated)
// line must decode; bytes after the last newline are returned as torn.
func readTranscript(path string) (transcript, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return transcript{}, err
	}
	var tr transcript
	end := bytes.LastIndexByte(b, '\n') + 1
	tr.torn = b[end:]
	for i, line := range bytes.SplitAfter(b[:end], []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		body := bytes.TrimSuffix(line, []byte{'\n'})
		m, err := decodeDiskLine(body)
		if err != nil {
			return tr, fmt.Errorf("%s: line %d: %v: %q", filepath.Base(path), i+1, err, clip(body, 200))
		}
		// A compaction's summary record is no message of the conversation
		// (a long test session is compacted).
		if m.Role != "summary" {
			tr.msgs = append(tr.msgs, m)
		}
	}
	return tr, nil
}

func clip(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(append([]byte(nil), b[:n]...), "..."...)
}

// sessionFiles lists the session IDs with a JSONL in the sessions dir.
func sessionFiles(t *testing.T, sessionsDir string) []string {
	t.Helper()
	des, err := os.ReadDir(sessionsDir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, de := range des {
		if id, ok := strings.CutSuffix(de.Name(), ".jsonl"); ok && !de.IsDir() {
			ids = append(ids, id)
		}
	}
	return ids
}

// writeScript writes a scripted-provider script and returns its path.
func writeScript(t *testing.T, turns any) string {
	t.Helper()
	b, err := json.Marshal(turns)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
