package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/openclaw"
)

// ocClient speaks OpenClaw's gateway protocol to /openclaw. Frames read
// while waiting for a response are kept in events.
type ocClient struct {
	t      *testing.T
	ws     *websocket.Conn
	nonce  string
	events []map[string]any
	n      int
}

// ocFrame is any frame; raw keeps it as sent.
type ocFrame = map[string]any

// dialOC connects to /openclaw and reads connect.challenge.
func dialOC(t *testing.T, ts *testServer) *ocClient {
	t.Helper()
	ws, _, err := ts.dialRaw(t, "/openclaw", nil)
	if err != nil {
		t.Fatalf("dial /openclaw: %v", err)
	}
	c := &ocClient{t: t, ws: ws}
	ch := c.read()
	p, _ := ch["payload"].(map[string]any)
	if ch["type"] != "event" || ch["event"] != "connect.challenge" || p["nonce"] == "" || p["ts"] == nil {
		t.Fatalf("first frame %v: want event connect.challenge with nonce and ts", ch)
	}
	c.nonce = p["nonce"].(string)
	return c
}

func (c *ocClient) read() ocFrame {
	c.t.Helper()
	f, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *ocClient) tryRead() (ocFrame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var f ocFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("frame %q is not JSON: %v", data, err)
	}
	return f, nil
}

// call sends a request and returns its id.
func (c *ocClient) call(method string, params any) string {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("r%d", c.n)
	b, _ := json.Marshal(map[string]any{"type": "req", "id": id, "method": method, "params": params})
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("write %s: %v", method, err)
	}
	return id
}

// response reads until the response to id, keeping events.
func (c *ocClient) response(id string) ocFrame {
	c.t.Helper()
	for {
		f := c.read()
		if f["type"] == "res" && f["id"] == id {
			return f
		}
		if f["type"] == "event" {
			c.events = append(c.events, f)
		}
	}
}

// ok calls method and returns the payload of its successful response.
func (c *ocClient) ok(method string, params any) map[string]any {
	c.t.Helper()
	res := c.response(c.call(method, params))
	if res["ok"] != true {
		c.t.Fatalf("%s: %v", method, res)
	}
	p, _ := res["payload"].(map[string]any)
	return p
}

// connect sends connect with params and returns the response.
func (c *ocClient) connect(params map[string]any) ocFrame {
	c.t.Helper()
	return c.response(c.call("connect", params))
}

func connectParams(token string) map[string]any {
	p := map[string]any{"minProtocol": 4, "maxProtocol": 4, "role": "operator",
		"scopes": []string{"operator.read", "operator.write"},
		"client": map[string]any{"id": "test", "version": "1", "platform": "linux", "mode": "cli"}}
	if token != "" {
		p["auth"] = map[string]any{"token": token}
	}
	return p
}

// hello dials and connects with the token.
func helloOC(t *testing.T, ts *testServer, token string) *ocClient {
	t.Helper()
	c := dialOC(t, ts)
	if res := c.connect(connectParams(token)); res["ok"] != true {
		t.Fatalf("connect: %v", res)
	}
	return c
}

// nextEvent returns the next event named name (kept ones first).
func (c *ocClient) nextEvent(name string) map[string]any {
	c.t.Helper()
	for {
		var f ocFrame
		if len(c.events) > 0 {
			f, c.events = c.events[0], c.events[1:]
		} else {
			f = c.read()
		}
		if f["type"] == "event" && f["event"] == name {
			return f["payload"].(map[string]any)
		}
	}
}

// chatUntil collects chat events of run until one in a final state.
func (c *ocClient) chatUntil(runID string) []map[string]any {
	c.t.Helper()
	var out []map[string]any
	for {
		p := c.nextEvent("chat")
		if p["runId"] != runID {
			continue
		}
		out = append(out, p)
		if s := p["state"]; s != "delta" {
			return out
		}
	}
}

