package gateway_test

// Shared helpers of the gateway's end-to-end tests: a real gateway on a
// loopback port with a session store in t.TempDir(), real WebSocket clients,
// and readers that fail a test (never hang it) when an event does not come.

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// waitFor bounds every wait for an event: long enough for -race on a busy
// machine, short enough that a missing event fails the test quickly.
const waitFor = 10 * time.Second

// testServer is a gateway serving on 127.0.0.1:<random port>.
type testServer struct {
	srv   *gateway.Server
	store *session.Store
	dir   string // the sessions directory
	addr  string // host:port
	logs  *testutil.Buffer
}

// startServer starts a gateway running provider; opts adjust its Options.
// Cleanup shuts it down (a no-op when the test already did) and checks that
// Serve returned cleanly.
func startServer(t testing.TB, provider core.Provider, opts ...func(*gateway.Options)) *testServer {
	t.Helper()
	return startServerIn(t, filepath.Join(t.TempDir(), "sessions"), provider, opts...)
}

// startServerIn is startServer on the sessions directory dir (a restart
// when another server used it before).
func startServerIn(t testing.TB, dir string, provider core.Provider, opts ...func(*gateway.Options)) *testServer {
	t.Helper()
	store, err := session.Open(dir, session.Options{})
	if err != nil {
		t.Fatalf("session.Open: %v", err)
	}
	logs := &testutil.Buffer{}
	opt := gateway.Options{
		Store:   store,
		Runtime: &agent.Runtime{Provider: provider, Model: "test-model", Workspace: t.TempDir()},
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&opt)
	}
	srv := gateway.New(opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts := &testServer{srv: srv, store: store, dir: dir, addr: ln.Addr().String(), logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Serve did not return after Shutdown")
		}
		store.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return ts
}

// echoServer is a gateway on the scripted provider without a script: the
// reply to X is "echo: X", word by word.
func echoServer(t testing.TB, opts ...func(*gateway.Options)) *testServer {
	t.Helper()
	return startServer(t, scripted.Echo(), opts...)
}

// scriptServer is a gateway playing an inline scripted.Parse script (a JSON
// array of turns, handed out in order across all sessions, cycling).
func scriptServer(t testing.TB, script string, opts ...func(*gateway.Options)) *testServer {
	t.Helper()
	if _, err := scripted.Parse([]byte(script)); err != nil {
		t.Fatalf("bad test script: %v", err)
	}
	path := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := scripted.Load(path)
	if err != nil {
		t.Fatalf("scripted.Load: %v", err)
	}
	return startServer(t, p, opts...)
}

// Options for startServer.

func withPage(h http.Handler) func(*gateway.Options) {
	return func(o *gateway.Options) { o.Page = h }
}

func withToken(token string) func(*gateway.Options) {
	return func(o *gateway.Options) { o.Token = token }
}

func withOrigins(patterns ...string) func(*gateway.Options) {
	return func(o *gateway.Options) { o.OriginPatterns = patterns }
}

func (ts *testServer) wsURL(pathAndQuery string) string { return "ws://" + ts.addr + pathAndQuery }
func (ts *testServer) httpURL(path string) string       { return "http://" + ts.addr + path }

// dialRaw opens a WebSocket on pathAndQuery ("/ws?sessionId=x") without
// reading anything. The response is the server's HTTP answer.
func (ts *testServer) dialRaw(t testing.TB, pathAndQuery string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return ts.dialOptions(t, pathAndQuery, &websocket.DialOptions{HTTPHeader: header})
}

// dialOptions is dialRaw with the client's DialOptions.
func (ts *testServer) dialOptions(t testing.TB, pathAndQuery string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, ts.wsURL(pathAndQuery), opts)
	if err == nil {
		ws.SetReadLimit(8 << 20)
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

// dialStatus dials a WebSocket that must be refused, and returns the HTTP
// status of the refusal.
func (ts *testServer) dialStatus(t *testing.T, pathAndQuery string, header http.Header) int {
	t.Helper()
	ws, resp, err := ts.dialRaw(t, pathAndQuery, header)
	if err == nil {
		ws.CloseNow()
		t.Fatalf("dial %s succeeded, want it refused", pathAndQuery)
	}
	if resp == nil {
		t.Fatalf("dial %s: no HTTP response: %v", pathAndQuery, err)
	}
	return resp.StatusCode
}

// client is a WebSocket client of the gateway.
type client struct {
	t         testing.TB
	ws        *websocket.Conn
	sessionID string // from its connected event
	resumed   bool
	wait      time.Duration // bound of each read; 0: waitFor
}

// dial connects on pathAndQuery and reads the connected event.
func (ts *testServer) dial(t testing.TB, pathAndQuery string) *client {
	t.Helper()
	return ts.dialHeader(t, pathAndQuery, nil)
}

func (ts *testServer) dialHeader(t testing.TB, pathAndQuery string, header http.Header) *client {
	t.Helper()
	return ts.dialWith(t, pathAndQuery, &websocket.DialOptions{HTTPHeader: header})
}

// dialWith is dial with the client's DialOptions.
func (ts *testServer) dialWith(t testing.TB, pathAndQuery string, opts *websocket.DialOptions) *client {
	t.Helper()
	ws, _, err := ts.dialOptions(t, pathAndQuery, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", pathAndQuery, err)
	}
	c := &client{t: t, ws: ws}
	ev := c.expect("connected")
	if ev.SessionID == "" || ev.Resumed == nil {
		t.Fatalf("connected event lacks sessionId or resumed: %s", ev.Raw)
	}
	c.sessionID, c.resumed = ev.SessionID, *ev.Resumed
	return c
}

// event is any server event; Raw keeps the frame as sent.
type event struct {
	Type       string            `json:"type"`
	SessionID  string            `json:"sessionId"`
	Content    string            `json:"content"`
	Resumed    *bool             `json:"resumed"`
	Message    string            `json:"message"`
	Code       string            `json:"code"`
	StopReason string            `json:"stopReason"`
	Usage      *core.Usage       `json:"usage"`
	Context    *protocol.Context `json:"context"`
	Raw        []byte            `json:"-"`
}

// fields decodes the raw frame as a generic object.
func (e event) fields(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Raw, &m); err != nil {
		t.Fatalf("event %s: %v", e.Raw, err)
	}
	return m
}

