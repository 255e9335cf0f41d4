package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/miniclaw/miniclaw/internal/gateway"
)

// TestInvalidUTF8Closes1007: a text frame that is not UTF-8 breaks RFC 6455
// and closes the connection with 1007; nothing reaches a transcript.
func TestInvalidUTF8Closes1007(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=utf8")
	c.sendRaw("{\"type\":\"message\",\"content\":\"caf\xe9\"}")
	c.expectClose(websocket.StatusInvalidFramePayloadData)
	if lines := ts.readJSONL(t, "utf8"); len(lines) != 0 {
		t.Fatalf("the refused frame reached the transcript: %+v", lines)
	}
}

// TestAPIFieldsAreExact: the sessions API takes its fields by their exact
// names, once each: no case folding (sessionID, SESSIONID), no duplicates,
// and a channel follows the session ID rule.
func TestAPIFieldsAreExact(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	ts.doJSON(t, "POST", "/api/sessions", map[string]string{"sessionId": "orig"}, http.StatusCreated, nil)
	for _, tc := range []struct{ path, body, want string }{
		{"/api/sessions", `{"sessionID":"folded"}`, `unknown field "sessionID"`},
		{"/api/sessions", `{"SESSIONID":"folded"}`, `unknown field "SESSIONID"`},
		{"/api/sessions", `{"sessionId":"dup-a","sessionId":"dup-b"}`, `field "sessionId" appears more than once`},
		{"/api/sessions", `{"Channel":"cli"}`, `unknown field "Channel"`},
		{"/api/sessions/orig/fork", `{"Messages":1}`, `unknown field "Messages"`},
		{"/api/sessions/orig/fork", `{"messages":1,"messages":2}`, `field "messages" appears more than once`},
		{"/api/sessions", "{\"sessionId\":\"caf\xe9\"}", "not valid UTF-8"},
		{"/api/sessions", `{"channel":"` + strings.Repeat("c", 129) + `"}`, "channel: channel is 129 characters, the limit is 128"},
		{"/api/sessions", `{"channel":"\u001b]52;c;aGk=\u0007"}`, `channel: channel has '\x1b' at byte 0`},
	} {
		var e apiError
		ts.doJSON(t, "POST", tc.path, tc.body, http.StatusBadRequest, &e)
		if e.Error.Code != "bad_request" || !strings.Contains(e.Error.Message, tc.want) {
			t.Errorf("POST %s %s: %+v, want bad_request saying %q", tc.path, tc.body, e.Error, tc.want)
		}
	}
	var list listView
	ts.doJSON(t, "GET", "/api/sessions", nil, http.StatusOK, &list)
	if ids := list.ids(); len(ids) != 1 || ids[0] != "orig" {
		t.Errorf("refused requests changed the sessions: %v", ids)
	}
	ts.doJSON(t, "POST", "/api/sessions", `{"sessionId":"ok","channel":"cli-2"}`, http.StatusCreated, nil)
}

// TestReadyzDiskFull: /readyz is not ready when the data dir's disk has
// less free space than the floor (set here above any real disk).
func TestReadyzDiskFull(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, func(o *gateway.Options) { o.MinFreeDisk = 1 << 62 })
	status, body := ts.do(t, "GET", "/readyz", nil, nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "disk") || !strings.Contains(string(body), "free") {
		t.Fatalf("readyz on a full disk = %d %s, want 503 saying the disk is full", status, body)
	}
	if status, _ := ts.do(t, "GET", "/healthz", nil, nil); status != http.StatusOK {
		t.Fatalf("healthz on a full disk = %d, want 200", status)
	}
	// The default floor is met on the test machine's disk.
	ts2 := echoServer(t)
	if status, body := ts2.do(t, "GET", "/readyz", nil, nil); status != http.StatusOK {
		t.Fatalf("readyz with the default floor = %d %s", status, body)
	}
}
