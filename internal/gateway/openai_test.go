package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/protocol"
)

// pacedProvider answers the user message X with "reply to X:" at once and
// " done" once it may go on: when next gives a value (or is closed), or the
// turn ends. It announces each call on started with X, and reports usage.
type pacedProvider struct {
	started chan string
	next    chan struct{}
}

// newPaced is a pacedProvider; go says whether replies run straight
// through (next closed) or wait for the test.
func newPaced(straight bool) pacedProvider {
	p := pacedProvider{started: make(chan string, 100), next: make(chan struct{})}
	if straight {
		close(p.next)
	}
	return p
}

func (pacedProvider) Name() string { return "paced" }

func (p pacedProvider) Complete(ctx context.Context, req core.Request, onText func(string)) (core.Response, error) {
	x := ""
	for _, m := range req.Messages {
		if m.Role == core.RoleUser {
			x = m.Content
		}
	}
	head := "reply to " + x + ":"
	onText(head)
	p.started <- x
	select {
	case <-p.next:
	case <-ctx.Done():
		return core.Response{Text: head}, context.Cause(ctx)
	}
	onText(" done")
	return core.Response{Text: head + " done", StopReason: "end_turn",
		Usage: core.Usage{InputTokens: 10, CacheReadTokens: 2, OutputTokens: 5}}, nil
}

// chatBody is a chat completion request for model miniclaw whose last
// message is the user message content.
func chatBody(content string, extra map[string]any) map[string]any {
	b := map[string]any{"model": "miniclaw", "messages": []any{
		map[string]string{"role": "system", "content": "the client's system prompt is not replayed"},
		map[string]string{"role": "user", "content": content},
	}}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// post sends a chat completion; it returns the response with its body
// unread (closed at the end of the test).
func (ts *testServer) post(t *testing.T, ctx context.Context, body any, header http.Header) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", ts.httpURL("/v1/chat/completions"), strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/chat/completions: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sse reads a stream's data lines one by one.
type sse struct {
	t  *testing.T
	sc *bufio.Scanner
}

func newSSE(t *testing.T, resp *http.Response) *sse {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream answered %d %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	return &sse{t: t, sc: bufio.NewScanner(resp.Body)}
}

// next is the next data line's payload; each is followed by a blank line.
func (s *sse) next() string {
	s.t.Helper()
	if !s.sc.Scan() {
		s.t.Fatalf("stream ended early: %v", s.sc.Err())
	}
	data, ok := strings.CutPrefix(s.sc.Text(), "data: ")
	if !ok || !s.sc.Scan() || s.sc.Text() != "" {
		s.t.Fatalf("line %q is not an SSE data line followed by a blank line", s.sc.Text())
	}
	return data
}

// rest reads the stream to its end.
func (s *sse) rest() []string {
	s.t.Helper()
	var out []string
	for s.sc.Scan() {
		out = append(out, strings.TrimPrefix(s.sc.Text(), "data: "))
		s.sc.Scan()
	}
	return out
}

var volatile = regexp.MustCompile(`"chatcmpl-[0-9a-f]{32}"|"created":[0-9]+`)

// stable replaces an answer's ID and time by placeholders.
func stable(s string) string {
	return volatile.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, `"created"`) {
			return `"created":T`
		}
		return `"ID"`
	})
}

// userSessionOf is the documented session of an OpenAI user.
func userSessionOf(user string) string { return derived("openai", user) }

// derived is the documented session of a key: prefix, '-', the key's first
// 48 characters made safe, '-', 12 hex digits of its SHA-256.
func derived(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	readable := regexp.MustCompile(`[^A-Za-z0-9._-]`).ReplaceAllString(key, "_")
	readable = readable[:min(len(readable), 48)]
	return prefix + "-" + readable + "-" + hex.EncodeToString(sum[:6])
}