// read reads the next event, with a deadline.
func (c *client) read() (event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(c.wait, waitFor))
	defer cancel()
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		return event{}, err
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("server sent a %v frame, want text", typ)
	}
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		c.t.Fatalf("server sent a frame that is not a JSON event: %q: %v", data, err)
	}
	ev.Raw = data
	return ev, nil
}

// next reads the next event; a read error fails the test.
func (c *client) next() event {
	c.t.Helper()
	ev, err := c.read()
	if err != nil {
		c.t.Fatalf("read event: %v", err)
	}
	return ev
}

// expect reads the next event and fails unless it has type typ.
func (c *client) expect(typ string) event {
	c.t.Helper()
	ev := c.next()
	if ev.Type != typ {
		c.t.Fatalf("got event %s, want type %q", ev.Raw, typ)
	}
	return ev
}

// expectError reads the next event and fails unless it is an error with code.
func (c *client) expectError(code string) event {
	c.t.Helper()
	ev := c.expect("error")
	if ev.Code != code || ev.Message == "" {
		c.t.Fatalf("got error %s, want code %q with a message", ev.Raw, code)
	}
	return ev
}

// expectClose reads until the connection ends and fails unless it was closed
// with status; the events read before are returned.
func (c *client) expectClose(status websocket.StatusCode) []event {
	c.t.Helper()
	var seen []event
	for {
		ev, err := c.read()
		if err != nil {
			if got := websocket.CloseStatus(err); got != status {
				c.t.Fatalf("connection ended with %v (status %v), want status %v; events before: %d", err, got, status, len(seen))
			}
			return seen
		}
		seen = append(seen, ev)
	}
}

// send writes v as one JSON text frame.
func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// sendRaw writes s as one text frame, as is.
func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// message sends a user message on the connection's session.
func (c *client) message(content string) {
	c.t.Helper()
	c.send(map[string]string{"type": "message", "content": content})
}

// turn is what a client saw of one turn.
type turn struct {
	users  []string // the user_message events before the reply (other clients' messages)
	chunks []string
	done   event // message_done, or the error that ended the turn
}

func (tn turn) text() string { return strings.Join(tn.chunks, "") }

// readTurn reads user_message events and chunks until message_done or
// error; any other event fails.
func (c *client) readTurn() turn {
	c.t.Helper()
	var tn turn
	for {
		ev := c.next()
		switch ev.Type {
		case "user_message":
			tn.users = append(tn.users, ev.Content)
		case "chunk":
			tn.chunks = append(tn.chunks, ev.Content)
		case "message_done", "error":
			tn.done = ev
			return tn
		default:
			c.t.Fatalf("unexpected event during a turn: %s", ev.Raw)
		}
	}
}

// chat sends content and reads its turn, which must end in message_done
// with the streamed text as its content.
func (c *client) chat(content string) turn {
	c.t.Helper()
	c.message(content)
	tn := c.readTurn()
	if tn.done.Type != "message_done" {
		c.t.Fatalf("turn for %q ended with %s", content, tn.done.Raw)
	}
	if tn.text() != tn.done.Content {
		c.t.Fatalf("chunks %q do not add up to message_done content %q", tn.text(), tn.done.Content)
	}
	return tn
}

// ping sends a ping and requires pong as the very next event.
func (c *client) ping() {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	c.expect("pong")
}

// mustList is the store's List, its error reported to t.
func mustList(t testing.TB, b session.Backend) []session.Meta {
	t.Helper()
	metas, err := b.List()
	if err != nil {
		t.Errorf("List: %v", err)
	}
	return metas
}
