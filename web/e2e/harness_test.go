// Package e2e tests the WebChat in a real headless Chromium, driven with
// chromedp, against a real gateway started in-process the way
// cmd/miniclaw/gateway.go builds it (store on disk, scripted provider, file
// tools). Without Chromium ($MINICLAW_CHROMIUM, else /usr/bin/chromium or
// chromium on the PATH) the tests skip, and say so, unless
// MINICLAW_REQUIRE_BROWSER=1 (as in CI): then they fail.
//
// Every wait polls the DOM until a condition holds, with a deadline; no test
// sleeps to let something happen. Screenshots of the main states go to
// $MINICLAW_SCREENSHOTS (an absolute path; the tests run in web/e2e) or to a
// temporary directory.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
	"github.com/miniclaw/miniclaw/internal/tools"
	"github.com/miniclaw/miniclaw/web"
)

const (
	// waitFor bounds each DOM condition and each browser action: generous
	// for -race on a shared machine, short enough to fail fast.
	waitFor = 15 * time.Second
	// scriptedWarning stands in for the gateway's real warning text.
	scriptedWarning = "No model provider is configured: running on the offline scripted provider."
)

// --- gateway --------------------------------------------------------------

// gwConfig is what a test gateway runs with.
type gwConfig struct {
	script  string // a scripted provider script (JSON turns); "" echoes
	token   string
	warning string            // ProviderWarning, shown as the banner
	files   map[string]string // workspace files, by relative path
	usage   core.Usage        // what every model call reports it used (none when zero)
	// gate, when set, holds every model call until the test sends on it.
	gate  chan struct{}
	extra []tools.Tool // more tools for the runtime
	relay gateway.Relay
}

// gatedProvider waits for a value on gate before each model call.
type gatedProvider struct {
	core.Provider
	gate <-chan struct{}
}

func (p gatedProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	select {
	case <-p.gate:
	case <-ctx.Done():
		return core.Response{}, context.Cause(ctx)
	}
	return p.Provider.Complete(ctx, req, onText)
}

// usageProvider reports the same usage for every model call.
type usageProvider struct {
	core.Provider
	usage core.Usage
}

func (p usageProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	resp, err := p.Provider.Complete(ctx, req, onText)
	resp.Usage = p.usage
	return resp, err
}

// testGateway is a real gateway on 127.0.0.1. stop then start is a restart:
// a new gateway on the same port and data directory, as a new process.
type testGateway struct {
	t         *testing.T
	cfg       gwConfig
	addr      string
	dir       string // sessions directory
	workspace string
	script    string // path of the script file

	srv    *gateway.Server
	store  *session.Store
	served chan error
	logs   *testutil.Buffer
}

func startGateway(t *testing.T, cfg gwConfig) *testGateway {
	t.Helper()
	g := &testGateway{
		t: t, cfg: cfg, addr: "127.0.0.1:0",
		dir:       filepath.Join(t.TempDir(), "sessions"),
		workspace: t.TempDir(),
		logs:      &testutil.Buffer{},
	}
	for name, body := range cfg.files {
		p := filepath.Join(g.workspace, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.script != "" {
		g.script = filepath.Join(t.TempDir(), "script.json")
		if err := os.WriteFile(g.script, []byte(cfg.script), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.start()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.logs.String())
		}
	})
	return g
}

// start builds the pieces as cmd/miniclaw/gateway.go does and serves.
func (g *testGateway) start() {
	t := g.t
	t.Helper()
	var provider core.Provider = scripted.Echo()
	if g.script != "" {
		p, err := scripted.Load(g.script)
		if err != nil {
			t.Fatalf("scripted.Load: %v", err)
		}
		provider = p
	}
	if g.cfg.usage != (core.Usage{}) {
		provider = usageProvider{provider, g.cfg.usage}
	}
	if g.cfg.gate != nil {
		provider = gatedProvider{provider, g.cfg.gate}
	}
	ws, err := tools.OpenWorkspace(g.workspace)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	logger := slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := session.Open(g.dir, session.Options{Logger: logger})
	if err != nil {
		t.Fatalf("session.Open: %v", err)
	}
	g.store = store
	g.srv = gateway.New(gateway.Options{
		Store: store,
		Runtime: &agent.Runtime{
			Provider: provider, Model: "test-model", Workspace: g.workspace,
			Tools: tools.NewSet(append(append(ws.FileTools(), tools.Bash{Dir: ws.Dir(), Timeout: 10 * time.Second}), g.cfg.extra...)...),
		},
		Logger:          logger,
		Token:           g.cfg.token,
		ProviderWarning: g.cfg.warning,
		Page:            web.Handler(),
		Relay:           g.cfg.relay,
	})
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", g.addr, err)
	}
	g.addr = ln.Addr().String()
	g.served = make(chan error, 1)
	go func() { g.served <- g.srv.Serve(ln) }()
}