// TestOpenAIModels: GET /v1/models lists the agent as "miniclaw" with the
// provider and model it runs; both names are served one by one, others
// are model_not_found.
func TestOpenAIModels(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	status, b := ts.do(t, "GET", "/v1/models", nil, nil)
	want := `{"object":"list","data":[{"id":"miniclaw","object":"model","created":T,"owned_by":"miniclaw","provider":"scripted","provider_model":"test-model"}]}` + "\n"
	if status != 200 || stable(string(b)) != want {
		t.Fatalf("GET /v1/models: %d %s, want 200 %s", status, b, want)
	}
	for _, id := range []string{"miniclaw", "test-model"} {
		status, b := ts.do(t, "GET", "/v1/models/"+id, nil, nil)
		want := `{"id":"` + id + `","object":"model","created":T,"owned_by":"miniclaw","provider":"scripted","provider_model":"test-model"}` + "\n"
		if status != 200 || stable(string(b)) != want {
			t.Fatalf("GET /v1/models/%s: %d %s, want 200 %s", id, status, b, want)
		}
	}
	wantOpenAIError(t, ts, "GET", "/v1/models/gpt-4o", nil, nil, 404, "invalid_request_error", "model_not_found", "")
}

// openAIErrorBody is an error answer of /v1, every member kept.
type openAIErrorBody struct {
	Error map[string]any `json:"error"`
}

// wantOpenAIError sends a request and checks its error answer: the status,
// exactly the members message, type, param and code, their values.
func wantOpenAIError(t *testing.T, ts *testServer, method, path string, body any, header http.Header, status int, typ, code, param string) string {
	t.Helper()
	got, b := ts.do(t, method, path, body, header)
	return checkOpenAIError(t, method+" "+path, got, b, status, typ, code, param)
}

// checkOpenAIError checks the status and body of an error answer to what.
func checkOpenAIError(t *testing.T, what string, got int, b []byte, status int, typ, code, param string) string {
	t.Helper()
	var e openAIErrorBody
	if err := json.Unmarshal(b, &e); err != nil || got != status {
		t.Fatalf("%s: %d %s, want %d with an OpenAI error", what, got, b, status)
	}
	var wantParam any
	if param != "" {
		wantParam = param
	}
	msg, _ := e.Error["message"].(string)
	if len(e.Error) != 4 || msg == "" || e.Error["type"] != typ || e.Error["code"] != code || e.Error["param"] != wantParam {
		t.Fatalf("%s: error %s, want type %q code %q param %v with a message", what, b, typ, code, wantParam)
	}
	return msg
}

// TestOpenAIChat: a chat completion runs the last user message as a turn of
// the user's session and answers in OpenAI's shape, usage counted as the
// provider reported it; the client's earlier messages are not replayed:
// the transcript is the history. The same user gets the same session,
// listed with channel openai.
func TestOpenAIChat(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newPaced(true))
	user := "alice@example.com"
	id := userSessionOf(user)
	for i, content := range []string{"hi", "again"} {
		resp := ts.post(t, context.Background(), chatBody(content, map[string]any{"user": user}), nil)
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		want := `{"id":"ID","object":"chat.completion","created":T,"model":"miniclaw","choices":[{"index":0,"message":{"role":"assistant","content":"reply to ` + content +
			`: done"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}` + "\n"
		if resp.StatusCode != 200 || stable(b.String()) != want {
			t.Fatalf("request %d: %d %s, want 200 %s", i, resp.StatusCode, b.String(), want)
		}
		if got := resp.Header.Get("X-Miniclaw-Session"); got != id {
			t.Fatalf("X-Miniclaw-Session = %q, want %q", got, id)
		}
	}
	wantTranscript(t, ts.readJSONL(t, id), "user", "hi", "assistant", "reply to hi: done", "user", "again", "assistant", "reply to again: done")
	if m := ts.readMeta(t, id); m.Channel != "openai" {
		t.Fatalf("session %s has channel %q, want openai", id, m.Channel)
	}
	var list listView
	ts.doJSON(t, "GET", "/api/sessions", nil, 200, &list)
	if ids := list.ids(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("sessions %v, want only %s", ids, id)
	}
}

