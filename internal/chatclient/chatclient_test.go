package chatclient

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// waitFor bounds every wait for output: long enough for -race on a busy
// machine, short enough that a missing line fails quickly.
const waitFor = 10 * time.Second

// testGateway is a real gateway, on the echo provider, serving on a
// loopback port of its own.
type testGateway struct {
	srv     *gateway.Server
	store   *session.Store
	addr    string
	served  chan error
	stopped bool
}

// startGateway serves a gateway on addr ("127.0.0.1:0" for any port) over
// the sessions in dir. Cleanup stops it unless the test did.
func startGateway(t *testing.T, addr, dir, token string) *testGateway {
	t.Helper()
	return startGatewayWith(t, addr, dir, token, scripted.Echo())
}

// startGatewayWith is startGateway with another model provider.
func startGatewayWith(t *testing.T, addr, dir, token string, provider core.Provider) *testGateway {
	t.Helper()
	return startGatewayRuntime(t, addr, dir, token, &agent.Runtime{Provider: provider, Model: "test", Workspace: t.TempDir()})
}

// startGatewayRuntime is startGateway with another runtime.
func startGatewayRuntime(t *testing.T, addr, dir, token string, rt *agent.Runtime) *testGateway {
	t.Helper()
	return startGatewayOpts(t, addr, dir, gateway.Options{Runtime: rt, Token: token})
}

// startGatewayOpts is startGateway with other gateway options; the store
// and the logger are filled in.
func startGatewayOpts(t *testing.T, addr, dir string, opt gateway.Options) *testGateway {
	t.Helper()
	store, err := session.Open(dir, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	opt.Store, opt.Logger = store, slog.New(slog.DiscardHandler)
	g := &testGateway{
		srv:    gateway.New(opt),
		store:  store,
		addr:   ln.Addr().String(),
		served: make(chan error, 1),
	}
	go func() { g.served <- g.srv.Serve(ln) }()
	t.Cleanup(func() { g.stop(t) })
	return g
}

// stop shuts the gateway down; only the first call does anything.
func (g *testGateway) stop(t *testing.T) {
	t.Helper()
	if g.stopped {
		return
	}
	g.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-g.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	g.store.Close()
}

// waitOutput waits until the output contains want.
func waitOutput(t *testing.T, out *testutil.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q after %s:\n%s", want, waitFor, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runAsync runs the client in line mode on a pipe; the test writes lines
// and closes the pipe to end it.
func runAsync(t *testing.T, opt Options) (*io.PipeWriter, *testutil.Buffer, chan error) {
	t.Helper()
	in, w := io.Pipe()
	out := &testutil.Buffer{}
	opt.In, opt.Out = in, out
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), opt) }()
	t.Cleanup(func() { w.Close() })
	return w, out, done
}