// stop shuts the gateway down; running turns get a short grace.
func (g *testGateway) stop() {
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		g.t.Errorf("Shutdown: %v", err)
	}
	if err := <-g.served; err != nil {
		g.t.Errorf("Serve: %v", err)
	}
	g.srv = nil
}

func (g *testGateway) url() string { return "http://" + g.addr + "/" }

// transcript is a session's messages on disk.
func (g *testGateway) transcript(id string) []core.Message {
	g.t.Helper()
	msgs, corrupt, err := g.store.Load(id)
	if err != nil || len(corrupt) > 0 {
		g.t.Fatalf("load %s: %v %v", id, err, corrupt)
	}
	return msgs
}

// --- browser --------------------------------------------------------------

// TestMain says why the browser tests do not run on a machine without
// Chromium. go test ./... shows nothing of a passing package but its ok
// line, so a t.Skip there is silent: instead no test runs, the testing
// package prints "no tests to run", which go test turns into
// "ok …/web/e2e [no tests to run]", and the reason is printed for -v.
func TestMain(m *testing.M) {
	flag.Parse()
	if _, err := chromium(); err != nil && os.Getenv("MINICLAW_REQUIRE_BROWSER") != "1" {
		fmt.Fprintf(os.Stderr, "web/e2e: the browser tests were skipped: no Chromium (%v). Install it (apt-get install chromium) or set MINICLAW_CHROMIUM to a Chromium or Chrome binary; MINICLAW_REQUIRE_BROWSER=1 makes this a failure.\n", err)
		flag.Set("test.run", "^$")
	}
	os.Exit(m.Run())
}

// chromium finds the browser: $MINICLAW_CHROMIUM when set, else Debian's
// /usr/bin/chromium, else chromium on the PATH.
func chromium() (string, error) {
	if path := os.Getenv("MINICLAW_CHROMIUM"); path != "" {
		_, err := os.Stat(path)
		return path, err
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return exec.LookPath("chromium")
}

// newBrowser starts a headless Chromium with a fresh profile for this test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := chromium()
	if err != nil { // only with MINICLAW_REQUIRE_BROWSER=1: TestMain runs no test otherwise
		t.Fatalf("MINICLAW_REQUIRE_BROWSER=1 but there is no chromium (apt-get install chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 860),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout (see chromedp.Run)
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab is one browser tab showing the WebChat.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// openTab opens a new tab of browser at url. An uncaught JavaScript
// exception or a Content-Security-Policy violation on the page fails the
// test: the page must work under its own CSP, with no errors.
func openTab(t *testing.T, browser context.Context, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	var (
		mu       sync.Mutex
		problems []string
		watching sync.WaitGroup
	)
	report := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, log.EntryAdded)
	watching.Go(func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			if d.Exception != nil && d.Exception.Description != "" {
				report(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Exception.Description))
			} else {
				report(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text))
			}
		}
	})
	watching.Go(func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry.Source == log.EntrySourceSecurity {
				report("security: " + ev.Entry.Text)
			}
		}
	})
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		watching.Wait()
		for _, p := range problems {
			t.Errorf("page %s: %s", url, p)
		}
	})
	tb := &tab{t: t, ctx: ctx}
	tb.do(chromedp.Navigate(url))
	return tb
}

// do runs browser actions, each call bounded by waitFor.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v\n%s", err, tb.dump())
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it is true, failing the test
// with what the page shows when it does not become true in time.
func (tb *tab) waitJS(what, cond string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.t.Fatalf("timed out waiting for %s (%s); last error: %v\n%s", what, cond, err, tb.dump())
		case <-tick.C:
		}
	}
}