// expectRefused reads the error response to connect and the 1008 close.
func (c *ocClient) expectRefused(code, detail string) {
	c.t.Helper()
	res := c.response("r1")
	e, _ := res["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	if res["ok"] != false || e["code"] != code || (detail != "" && d["code"] != detail) || e["message"] == "" {
		c.t.Fatalf("response %v: want error %s with details.code %q", res, code, detail)
	}
	_, err := c.tryRead()
	if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
		c.t.Fatalf("after the refusal: %v (status %v), want close 1008", err, got)
	}
}

func withOpenClawTick(d time.Duration) func(*gateway.Options) {
	return func(o *gateway.Options) { o.OpenClawTick = d }
}

func TestOpenClawHandshake(t *testing.T) {
	ts := echoServer(t, withToken("s3cret"), withOpenClawTick(40*time.Millisecond))
	c := dialOC(t, ts)
	res := c.connect(connectParams("s3cret"))
	p, _ := res["payload"].(map[string]any)
	if res["ok"] != true || p["type"] != "hello-ok" || p["protocol"] != float64(4) {
		t.Fatalf("connect: %v", res)
	}
	for _, k := range []string{"server", "features", "snapshot", "auth", "policy"} {
		if p[k] == nil {
			t.Errorf("hello-ok lacks %s: %v", k, p)
		}
	}
	server, _ := p["server"].(map[string]any)
	features, _ := p["features"].(map[string]any)
	policy, _ := p["policy"].(map[string]any)
	auth, _ := p["auth"].(map[string]any)
	methods, _ := features["methods"].([]any)
	if server["connId"] == "" || server["version"] == "" || !slices.Contains(methods, any("chat.send")) ||
		policy["tickIntervalMs"] != float64(40) || policy["maxPayload"] == nil || policy["maxBufferedBytes"] == nil ||
		auth["role"] != "operator" {
		t.Errorf("hello-ok: %v", p)
	}
	if tick := c.nextEvent("tick"); tick["ts"] == nil {
		t.Errorf("tick without ts: %v", tick)
	}
	// The upgrade itself needs no token: it is checked in connect.
	if h := c.ok("health", map[string]any{}); h["ok"] != true {
		t.Errorf("health: %v", h)
	}
}

func TestOpenClawConnectRefused(t *testing.T) {
	ts := echoServer(t, withToken("s3cret"))
	for _, tc := range []struct {
		name           string
		method         string
		params         func(nonce string) map[string]any
		code, detail   string
		wantInMessages string
	}{
		{name: "health before connect", method: "health", params: func(string) map[string]any { return map[string]any{} }, code: "INVALID_REQUEST"},
		{name: "no token", params: func(string) map[string]any { return connectParams("") }, code: "INVALID_REQUEST", detail: "AUTH_TOKEN_MISSING"},
		{name: "wrong token", params: func(string) map[string]any { return connectParams("guess") }, code: "INVALID_REQUEST", detail: "AUTH_TOKEN_MISMATCH"},
		{name: "protocol 5", params: func(string) map[string]any {
			p := connectParams("s3cret")
			p["minProtocol"], p["maxProtocol"] = 5, 5
			return p
		}, code: "INVALID_REQUEST", detail: "PROTOCOL_MISMATCH"},
		{name: "signature over another nonce", params: func(string) map[string]any {
			return signedParams(t, "s3cret", "not-the-challenge", time.Now())
		}, code: "INVALID_REQUEST", detail: "DEVICE_AUTH_NONCE_MISMATCH"},
		{name: "stale signature", params: func(n string) map[string]any {
			return signedParams(t, "s3cret", n, time.Now().Add(-5*time.Minute))
		}, code: "INVALID_REQUEST", detail: "DEVICE_AUTH_SIGNATURE_EXPIRED"},
		{name: "forged signature", params: func(n string) map[string]any {
			p := signedParams(t, "s3cret", n, time.Now())
			p["scopes"] = []string{"operator.admin"}
			return p
		}, code: "INVALID_REQUEST", detail: "DEVICE_AUTH_SIGNATURE_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialOC(t, ts)
			c.call(cmpOr(tc.method, "connect"), tc.params(c.nonce))
			c.expectRefused(tc.code, tc.detail)
		})
	}
	t.Run("signed device", func(t *testing.T) {
		c := dialOC(t, ts)
		if res := c.connect(signedParams(t, "s3cret", c.nonce, time.Now())); res["ok"] != true {
			t.Fatalf("a signed device with the token was refused: %v", res)
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// signedParams are connect params of a new Ed25519 device that signed the
// v3 payload over nonce at signedAt.
func signedParams(t *testing.T, token, nonce string, signedAt time.Time) map[string]any {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pub)
	id := hex.EncodeToString(sum[:])
	payload := strings.Join([]string{"v3", id, "test", "cli", "operator", "operator.read,operator.write",
		fmt.Sprint(signedAt.UnixMilli()), token, nonce, "linux", ""}, "|")
	p := connectParams(token)
	p["device"] = map[string]any{"id": id, "publicKey": base64.RawURLEncoding.EncodeToString(pub),
		"signature": base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(payload))),
		"signedAt":  signedAt.UnixMilli(), "nonce": nonce}
	return p
}