func TestRunLineMode(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		URL:       "ws://" + g.addr + "/ws",
		SessionID: "line-1",
		In:        strings.NewReader("/abort\nhello there\n//slash\n/bogus\n"),
		Out:       &out,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"session line-1 (new session)",
		"echo: hello there\n",
		"echo: /slash\n",
		"error [not_running]: ", // /abort with nothing running: not a failed message
		"unknown command /bogus",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// While another process runs a turn of the session, the client says so.
func TestRunShowsTurnWait(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	held, err := g.store.LockTurn(context.Background(), "busy", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, out, done := runAsync(t, Options{URL: g.addr, SessionID: "busy"})
	waitOutput(t, out, "(new session)")
	io.WriteString(w, "hello\n")
	waitOutput(t, out, "(waiting for another process's turn on this session)\n")
	held.Unlock()
	waitOutput(t, out, "echo: hello\n")
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A lost connection is reported and re-established to the same session;
// the chat goes on.
func TestRunReconnects(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sessions")
	g := startGateway(t, "127.0.0.1:0", dir, "")
	w, out, done := runAsync(t, Options{URL: g.addr})
	waitOutput(t, out, "(new session)")
	io.WriteString(w, "before\n")
	waitOutput(t, out, "echo: before\n")

	g.stop(t)
	waitOutput(t, out, "connection lost")
	startGateway(t, g.addr, dir, "") // the same address and data, as after a restart
	waitOutput(t, out, "Reconnected to session ")
	io.WriteString(w, "after\n")
	waitOutput(t, out, "echo: after\n")
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := out.String()
	first := s[strings.Index(s, "session ")+len("session ") : strings.Index(s, " (new session)")]
	if !strings.Contains(s, "Reconnected to session "+first+".") {
		t.Errorf("reconnected to another session than %s:\n%s", first, s)
	}
}

// A reply that finishes while the connection is down reached no one: after
// the reconnect the client reads it from the transcript.
func TestRunCatchesUpAfterOutage(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(script, []byte(`[{"text":"a b c d e f","chunkDelayMs":100}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	slow, err := scripted.Load(script)
	if err != nil {
		t.Fatal(err)
	}
	g := startGatewayWith(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "", slow)
	px := testutil.StartProxy(t, g.addr)
	w, out, done := runAsync(t, Options{URL: px.Addr(), SessionID: "cut-1"})
	waitOutput(t, out, "(new session)")
	io.WriteString(w, "go\n")
	waitOutput(t, out, "a ")
	px.Cut()
	waitOutput(t, out, "connection lost")
	for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
		if m, err := g.store.Get("cut-1"); err == nil && m.MessageCount == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the turn was not persisted")
		}
	}
	px.Resume()
	waitOutput(t, out, "Reconnected to session cut-1.")
	waitOutput(t, out, "The reply finished while the connection was down:\na b c d e f\n")
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
}

func TestRunToken(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "s3cret")
	err := Run(context.Background(), Options{URL: g.addr, In: strings.NewReader(""), Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "MINI_OPENCLAW_TOKEN") {
		t.Errorf("without the token: %v; want an error telling how to pass it", err)
	}
	var out bytes.Buffer
	err = Run(context.Background(), Options{URL: g.addr, Token: "s3cret", In: strings.NewReader("/new\n/sessions\nhi\n"), Out: &out})
	if err != nil {
		t.Fatalf("with the token: %v\n%s", err, out.String())
	}
	if strings.Count(out.String(), "(new session)") != 2 || !strings.Contains(out.String(), "echo: hi") || !strings.Contains(out.String(), "MESSAGES") {
		t.Errorf("/new, /sessions and a message with the token:\n%s", out.String())
	}
}

func TestRunInterruptAbortsThenQuits(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	intr := make(chan os.Signal, 2)
	w, out, done := runAsync(t, Options{URL: g.addr, Interrupt: intr})
	waitOutput(t, out, "(new session)")
	intr <- os.Interrupt // nothing runs: quit
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Ctrl-C with nothing running did not quit")
	}
	w.Close()
}

func TestParseGateway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, http, ws string
	}{
		{"http://127.0.0.1:3210", "http://127.0.0.1:3210", "ws://127.0.0.1:3210/ws"},
		{"http://127.0.0.1:3210/", "http://127.0.0.1:3210", "ws://127.0.0.1:3210/ws"},
		{"ws://localhost:3210/ws", "http://localhost:3210", "ws://localhost:3210/ws"},
		{"wss://example.com/claw/ws", "https://example.com/claw", "wss://example.com/claw/ws"},
		{"https://example.com", "https://example.com", "wss://example.com/ws"},
		{"localhost:3210", "http://localhost:3210", "ws://localhost:3210/ws"},
	} {
		g, err := parseGateway(tc.in, "")
		if err != nil || g.http != tc.http || g.ws != tc.ws {
			t.Errorf("parseGateway(%q) = %+v, %v; want %s and %s", tc.in, g, err, tc.http, tc.ws)
		}
	}
	for _, bad := range []string{"ftp://host", "http://", "http://a b"} {
		if _, err := parseGateway(bad, ""); err == nil {
			t.Errorf("parseGateway(%q) accepted", bad)
		}
	}
}

func TestToolLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{ToolStartLine("bash", []byte(`{ "command": "ls" }`)), `⚙ bash {"command":"ls"}`},
		{ToolStartLine("list_files", []byte(`{}`)), `⚙ list_files`},
		{ToolStartLine("bash", []byte(`{"command":"`+strings.Repeat("x", 300)+`"}`)), `⚙ bash {"command":"` + strings.Repeat("x", 200-len(`{"command":"`)-1) + `…`},
		{ToolDoneLine("bash", "one line\n", false), "✓ bash: one line"},
		{ToolDoneLine("bash", "\n\nfirst\nsecond\n", false), "✓ bash: first…"},
		{ToolDoneLine("bash", "", false), "✓ bash: (no output)"},
		{ToolDoneLine("read_file", "no such file", true), "✗ read_file: no such file"},
		{ToolDoneLine("bash", strings.Repeat("é", 150), false), "✓ bash: " + strings.Repeat("é", 99) + "…"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
}

// Tool output holding a fence cannot close the Markdown block early.
func TestWriteFence(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	writeFence(&b, "text", "a ``` b ```` c\n")
	if want := "`````text\na ``` b ```` c\n`````\n"; b.String() != want {
		t.Errorf("writeFence = %q, want %q", b.String(), want)
	}
}

// A network that silently stops carrying anything (no reset, no close) is
// noticed by the client's own pings, and the client reconnects once the
// network is back.
func TestKeepaliveNoticesASilentNetwork(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	px := testutil.StartProxy(t, g.addr)
	w, out, done := runAsync(t, Options{URL: px.Addr(), SessionID: "quiet-1", Keepalive: 200 * time.Millisecond})
	waitOutput(t, out, "(new session)")
	px.Stall()
	waitOutput(t, out, "the gateway did not answer a ping within 100ms")
	px.Resume()
	waitOutput(t, out, "Reconnected to session quiet-1.")
	io.WriteString(w, "still there?\n")
	waitOutput(t, out, "echo: still there?")
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// /compact asks the gateway to summarise the older messages: the client
// prints the compaction line, and the gateway's refusal when nothing is
// left to summarise.
func TestRunCompact(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	w, out, done := runAsync(t, Options{URL: "ws://" + g.addr + "/ws", SessionID: "compact-1"})
	for _, line := range []string{"one", "two", "three"} {
		io.WriteString(w, line+"\n")
		waitOutput(t, out, "echo: "+line+"\n")
	}
	io.WriteString(w, "/compact\n")
	waitOutput(t, out, "Compacted: 4 earlier messages summarised (")
	io.WriteString(w, "/compact\n")
	waitOutput(t, out, "error [conflict]: nothing to compact")
	w.Close()
	<-done
}

// A summary record prints as a marked block, not as a message, in both
// the transcript view (sessions show) and the Markdown export; every
// message it covers is still printed.
func TestSummaryRecordIsAMarkedBlock(t *testing.T) {
	msgs := []core.Message{
		{Role: core.RoleUser, Content: "read a.txt", Timestamp: 1},
		{Role: core.RoleAssistant, Content: "done", Timestamp: 2},
		{Role: core.RoleUser, Content: "and b.txt?", Timestamp: 3},
		{Role: core.RoleSummary, Content: "## What the user wants\nFiles read.\x1b[2J", Covers: 2, Timestamp: 4},
	}
	var b strings.Builder
	if err := WriteTranscript(&b, msgs, ToolView{}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{"── user · ", "read a.txt", "and b.txt?", ": the model sees this instead of the first 2 lines above ══\n## What the user wants\nFiles read.\\x1b[2J\n══ end of summary ══"} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "── summary") {
		t.Errorf("the summary is printed as a message:\n%s", got)
	}
	b.Reset()
	if err := WriteMarkdown(&b, session.Meta{SessionID: "s"}, msgs); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "the model sees this instead of the first 2 transcript lines (kept above).\n>\n> ## What the user wants\n> Files read.") || strings.Contains(got, "## Summary ·") {
		t.Errorf("Markdown export:\n%s", got)
	}
}