// watchJS starts checking cond in the page after every change of its DOM,
// and returns an expression for waitJS that is true once cond has held: for
// a state the page only passes through (a reply half streamed), which a
// poll every 25 ms, from a process a busy machine may not run for longer,
// can miss. name is the window property that records it.
func (tb *tab) watchJS(name, cond string) string {
	tb.t.Helper()
	flag := "window." + name
	eval[bool](tb, `(() => {
		`+flag+` = false;
		const check = () => { if (!`+flag+` && (`+cond+`)) `+flag+` = true };
		new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
		check();
		return true })()`)
	return flag
}

// dump describes the page for a failure message.
func (tb *tab) dump() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`"status: " + document.querySelector("#status")?.textContent + "\nurl: " + location.href + "\nlog:\n" + document.querySelector("#log")?.innerText`))
	if err != nil {
		return "(page unreadable: " + err.Error() + ")"
	}
	return s
}

// waitConnected waits for the page's WebSocket to be open.
func (tb *tab) waitConnected() {
	tb.t.Helper()
	tb.waitJS("the page to connect", `document.querySelector("#status").dataset.state === "connected"`)
}

// send types a message and presses Enter, which sends it and empties the
// box.
func (tb *tab) send(text string) {
	tb.t.Helper()
	tb.do(chromedp.SendKeys(chromedp.CSS("#input"), text), pressEnter())
	tb.waitJS("the message box to empty", `document.querySelector("#input").value === ""`)
}

// pressEnter presses Enter as a keyboard does: one keyDown that carries the
// text, so a page that cancels the keydown gets no newline. (chromedp's key
// events send the text as a separate char event, which no keydown handler
// can cancel.)
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", Text: "\r", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		up := down
		up.Type, up.Text = input.DispatchKeyEventTypeKeyUp, ""
		for _, ev := range []input.DispatchKeyEventParams{down, up} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// sessionID is the session the page shows, from its URL.
func (tb *tab) sessionID() string {
	tb.t.Helper()
	return eval[string](tb, `new URLSearchParams(location.hash.slice(1)).get("s") || ""`)
}

// shown is one message as the page shows it.
type shown struct {
	Role string `json:"role"`
	Text string `json:"text"`
}

// messagesJS lists the settled messages on the page: role and text (the
// rendered Markdown's text for replies, tool cards left out).
const messagesJS = `[...document.querySelectorAll("#log > .msg")].map(m => ({
	role: m.classList.contains("user") ? "user" : m.classList.contains("assistant") ? "assistant" : "other",
	text: (m.querySelector(":scope > .md, :scope > .text")?.textContent ?? "")
}))`

// settledJS is true when nothing is streaming, pending or stale.
const settledJS = `!document.querySelector("#log .live, #log .pending, #log .stale")`

// waitMessages waits until the page shows exactly want (and nothing is in
// flight). A duplicate or a lost message never matches, so it fails.
func (tb *tab) waitMessages(what string, want []shown) {
	tb.t.Helper()
	b, err := json.Marshal(want)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.waitJS(what, settledJS+` && JSON.stringify(`+messagesJS+`) === `+jsString(string(b)))
}

// fromDisk is what a transcript should look like on the page.
func fromDisk(msgs []core.Message) []shown {
	out := make([]shown, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, shown{Role: m.Role, Text: m.Content})
	}
	return out
}

// shot saves a screenshot of the whole page as name.png.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	dir := os.Getenv("MINICLAW_SCREENSHOTS")
	if dir == "" {
		dir = tb.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(tb.ctx, waitFor)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// script encodes scripted provider turns.
func script(turns ...scripted.Turn) string {
	b, err := json.Marshal(turns)
	if err != nil {
		panic(err)
	}
	if _, err := scripted.Parse(b); err != nil {
		panic(fmt.Sprintf("bad test script: %v", err))
	}
	return string(b)
}

// words is n distinct words "w1 w2 …", a reply whose partial and full text
// are easy to tell apart.
func words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = fmt.Sprintf("w%d", i+1)
	}
	return strings.Join(ws, " ")
}

// waitTrue polls a condition outside the page (the store on disk).
func waitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // the poll interval, not an assertion
	}
}