// A chat.send from OpenClaw's client runs on the session's lane like a /ws
// message: acknowledged with a run ID, streamed as chat
// deltas (deltaText plus the cumulative message) and agent events with one
// sequence per run, stored in the session's JSONL, seen by a /ws client of
// the same session and listed by GET /api/sessions.
func TestOpenClawChatSend(t *testing.T) {
	ts := echoServer(t)
	web := ts.dial(t, "/ws?sessionId=main")
	c := helloOC(t, ts, "")
	ack := c.ok("chat.send", map[string]any{"sessionKey": "main", "message": "hello there", "idempotencyKey": "k1"})
	runID, _ := ack["runId"].(string)
	if runID == "" || runID == "k1" || ack["status"] != "started" {
		t.Fatalf("chat.send ack %v: want a run ID of the gateway's, status started", ack)
	}
	if len(c.events) > 0 {
		t.Fatalf("events before the ack: %v", c.events)
	}
	chat := c.chatUntil(runID)
	final := chat[len(chat)-1]
	if final["state"] != "final" || final["sessionKey"] != "agent:main:main" || messageText(final) != "echo: hello there" {
		t.Fatalf("final chat event %v: want the reply in message", final)
	}
	var cum string
	for i, d := range chat[:len(chat)-1] {
		cum += d["deltaText"].(string)
		if d["state"] != "delta" || messageText(d) != cum {
			t.Fatalf("delta %d %v: want cumulative message %q", i, d, cum)
		}
	}
	if cum != "echo: hello there" {
		t.Fatalf("deltas add up to %q", cum)
	}
	// The /ws client of the session saw the same turn.
	if got := web.readTurn(); got.text() != "echo: hello there" {
		t.Fatalf("/ws client saw %q", got.text())
	}
	wantTranscript(t, ts.readJSONL(t, "main"), "user", "hello there", "assistant", "echo: hello there")
	var list struct {
		Sessions []struct{ SessionID, Channel string }
	}
	ts.doJSON(t, "GET", "/api/sessions", nil, http.StatusOK, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].SessionID != "main" {
		t.Fatalf("GET /api/sessions: %+v", list)
	}

	// The same key again is answered, not run again.
	again := c.ok("chat.send", map[string]any{"sessionKey": "main", "message": "hello there", "idempotencyKey": "k1"})
	if again["runId"] != runID || again["status"] != "ok" {
		t.Fatalf("repeated key: %v", again)
	}
	hist := c.ok("chat.history", map[string]any{"sessionKey": "agent:main:main"})
	msgs, _ := hist["messages"].([]any)
	if len(msgs) != 2 || messageText(msgs[1].(map[string]any)) != "echo: hello there" {
		t.Fatalf("chat.history after a repeated key: %v", hist)
	}
	wantTranscript(t, ts.readJSONL(t, "main"), "user", "hello there", "assistant", "echo: hello there")
}

