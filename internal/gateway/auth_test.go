package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestTokenAuth: with a token set, the WebSocket and /api need it, as a
// Bearer header or ?token=; the health probes do not.
func TestTokenAuth(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	ts := echoServer(t, withToken(token), withPage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("page"))
	})))
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	refused := []struct {
		name, path string
		header     http.Header
	}{
		{"no token on /ws", "/ws", nil},
		{"no token on /", "/", nil},
		{"wrong ?token=", "/ws?token=wrong", nil},
		{"wrong Bearer", "/ws", bearer("wrong")},
		{"token prefix", "/ws?token=s3cret", nil},
		{"empty Bearer", "/ws", bearer("")},
		{"not a Bearer header", "/ws", http.Header{"Authorization": {token}}},
		{"right ?token= with a wrong Bearer", "/ws?token=" + token, bearer("wrong")},
	}
	for _, tc := range refused {
		if got := ts.dialStatus(t, tc.path, tc.header); got != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, got)
		}
	}
	if n := len(mustList(t, ts.store)); n != 0 {
		t.Errorf("refused connections created %d session(s)", n)
	}

	for _, tc := range []struct {
		name, path string
		header     http.Header
	}{
		{"?token= on /ws", "/ws?token=" + token + "&sessionId=by-query", nil},
		{"?token= on /", "/?token=" + token + "&sessionId=by-query-root", nil},
		{"Bearer", "/ws?sessionId=by-header", bearer(token)},
		{"bearer, any case", "/ws?sessionId=by-header", http.Header{"Authorization": {"bearer " + token}}},
	} {
		c := ts.dialHeader(t, tc.path, tc.header)
		if tn := c.chat("hi"); tn.done.Content != "echo: hi" {
			t.Errorf("%s: chat got %s", tc.name, tn.done.Raw)
		}
	}

	// The sessions API: same rules.
	for _, h := range []http.Header{nil, bearer("wrong"), {"Authorization": {"Basic " + token}}} {
		status, body := ts.do(t, "GET", "/api/sessions", nil, h)
		var e apiError
		json.Unmarshal(body, &e)
		if status != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
			t.Errorf("GET /api/sessions with %v: %d %s, want 401 unauthorized", h, status, body)
		}
		if strings.Contains(string(body), token) {
			t.Errorf("the refusal leaks the token: %s", body)
		}
	}
	for path, h := range map[string]http.Header{
		"/api/sessions":                nil,
		"/api/sessions/by-header":      nil,
		"/api/sessions/by-query/fork":  nil,
		"/api/sessions/by-header/fork": bearer("wrong"),
	} {
		method := "GET"
		if strings.HasSuffix(path, "/fork") {
			method = "POST"
		}
		if status, _ := ts.do(t, method, path, nil, h); status != http.StatusUnauthorized {
			t.Errorf("%s %s without the token: %d, want 401", method, path, status)
		}
	}
	if status, body := ts.do(t, "GET", "/api/sessions", nil, bearer(token)); status != http.StatusOK || !strings.Contains(string(body), "by-header") {
		t.Errorf("GET /api/sessions with Bearer: %d %s", status, body)
	}
	if status, _ := ts.do(t, "GET", "/api/sessions/by-query?token="+token, nil, nil); status != http.StatusOK {
		t.Errorf("GET /api/sessions/by-query?token=: %d, want 200", status)
	}
	if status, _ := ts.do(t, "POST", "/api/sessions?token="+token, `{"sessionId":"made-with-token"}`, nil); status != http.StatusCreated {
		t.Errorf("POST /api/sessions?token=: %d, want 201", status)
	}

	// Probes and the page stay open.
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		status, body := ts.do(t, "GET", path, nil, nil)
		if status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s, want 200", path, status, body)
		}
		if strings.Contains(string(body), token) {
			t.Errorf("GET %s leaks the token: %s", path, body)
		}
	}
}

// TestOriginCheck: browsers on other sites cannot open a WebSocket to the
// gateway (no cross-site WebSocket hijacking); the gateway's own page, and
// origins allowed by OriginPatterns, can. Clients that send no Origin (CLI,
// integrations) are not browsers and are let in.
func TestOriginCheck(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, withOrigins("trusted.example", "*.trusted.example:8443"))
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }

	for _, o := range []string{"http://evil.example", "https://trusted.example.evil.example", "http://localhost:1", "null"} {
		if got := ts.dialStatus(t, "/ws?sessionId=hijacked", origin(o)); got != http.StatusForbidden {
			t.Errorf("Origin %s: status %d, want 403", o, got)
		}
	}
	if got := ts.dialStatus(t, "/?sessionId=hijacked", origin("http://evil.example")); got != http.StatusForbidden {
		t.Errorf("Origin evil on /: status %d, want 403", got)
	}
	// A refused upgrade has no effect: no session was created for it.
	if status, body := ts.do(t, "GET", "/api/sessions/hijacked", nil, nil); status != http.StatusNotFound {
		t.Errorf("a refused cross-site upgrade created its session: GET = %d %s", status, body)
	}

	for _, o := range []string{"http://" + ts.addr, "https://trusted.example", "https://app.trusted.example:8443"} {
		c := ts.dialHeader(t, "/ws?sessionId=ok", origin(o))
		if tn := c.chat("from " + o); tn.done.Content != "echo: from "+o {
			t.Errorf("Origin %s: chat got %s", o, tn.done.Raw)
		}
	}
	c := ts.dial(t, "/ws?sessionId=ok") // no Origin header at all
	c.ping()
}