// TestOpenAISessions: without user every request gets a new session; users
// that differ only in characters a session ID cannot hold get sessions of
// their own, a long user a valid ID; an Open WebUI chat has its own session
// (over its user's); X-Miniclaw-Session names a session directly, over
// both, and is validated like any session ID.
func TestOpenAISessions(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	session := func(extra map[string]any, header http.Header) string {
		t.Helper()
		resp := ts.post(t, context.Background(), chatBody("x", extra), header)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		id := resp.Header.Get("X-Miniclaw-Session")
		if err := protocol.ValidateSessionID(id); err != nil {
			t.Fatalf("X-Miniclaw-Session %q: %v", id, err)
		}
		return id
	}
	a, b := session(nil, nil), session(nil, nil)
	if a == b || !strings.HasPrefix(a, "openai-") {
		t.Fatalf("requests without user got sessions %q and %q, want two new openai-… sessions", a, b)
	}
	long := strings.Repeat("ü", 100)
	for _, user := range []string{"a@b", "a_b", long} {
		if got, want := session(map[string]any{"user": user}, nil), userSessionOf(user); got != want {
			t.Fatalf("user %q: session %q, want %q", user, got, want)
		}
	}
	if userSessionOf("a@b") == userSessionOf("a_b") {
		t.Fatal("users a@b and a_b share a session")
	}
	chat := http.Header{"X-Openwebui-Chat-Id": {"4f9c2e1a-0b7d-4c4e-9a55-1f2e3d4c5b6a"}}
	if got, want := session(map[string]any{"user": "bob"}, chat), derived("openwebui", "4f9c2e1a-0b7d-4c4e-9a55-1f2e3d4c5b6a"); got != want {
		t.Fatalf("X-OpenWebUI-Chat-Id: session %q, want %q (the chat's, over the user's)", got, want)
	}
	named := http.Header{"X-Miniclaw-Session": {"my-notes"}, "X-Openwebui-Chat-Id": chat["X-Openwebui-Chat-Id"]}
	if got := session(map[string]any{"user": "bob"}, named); got != "my-notes" {
		t.Fatalf("X-Miniclaw-Session my-notes: session %q", got)
	}
	wantTranscript(t, ts.readJSONL(t, "my-notes"), "user", "x", "assistant", "echo: x")
	msg := wantOpenAIError(t, ts, "POST", "/v1/chat/completions", chatBody("x", nil), http.Header{"X-Miniclaw-Session": {"../etc"}}, 400, "invalid_request_error", "bad_request", "")
	if !strings.Contains(msg, "X-Miniclaw-Session") {
		t.Fatalf("error %q does not name the header", msg)
	}
}