func messageText(p map[string]any) string {
	m, _ := p["message"].(map[string]any)
	if m == nil {
		m = p
	}
	parts, _ := m["content"].([]any)
	var b strings.Builder
	for _, part := range parts {
		if x, ok := part.(map[string]any); ok {
			b.WriteString(fmt.Sprint(x["text"]))
		}
	}
	return b.String()
}

// A message from /ws reaches OpenClaw's clients as chat and agent events of
// its session's key, each with a per-run sequence from 1.
func TestOpenClawSeesWebChat(t *testing.T) {
	ts := echoServer(t)
	c := helloOC(t, ts, "")
	web := ts.dial(t, "/ws?sessionId=work-1")
	web.chat("from the web")
	start := c.nextEvent("agent")
	if start["stream"] != "lifecycle" || start["seq"] != float64(1) || start["sessionKey"] != "agent:main:work-1" {
		t.Fatalf("first agent event %v: want lifecycle, seq 1, key agent:main:work-1", start)
	}
	runID := start["runId"].(string)
	chat := c.chatUntil(runID)
	if final := chat[len(chat)-1]; final["state"] != "final" || final["sessionKey"] != "agent:main:work-1" || messageText(final) != "echo: from the web" {
		t.Fatalf("final %v", final)
	}
	for i, p := range chat {
		if p["seq"] != float64(i+1) {
			t.Fatalf("chat event %d of the run has seq %v, want %d", i+1, p["seq"], i+1)
		}
	}
	list := c.ok("sessions.list", map[string]any{})
	rows, _ := list["sessions"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["key"] != "agent:main:work-1" {
		t.Fatalf("sessions.list: %v", list)
	}
}

// The agent method answers twice on one request id: accepted, then the
// final result with the reply. Its first event is held until at least
// 50 ms after the acceptance (OpenClaw's TUI pacing).
func TestOpenClawAgentMethod(t *testing.T) {
	ts := echoServer(t)
	c := helloOC(t, ts, "")
	id := c.call("agent", map[string]any{"message": "ping", "idempotencyKey": "a1"})
	first := c.response(id)
	p, _ := first["payload"].(map[string]any)
	if first["ok"] != true || p["status"] != "accepted" || p["runId"] != "a1" {
		t.Fatalf("first response %v: want accepted", first)
	}
	second := c.response(id)
	p2, _ := second["payload"].(map[string]any)
	result, _ := p2["result"].(map[string]any)
	payloads, _ := result["payloads"].([]any)
	if second["ok"] != true || p2["status"] != "ok" || len(payloads) != 1 || payloads[0].(map[string]any)["text"] != "echo: ping" {
		t.Fatalf("second response %v: want ok with the reply", second)
	}
	start := c.nextEvent("agent")
	if start["runId"] != "a1" || start["stream"] != "lifecycle" {
		t.Fatalf("first agent event %v", start)
	}
	if held := start["ts"].(float64) - p["acceptedAt"].(float64); held < 50 {
		t.Fatalf("first event %v ms after the acceptance, want at least 50", held)
	}
	wantTranscript(t, ts.readJSONL(t, "main"), "user", "ping", "assistant", "echo: ping")
}

func TestOpenClawAbort(t *testing.T) {
	ts := scriptServer(t, `[{"text": "one two three four five six seven eight nine ten", "chunkDelayMs": 200}]`)
	c := helloOC(t, ts, "")
	runID := c.ok("chat.send", map[string]any{"sessionKey": "slow", "message": "go", "idempotencyKey": "s1"})["runId"].(string)
	for c.nextEvent("chat")["state"] != "delta" {
	}
	if res := c.ok("chat.abort", map[string]any{"sessionKey": "slow", "runId": "another"}); res["aborted"] != false {
		t.Fatalf("chat.abort of another run: %v", res)
	}
	res := c.ok("chat.abort", map[string]any{"sessionKey": "slow", "runId": runID})
	if res["aborted"] != true {
		t.Fatalf("chat.abort: %v", res)
	}
	chat := c.chatUntil(runID)
	if end := chat[len(chat)-1]; end["state"] != "aborted" {
		t.Fatalf("end of an aborted run: %v", end)
	}
	if res := c.ok("chat.abort", map[string]any{"sessionKey": "slow"}); res["aborted"] != false {
		t.Fatalf("chat.abort of an idle session: %v", res)
	}
}

func TestOpenClawMethods(t *testing.T) {
	ts := echoServer(t)
	c := helloOC(t, ts, "")
	res := c.response(c.call("no.such.method", map[string]any{}))
	e, _ := res["error"].(map[string]any)
	if res["ok"] != false || e["code"] != "INVALID_REQUEST" || !strings.Contains(fmt.Sprint(e["message"]), "no.such.method") {
		t.Fatalf("unknown method: %v", res)
	}
	res = c.response(c.call("chat.send", map[string]any{"sessionKey": "main", "message": " ", "idempotencyKey": "e"}))
	if e, _ := res["error"].(map[string]any); res["ok"] != false || e["code"] != "INVALID_REQUEST" {
		t.Fatalf("chat.send of an empty message: %v", res)
	}
	res = c.response(c.call("chat.send", map[string]any{"sessionKey": "agent:x:" + strings.Repeat("y", 100), "message": "x", "idempotencyKey": "f"}))
	if e, _ := res["error"].(map[string]any); res["ok"] != false || !strings.Contains(fmt.Sprint(e["message"]), "too long") {
		t.Fatalf("chat.send to a key too long to map: %v", res)
	}
	if a := c.ok("agents.list", map[string]any{}); a["defaultId"] != "main" {
		t.Errorf("agents.list: %v", a)
	}
	if cmds := c.ok("commands.list", map[string]any{}); cmds["commands"] == nil {
		t.Errorf("commands.list: %v", cmds)
	}
	if d := c.ok("sessions.describe", map[string]any{"key": "main"}); d["key"] != openclaw.MainKey {
		t.Errorf("sessions.describe: %v", d)
	}
	if s := c.ok("sessions.subscribe", map[string]any{}); s["subscribed"] != true {
		t.Errorf("sessions.subscribe: %v", s)
	}
}

// A client that opened /openclaw and never sends connect does not hold up
// shutdown: its handshake ends with the gateway's turns, not after its own
// timeout.
func TestOpenClawShutdownDuringHandshake(t *testing.T) {
	ts := echoServer(t, func(o *gateway.Options) { o.ShutdownGrace = 100 * time.Millisecond })
	c := dialOC(t, ts) // challenge read, no connect sent
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a client in its handshake: %v", err)
	}
	if _, err := c.tryRead(); err == nil {
		t.Fatal("the connection is still open after shutdown")
	}
}

// A long reply streamed in thousands of chunks to an OpenClaw client that
// reads only once the turn is over does not overflow its send queue (which
// would close it): deltas are coalesced, and the final event carries all.
func TestOpenClawLongReplyToSlowReader(t *testing.T) {
	ts := echoServer(t)
	web := ts.dial(t, "/ws?sessionId=long")
	c := helloOC(t, ts, "")
	words := strings.TrimSpace(strings.Repeat("word ", 3000))
	id := c.call("chat.send", map[string]any{"sessionKey": "long", "message": words, "idempotencyKey": "L"})
	web.readTurn() // the turn is over; the OpenClaw client has read nothing yet
	runID := c.response(id)["payload"].(map[string]any)["runId"].(string)
	chat := c.chatUntil(runID)
	final := chat[len(chat)-1]
	if final["state"] != "final" || messageText(final) != "echo: "+words {
		t.Fatalf("final event %v…", fmt.Sprint(final)[:200])
	}
}
