package gateway_test

// The gateway's HTTP boundary against web pages: DNS rebinding (a foreign
// Host) and cross-site requests (a foreign Origin, a form's Content-Type).

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/gateway"
)

// viaHost is an HTTP client whose every connection goes to the gateway,
// whatever host the URL names: a page on a rebound name, as a browser would
// send it (Host: evil.example:3210).
func (ts *testServer) viaHost() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, ts.addr)
		},
	}}
}

// get does GET http://host/path through viaHost and returns status and body.
func (ts *testServer) hostGet(t *testing.T, host, path string, header http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.viaHost().Do(req)
	if err != nil {
		t.Fatalf("GET http://%s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostDial opens a WebSocket on ws://host/pathAndQuery through viaHost; it
// returns the HTTP status of a refusal, or 101 with the connection.
func (ts *testServer) hostDial(t *testing.T, host, pathAndQuery string, header http.Header) (int, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+host+pathAndQuery, &websocket.DialOptions{HTTPClient: ts.viaHost(), HTTPHeader: header})
	if err == nil {
		t.Cleanup(func() { ws.CloseNow() })
		return http.StatusSwitchingProtocols, ws
	}
	if resp == nil {
		t.Fatalf("dial ws://%s%s: no HTTP answer: %v", host, pathAndQuery, err)
	}
	return resp.StatusCode, nil
}

func withAllowedHosts(hosts ...string) func(*gateway.Options) {
	return func(o *gateway.Options) { o.AllowedHosts = hosts }
}

// TestRebindingHostRefused: without a token, a request whose Host is not a
// loopback name or a listed one (a page on evil.example rebound to
// 127.0.0.1) is refused with 421 before any route runs: it reads no
// transcript, opens no WebSocket, gets no page.
func TestRebindingHostRefused(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, withAllowedHosts("gw.example"), withPage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("page"))
	})))
	ts.dial(t, "/ws?sessionId=secret").chat("private words")
	_, port, _ := net.SplitHostPort(ts.addr)

	for _, host := range []string{"evil.example:3210", "evil.example", "localhost.evil.example:" + port, "127.0.0.1.nip.io:" + port} {
		for _, path := range []string{"/api/sessions", "/api/sessions/secret", "/", "/static/app.js", "/healthz"} {
			status, body := ts.hostGet(t, host, path, nil)
			if status != http.StatusMisdirectedRequest || !strings.Contains(body, "MINI_OPENCLAW_ALLOWED_HOSTS") || strings.Contains(body, "private") {
				t.Errorf("GET %s with Host %s: %d %q, want 421 naming MINI_OPENCLAW_ALLOWED_HOSTS", path, host, status, body)
			}
		}
		for _, path := range []string{"/ws?sessionId=secret", "/?sessionId=secret"} {
			if status, _ := ts.hostDial(t, host, path, nil); status != http.StatusMisdirectedRequest {
				t.Errorf("WebSocket %s with Host %s: status %d, want 421", path, host, status)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port, "gw.example:" + port, "GW.example"} {
		if status, body := ts.hostGet(t, host, "/api/sessions/secret", nil); status != http.StatusOK || !strings.Contains(body, "private words") {
			t.Errorf("GET with Host %s: %d %s, want 200", host, status, body)
		}
		if status, _ := ts.hostDial(t, host, "/ws?sessionId=secret", nil); status != http.StatusSwitchingProtocols {
			t.Errorf("WebSocket with Host %s: status %d, want 101", host, status)
		}
	}
}

// TestRebindingWithToken: with a token any Host is served (the token is the
// guard), but a page's Origin that merely equals an unlisted Host name is no
// longer enough to open a WebSocket.
func TestRebindingWithToken(t *testing.T) {
	t.Parallel()
	const token = "a-token-of-some-length"
	ts := echoServer(t, withToken(token))
	_, port, _ := net.SplitHostPort(ts.addr)
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	if status, _ := ts.hostGet(t, "gw.lan:"+port, "/api/sessions", bearer); status != http.StatusOK {
		t.Errorf("GET /api/sessions with a token and Host gw.lan: %d, want 200", status)
	}
	origin := func(o string) http.Header { return http.Header{"Origin": {o}, "Authorization": {"Bearer " + token}} }
	if status, _ := ts.hostDial(t, "evil.example:3210", "/ws?sessionId=x", origin("http://evil.example:3210")); status != http.StatusForbidden {
		t.Errorf("WebSocket with Host = Origin = evil.example:3210: status %d, want 403", status)
	}
	// Same-origin still works on a loopback name and on an IP address,
	// which no DNS answer can rebind.
	for _, host := range []string{"localhost:" + port, ts.addr} {
		if status, _ := ts.hostDial(t, host, "/ws?sessionId=x", origin("http://"+host)); status != http.StatusSwitchingProtocols {
			t.Errorf("WebSocket with Host = Origin = %s: status %d, want 101", host, status)
		}
	}
	// The session is made once the upgrade is answered: wait for it.
	eventually(t, "the 1 session of the allowed WebSockets", func() bool { return len(mustList(t, ts.store)) == 1 })
}

// TestCrossSiteWritesRefused: a cross-site form or no-cors fetch (text/plain,
// no preflight) cannot create, fork, archive or rename a session, nor can any write
// that carries a foreign Origin; nothing changes on disk.
func TestCrossSiteWritesRefused(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	ts.dial(t, "/ws?sessionId=keep").chat("hello")
	before := transcripts(t, ts.dir)

	writes := []struct{ path, body string }{
		{"/api/sessions", `{"sessionId":"planted"}`},
		{"/api/sessions/keep/fork", `{"sessionId":"planted-fork"}`},
		{"/api/sessions/keep/archive", ``},
		{"/api/sessions/keep/rename", `{"title":"planted"}`},
	}
	for _, w := range writes {
		for _, ctype := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
			status, body := ts.do(t, "POST", w.path, w.body, http.Header{"Content-Type": {ctype}})
			if status != http.StatusUnsupportedMediaType || !strings.Contains(string(body), "application/json") {
				t.Errorf("POST %s as %q: %d %s, want 415 asking for application/json", w.path, ctype, status, body)
			}
		}
		for _, o := range []string{"http://evil.example", "null", "http://localhost:1"} {
			status, body := ts.do(t, "POST", w.path, w.body, http.Header{"Origin": {o}})
			if status != http.StatusForbidden || !strings.Contains(string(body), "Origin") {
				t.Errorf("POST %s from Origin %s: %d %s, want 403 naming the Origin", w.path, o, status, body)
			}
		}
	}
	if after := transcripts(t, ts.dir); !slices.Equal(before, after) {
		t.Errorf("refused writes changed the sessions dir:\n before %v\n after  %v", before, after)
	}
	// The gateway's own page may write.
	if status, body := ts.do(t, "POST", "/api/sessions", `{"sessionId":"mine"}`, http.Header{"Origin": {"http://" + ts.addr}}); status != http.StatusCreated {
		t.Errorf("POST /api/sessions from the gateway's own Origin: %d %s, want 201", status, body)
	}
}

// transcripts lists the .jsonl files of dir and of its archive, sorted.
func transcripts(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{dir, filepath.Join(dir, "archive")} {
		ents, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".jsonl") {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}