// TestOpenAIStream: stream answers chat.completion.chunk events, byte for
// byte: the role first, the reply's text as it comes, the finish reason,
// the usage chunk asked for by stream_options, [DONE].
func TestOpenAIStream(t *testing.T) {
	t.Parallel()
	ts := startServer(t, newPaced(true))
	resp := ts.post(t, context.Background(), chatBody("hi", map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}}), nil)
	s := newSSE(t, resp)
	head := `{"id":"ID","object":"chat.completion.chunk","created":T,"model":"miniclaw","choices":[`
	// The text chunks may be merged when the handler is behind the turn:
	// they are checked by what they add up to.
	var got []string
	var text strings.Builder
	for _, d := range append([]string{s.next()}, s.rest()...) {
		if strings.HasPrefix(stable(d), head+`{"index":0,"delta":{"content":`) {
			text.WriteString(deltaText(t, d))
			continue
		}
		got = append(got, stable(d))
	}
	want := []string{
		head + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		head + `{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		head + `],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`,
		"[DONE]",
	}
	if text.String() != "reply to hi: done" || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stream text %q, events:\n%s\nwant text %q and:\n%s", text.String(), strings.Join(got, "\n"), "reply to hi: done", strings.Join(want, "\n"))
	}
}

// TestOpenAIStreamError: a turn that fails (here: aborted by a WebChat
// client of the session) ends the stream with the error in OpenAI's shape
// as the last data line, after the text streamed so far, without [DONE].
func TestOpenAIStreamError(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p)
	s := newSSE(t, ts.post(t, context.Background(), chatBody("hi", map[string]any{"stream": true, "user": "e"}), nil))
	s.next() // the role
	<-p.started
	ws := ts.dial(t, "/ws?sessionId="+userSessionOf("e"))
	ws.send(map[string]string{"type": "abort"})
	rest := s.rest()
	if n := len(rest); n == 0 || !strings.Contains(rest[0], `"content":"reply to hi:"`) ||
		rest[n-1] != `{"error":{"message":"turn aborted by the user","type":"invalid_request_error","param":null,"code":"aborted"}}` {
		t.Fatalf("stream after the role: %q, want the text then the aborted error", rest)
	}
}

// TestOpenAIUserQueue: requests of one user queue on the session's lane in
// order; each answer carries its own turn only, while a WebSocket client
// of the session sees both turns.
func TestOpenAIUserQueue(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p)
	user := map[string]any{"user": "u", "stream": true}
	a := newSSE(t, ts.post(t, context.Background(), chatBody("A", user), nil))
	if got := <-p.started; got != "A" {
		t.Fatalf("first turn for %q, want A", got)
	}
	id := userSessionOf("u")
	ws := ts.dial(t, "/ws?sessionId="+id)
	bDone := make(chan *http.Response, 1)
	go func() {
		bDone <- ts.post(t, context.Background(), chatBody("B", map[string]any{"user": "u"}), nil)
	}()
	eventually(t, "B queued behind A", func() bool { return ts.queuedBytes(t) == 1 })
	p.next <- struct{}{}
	aText := streamText(t, a)
	if aText != "reply to A: done" {
		t.Fatalf("A's stream holds %q, want only A's reply", aText)
	}
	if got := <-p.started; got != "B" {
		t.Fatalf("second turn for %q, want B", got)
	}
	p.next <- struct{}{}
	var b struct {
		Choices []struct{ Message struct{ Content string } }
	}
	resp := <-bDone
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || len(b.Choices) != 1 || b.Choices[0].Message.Content != "reply to B: done" {
		t.Fatalf("B's answer %+v (%v), want B's reply", b, err)
	}
	if done := ws.readTurn().done; done.Type != "message_done" || done.Content != "reply to A: done" {
		t.Fatalf("WebSocket client saw A end with %s", done.Raw)
	}
	if tn := ws.readTurn(); tn.done.Content != "reply to B: done" || tn.text() != "reply to B: done" {
		t.Fatalf("WebSocket client saw B as %q then %s", tn.text(), tn.done.Raw)
	}
	wantTranscript(t, ts.readJSONL(t, id), "user", "A", "assistant", "reply to A: done", "user", "B", "assistant", "reply to B: done")
}

// streamText reads a stream to [DONE] and returns its text.
func streamText(t *testing.T, s *sse) string {
	t.Helper()
	var text strings.Builder
	for _, d := range append([]string{s.next()}, s.rest()...) {
		if d == "[DONE]" {
			return text.String()
		}
		text.WriteString(deltaText(t, d))
	}
	t.Fatalf("stream ended without [DONE] after %q", text.String())
	return ""
}

// deltaText is the text a chunk adds.
func deltaText(t *testing.T, data string) string {
	t.Helper()
	var c struct {
		Choices []struct{ Delta struct{ Content string } }
	}
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatalf("data %s: %v", data, err)
	}
	text := ""
	for _, ch := range c.Choices {
		text += ch.Delta.Content
	}
	return text
}

// TestOpenAIClientGone: a client that disconnects mid-stream does not stop
// its turn: the whole reply is stored, and the session's next request runs
// after it.
func TestOpenAIClientGone(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	s := newSSE(t, ts.post(t, ctx, chatBody("X", map[string]any{"user": "d", "stream": true}), nil))
	s.next() // the role
	<-p.started
	if d := s.next(); !strings.Contains(d, `"content":"reply to X:"`) {
		t.Fatalf("first text chunk %s", d)
	}
	cancel()
	close(p.next)
	resp := ts.post(t, context.Background(), chatBody("Y", map[string]any{"user": "d"}), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("next request: %d", resp.StatusCode)
	}
	wantTranscript(t, ts.readJSONL(t, userSessionOf("d")), "user", "X", "assistant", "reply to X: done", "user", "Y", "assistant", "reply to Y: done")
}

// TestOpenAIErrors: every refusal under /v1 is an OpenAI error naming the
// field at fault, and nothing is stored for it.
func TestOpenAIErrors(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	msgs := func(m ...any) map[string]any { return map[string]any{"model": "miniclaw", "messages": m} }
	user := func(content any) map[string]any { return map[string]any{"role": "user", "content": content} }
	image := map[string]any{"type": "image_url", "image_url": map[string]string{"url": "data:,"}}
	text := map[string]any{"type": "text", "text": "look"}
	for _, c := range []struct {
		name   string
		body   any
		header http.Header
		status int
		code   string
		param  string
	}{
		{"no model", map[string]any{"messages": []any{user("x")}}, nil, 400, "bad_request", "model"},
		{"unknown model", map[string]any{"model": "gpt-4o", "messages": []any{user("x")}}, nil, 404, "model_not_found", "model"},
		{"model not a string", map[string]any{"model": 4, "messages": []any{user("x")}}, nil, 400, "bad_request", "model"},
		{"no messages", msgs(), nil, 400, "bad_request", "messages"},
		{"last not user", msgs(user("x"), map[string]any{"role": "assistant", "content": "y"}), nil, 400, "bad_request", "messages[1].role"},
		{"empty content", msgs(user("")), nil, 400, "bad_request", "messages[0].content"},
		{"content a number", msgs(user(3)), nil, 400, "bad_request", "messages[0].content"},
		{"image part", msgs(user("x"), user("y"), user([]any{text, image})), nil, 400, "bad_request", "messages[2].content[1].type"},
		{"part without text", msgs(user([]any{map[string]any{"type": "text"}})), nil, 400, "bad_request", "messages[0].content[0].text"},
		{"n 2", map[string]any{"model": "miniclaw", "n": 2, "messages": []any{user("x")}}, nil, 400, "bad_request", "n"},
		{"user not a string", map[string]any{"model": "miniclaw", "user": map[string]any{"id": 1}, "messages": []any{user("x")}}, nil, 400, "bad_request", "user"},
		{"not JSON", "{", nil, 400, "bad_json", ""},
		{"duplicate member", `{"model":"miniclaw","model":"x","messages":[]}`, nil, 400, "bad_request", ""},
		{"too large", msgs(user(strings.Repeat("x", 1<<20))), nil, 413, "too_large", ""},
		{"not declared JSON", msgs(user("x")), http.Header{"Content-Type": {"text/plain"}}, 415, "bad_request", ""},
		{"foreign Origin", msgs(user("x")), http.Header{"Origin": {"https://evil.example"}}, 403, "forbidden", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantOpenAIError(t, ts, "POST", "/v1/chat/completions", c.body, c.header, c.status, errType(c.status), c.code, c.param)
		})
	}
	wantOpenAIError(t, ts, "GET", "/v1/completions", nil, nil, 404, "invalid_request_error", "unknown_url", "")
	wantOpenAIError(t, ts, "GET", "/v1/chat/completions", nil, nil, 405, "invalid_request_error", "method_not_allowed", "")
	wantOpenAIError(t, ts, "DELETE", "/v1/models/miniclaw", nil, nil, 405, "invalid_request_error", "method_not_allowed", "")
	var list listView
	ts.doJSON(t, "GET", "/api/sessions", nil, 200, &list)
	if len(list.Sessions) != 0 {
		t.Fatalf("refused requests left sessions: %v", list.ids())
	}
}

// errType is OpenAI's error type of a status.
func errType(status int) string {
	switch status {
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	}
	return "invalid_request_error"
}

// TestOpenAIAuth: with a token, /v1 takes it as the API key (a Bearer
// header, not ?token=, which would end up in logs); a missing or wrong key
// is 401 invalid_api_key before anything else, unknown paths included.
func TestOpenAIAuth(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, withToken("s3cret"))
	for _, h := range []http.Header{nil, {"Authorization": {"Bearer nope"}}, {"Authorization": {"Basic czNjcmV0"}}} {
		wantOpenAIError(t, ts, "GET", "/v1/models", nil, h, 401, "authentication_error", "invalid_api_key", "")
		wantOpenAIError(t, ts, "POST", "/v1/chat/completions", chatBody("x", nil), h, 401, "authentication_error", "invalid_api_key", "")
		wantOpenAIError(t, ts, "GET", "/v1/nowhere", nil, h, 401, "authentication_error", "invalid_api_key", "")
	}
	wantOpenAIError(t, ts, "GET", "/v1/models?token=s3cret", nil, nil, 401, "authentication_error", "invalid_api_key", "")
	key := http.Header{"Authorization": {"Bearer s3cret"}}
	if status, b := ts.do(t, "GET", "/v1/models", nil, key); status != 200 {
		t.Fatalf("GET /v1/models with the key: %d %s", status, b)
	}
	if resp := ts.post(t, context.Background(), chatBody("x", nil), key); resp.StatusCode != 200 {
		t.Fatalf("POST /v1/chat/completions with the key: %d", resp.StatusCode)
	}
}

// TestOpenAIHost: without a token, a foreign Host (DNS rebinding) is
// refused under /v1 too, in OpenAI's shape.
func TestOpenAIHost(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	status, b := ts.hostGet(t, "evil.example", "/v1/models", nil)
	msg := checkOpenAIError(t, "GET http://evil.example/v1/models", status, []byte(b), 421, "invalid_request_error", "misdirected_request", "")
	if !strings.Contains(msg, "MINI_OPENCLAW_ALLOWED_HOSTS") {
		t.Fatalf("421 message %q does not say what to set", msg)
	}
}

// TestOpenAIToolProgress: tools run server-side; a stream shows them as
// text only when X-Miniclaw-Tool-Progress: 1 asks for it.
func TestOpenAIToolProgress(t *testing.T) {
	t.Parallel()
	tool := `{"toolCalls":[{"name":"list_files","input":{}}]},{"text":"done"}`
	ts := scriptServer(t, "["+tool+","+tool+"]", withFileTools(t))
	stream := map[string]any{"stream": true}
	plain := streamText(t, newSSE(t, ts.post(t, context.Background(), chatBody("x", stream), nil)))
	shown := streamText(t, newSSE(t, ts.post(t, context.Background(), chatBody("x", stream), http.Header{"X-Miniclaw-Tool-Progress": {"1"}})))
	if plain != "done" || shown != "\n\n> tool: list_files\n\ndone" {
		t.Fatalf("stream texts %q and, with tool progress, %q", plain, shown)
	}
}

// TestOpenAIStreamKeepalive: a stream that waits (its turn queued or a
// tool running) carries SSE comments, which clients skip, so that proxies
// do not cut it.
func TestOpenAIStreamKeepalive(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p, func(o *gateway.Options) { o.Keepalive = 20 * time.Millisecond })
	resp := ts.post(t, context.Background(), chatBody("x", map[string]any{"stream": true}), nil)
	s := newSSE(t, resp)
	s.next() // the role
	<-p.started
	// The reply's first words; keepalives may come before them, while the
	// model starts.
	for s.sc.Scan() && s.sc.Text() == ": keepalive" && s.sc.Scan() && s.sc.Text() == "" {
	}
	if line := s.sc.Text(); !strings.HasPrefix(line, "data: ") || !strings.Contains(line, "reply to x:") || !s.sc.Scan() || s.sc.Text() != "" {
		t.Fatalf("the stream sent %q, want the reply's first words", line)
	}
	if !s.sc.Scan() || s.sc.Text() != ": keepalive" || !s.sc.Scan() || s.sc.Text() != "" {
		t.Fatalf("a waiting stream sent %q, want an SSE comment", s.sc.Text())
	}
	close(p.next)
	for s.sc.Scan() && s.sc.Text() != "data: [DONE]" {
	}
	if s.sc.Text() != "data: [DONE]" {
		t.Fatalf("stream ended without [DONE]: %v", s.sc.Err())
	}
}

// TestOpenAIStreamShutdown: a shutdown whose deadline passes interrupts a
// streamed turn: the stream ends with the shutting_down error, the partial
// reply is stored as interrupted, and Shutdown returns.
func TestOpenAIStreamShutdown(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p)
	s := newSSE(t, ts.post(t, context.Background(), chatBody("x", map[string]any{"stream": true, "user": "s"}), nil))
	s.next() // the role
	<-p.started
	done := ts.shutdown(0)
	rest := s.rest()
	if n := len(rest); n == 0 || !strings.Contains(rest[n-1], `"type":"server_error","param":null,"code":"shutting_down"}}`) {
		t.Fatalf("stream after the role: %q, want it to end with the shutting_down error", rest)
	}
	wantShutdownReturns(t, done)
	tr := ts.readJSONL(t, userSessionOf("s"))
	if len(tr) != 2 || tr[1].Content != "reply to x:" || tr[1].Status != "interrupted" {
		t.Fatalf("transcript %+v, want the partial reply marked interrupted", tr)
	}
}

// TestOpenAIAborted: a turn aborted by a WebChat client of the session
// answers 409 aborted, with X-Should-Retry: false so that no SDK runs the
// stored message again.
func TestOpenAIAborted(t *testing.T) {
	t.Parallel()
	p := newPaced(false)
	ts := startServer(t, p)
	answer := make(chan *http.Response, 1)
	go func() { answer <- ts.post(t, context.Background(), chatBody("x", map[string]any{"user": "a"}), nil) }()
	<-p.started
	ts.dial(t, "/ws?sessionId="+userSessionOf("a")).send(map[string]string{"type": "abort"})
	resp := <-answer
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	checkOpenAIError(t, "aborted turn", resp.StatusCode, []byte(b.String()), 409, "invalid_request_error", "aborted", "")
	if got := resp.Header.Get("X-Should-Retry"); got != "false" {
		t.Fatalf("X-Should-Retry = %q, want false", got)
	}
}
