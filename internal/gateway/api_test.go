package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/session"
)

// listView is GET /api/sessions.
type listView struct {
	Sessions []struct {
		session.Meta
		Busy bool `json:"busy"`
	} `json:"sessions"`
}

func (l listView) ids() []string {
	var out []string
	for _, s := range l.Sessions {
		out = append(out, s.SessionID)
	}
	return out
}

// TestSessionsAPI: list, create, page, fork and archive over HTTP.
func TestSessionsAPI(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)

	var list listView
	ts.doJSON(t, "GET", "/api/sessions", nil, http.StatusOK, &list)
	if list.Sessions == nil || len(list.Sessions) != 0 {
		t.Fatalf("empty store lists %s, want an empty array", list.ids())
	}

	// Create: with an ID, without one, and the refusals.
	var created struct {
		session.Meta
		Busy bool `json:"busy"`
	}
	ts.doJSON(t, "POST", "/api/sessions", map[string]string{"sessionId": "api-1"}, http.StatusCreated, &created)
	if created.SessionID != "api-1" || created.Channel != "webchat" || created.MessageCount != 0 || created.CreatedAt == 0 {
		t.Fatalf("created %+v", created)
	}
	ts.doJSON(t, "POST", "/api/sessions", nil, http.StatusCreated, &created)
	if len(created.SessionID) != 36 { // a UUID
		t.Fatalf("POST without a body created %q, want a UUID", created.SessionID)
	}
	generated := created.SessionID
	ts.wantAPIError(t, "POST", "/api/sessions", map[string]string{"sessionId": "api-1"}, http.StatusConflict, "conflict")
	ts.wantAPIError(t, "POST", "/api/sessions", map[string]string{"sessionId": "../api"}, http.StatusBadRequest, "bad_request")
	ts.wantAPIError(t, "POST", "/api/sessions", `{"sessionId":"x","colour":"red"}`, http.StatusBadRequest, "bad_request")
	ts.wantAPIError(t, "POST", "/api/sessions", `{"sessionId":`, http.StatusBadRequest, "bad_request")
	ts.wantAPIError(t, "POST", "/api/sessions", `{"sessionId":"`+strings.Repeat("y", 70<<10)+`"}`, http.StatusRequestEntityTooLarge, "too_large")
	if _, err := os.Stat(filepath.Join(ts.dir, "x.jsonl")); err == nil {
		t.Fatal("a refused create left x.jsonl behind")
	}

	// Two turns on api-1, through the WebSocket.
	c := ts.dial(t, "/ws?sessionId=api-1")
	c.chat("first question")
	c.chat("second question")

	ts.doJSON(t, "GET", "/api/sessions", nil, http.StatusOK, &list)
	if ids := list.ids(); len(ids) != 2 || ids[0] != "api-1" || ids[1] != generated {
		t.Fatalf("list = %v, want api-1 (most recent) then %s", ids, generated)
	}
	if s := list.Sessions[0]; s.MessageCount != 4 || s.Title != "first question" || s.Busy {
		t.Fatalf("api-1 listed as %+v", s)
	}

	// Paging.
	var v sessionView
	ts.doJSON(t, "GET", "/api/sessions/api-1?limit=1", nil, http.StatusOK, &v)
	if len(v.Messages) != 1 || v.Messages[0].Content != "echo: second question" || v.Total != 4 || v.Offset != 3 {
		t.Fatalf("?limit=1 = %+v, want the last message, offset 3, total 4", v)
	}
	if v.Session.SessionID != "api-1" || v.Session.MessageCount != 4 {
		t.Fatalf("?limit=1 session = %+v", v.Session)
	}
	ts.doJSON(t, "GET", "/api/sessions/api-1?offset=0&limit=1", nil, http.StatusOK, &v)
	if len(v.Messages) != 1 || v.Messages[0].Content != "first question" || v.Messages[0].Role != "user" || v.Total != 4 || v.Offset != 0 {
		t.Fatalf("?offset=0&limit=1 = %+v, want the first message", v)
	}
	ts.doJSON(t, "GET", "/api/sessions/api-1?offset=1&limit=2", nil, http.StatusOK, &v)
	if len(v.Messages) != 2 || v.Messages[0].Content != "echo: first question" || v.Messages[1].Content != "second question" {
		t.Fatalf("?offset=1&limit=2 = %+v", v.Messages)
	}
	ts.doJSON(t, "GET", "/api/sessions/api-1", nil, http.StatusOK, &v)
	if len(v.Messages) != 4 || v.Total != 4 || v.Messages[0].Timestamp == 0 {
		t.Fatalf("default page = %+v, want all 4 messages", v)
	}
	ts.wantAPIError(t, "GET", "/api/sessions/nope", nil, http.StatusNotFound, "not_found")
	ts.wantAPIError(t, "GET", "/api/sessions/.hidden", nil, http.StatusBadRequest, "bad_request")
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "limit=1001", "offset=-1", "offset=z"} {
		ts.wantAPIError(t, "GET", "/api/sessions/api-1?"+q, nil, http.StatusBadRequest, "bad_request")
	}

	// Fork the first 2 messages.
	var fork struct {
		session.Meta
	}
	ts.doJSON(t, "POST", "/api/sessions/api-1/fork", map[string]any{"messages": 2, "sessionId": "api-1-fork"}, http.StatusCreated, &fork)
	if fork.SessionID != "api-1-fork" || fork.MessageCount != 2 || fork.ForkedFrom != "api-1" || fork.Channel != "webchat" {
		t.Fatalf("fork = %+v", fork)
	}
	wantTranscript(t, ts.readJSONL(t, "api-1-fork"), "user", "first question", "assistant", "echo: first question")
	if m := ts.readMeta(t, "api-1-fork"); m.ForkedFrom != "api-1" || m.MessageCount != 2 {
		t.Fatalf("fork's meta.json = %+v", m)
	}
	// A fork without a body copies everything, under a new ID.
	ts.doJSON(t, "POST", "/api/sessions/api-1/fork", nil, http.StatusCreated, &fork)
	if fork.SessionID == "api-1" || fork.MessageCount != 4 || fork.ForkedFrom != "api-1" {
		t.Fatalf("full fork = %+v", fork)
	}
	// The fork is a session of its own: a client can continue it.
	fc := ts.dial(t, "/ws?sessionId=api-1-fork")
	if !fc.resumed {
		t.Fatal("connecting to the fork: resumed = false")
	}
	fc.chat("in the fork")
	if n := len(ts.readJSONL(t, "api-1")); n != 4 {
		t.Fatalf("chatting in the fork changed the original: %d lines", n)
	}
	ts.wantAPIError(t, "POST", "/api/sessions/nope/fork", nil, http.StatusNotFound, "not_found")
	ts.wantAPIError(t, "POST", "/api/sessions/api-1/fork", map[string]any{"sessionId": "api-1-fork"}, http.StatusConflict, "conflict")
	ts.wantAPIError(t, "POST", "/api/sessions/api-1/fork", map[string]any{"messages": -1}, http.StatusBadRequest, "bad_request")
	ts.wantAPIError(t, "POST", "/api/sessions/api-1/fork", map[string]any{"sessionId": "a b"}, http.StatusBadRequest, "bad_request")
	ts.wantAPIError(t, "POST", "/api/sessions/api-1/fork", `{"count":1}`, http.StatusBadRequest, "bad_request")

	// Archive: the files move to sessions/archive/, the session leaves the list.
	var archived struct {
		SessionID  string `json:"sessionId"`
		ArchivedTo string `json:"archivedTo"`
	}
	ts.doJSON(t, "POST", "/api/sessions/api-1/archive", nil, http.StatusOK, &archived)
	if archived.SessionID != "api-1" || filepath.Dir(archived.ArchivedTo) != filepath.Join(ts.dir, "archive") {
		t.Fatalf("archive answered %+v, want a path in %s", archived, filepath.Join(ts.dir, "archive"))
	}
	for _, name := range []string{"api-1.jsonl", "api-1.meta.json"} {
		if _, err := os.Stat(filepath.Join(ts.dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still in the sessions dir after archive (err %v)", name, err)
		}
	}
	b, err := os.ReadFile(archived.ArchivedTo)
	if err != nil || strings.Count(string(b), "\n") != 4 {
		t.Fatalf("archived transcript: %v, %d lines", err, strings.Count(string(b), "\n"))
	}
	if meta := strings.TrimSuffix(archived.ArchivedTo, ".jsonl") + ".meta.json"; !fileExists(meta) {
		t.Errorf("archived meta %s missing", meta)
	}
	ts.doJSON(t, "GET", "/api/sessions", nil, http.StatusOK, &list)
	for _, id := range list.ids() {
		if id == "api-1" {
			t.Fatalf("api-1 still listed after archive: %v", list.ids())
		}
	}
	ts.wantAPIError(t, "GET", "/api/sessions/api-1", nil, http.StatusNotFound, "not_found")
	ts.wantAPIError(t, "POST", "/api/sessions/api-1/archive", nil, http.StatusNotFound, "not_found")
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestArchiveRefusedWhileRunning: a session whose turn runs cannot be
// archived; once it finished, it can.
func TestArchiveRefusedWhileRunning(t *testing.T) {
	t.Parallel()
	ts := scriptServer(t, `[{"text": "busy busy busy busy busy", "chunkDelayMs": 300}]`)
	c := ts.dial(t, "/ws?sessionId=busy")
	c.message("work")
	c.expect("chunk")
	ts.wantAPIError(t, "POST", "/api/sessions/busy/archive", nil, http.StatusConflict, "conflict")
	if tn := c.readTurn(); tn.done.Type != "message_done" {
		t.Fatalf("turn ended with %s", tn.done.Raw)
	}
	wantTranscript(t, ts.readJSONL(t, "busy"), "user", "work", "assistant", "busy busy busy busy busy")
	ts.doJSON(t, "POST", "/api/sessions/busy/archive", nil, http.StatusOK, nil)
}

// TestProbes: /healthz and /readyz report status, provider and counts.
func TestProbes(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, func(o *gateway.Options) { o.ProviderWarning = "set a key" })
	type health struct {
		Status          string  `json:"status"`
		Connections     int     `json:"connections"`
		Sessions        int     `json:"sessions"`
		Uptime          float64 `json:"uptime"`
		Provider        string  `json:"provider"`
		ProviderWarning string  `json:"providerWarning"`
	}
	var h health
	ts.doJSON(t, "GET", "/readyz", nil, http.StatusOK, &h)
	if h.Status != "ready" || h.Provider != "scripted" || h.ProviderWarning != "set a key" || h.Connections != 0 || h.Sessions != 0 || h.Uptime < 0 {
		t.Fatalf("readyz on an idle gateway = %+v", h)
	}

	a := ts.dial(t, "/ws?sessionId=probe-a")
	ts.dial(t, "/ws?sessionId=probe-b")
	ts.dial(t, "/ws?sessionId=probe-a")
	for _, path := range []string{"/readyz", "/healthz"} {
		ts.doJSON(t, "GET", path, nil, http.StatusOK, &h)
		if h.Connections != 3 || h.Sessions != 2 {
			t.Fatalf("%s = %+v, want 3 connections and 2 sessions", path, h)
		}
	}
	if h.Status != "ok" {
		t.Fatalf("healthz status %q, want ok", h.Status)
	}

	a.ws.CloseNow()
	eventually(t, "the closed connection to leave the count", func() bool {
		ts.doJSON(t, "GET", "/readyz", nil, http.StatusOK, &h)
		return h.Connections == 2
	})

	// A store that cannot be written to is not ready, and says why.
	if err := os.Chmod(ts.dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(ts.dir, 0o700)
	if fileWritable(ts.dir) {
		t.Log("not checking readyz on a read-only store: this user (root) can write to it anyway")
		return
	}
	status, body := ts.do(t, "GET", "/readyz", nil, nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "not writable") {
		t.Fatalf("readyz on a read-only store = %d %s, want 503 with the reason", status, body)
	}
	if status, _ := ts.do(t, "GET", "/healthz", nil, nil); status != http.StatusOK {
		t.Fatalf("healthz on a read-only store = %d, want 200 (the process answers)", status)
	}
}

func fileWritable(dir string) bool {
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}
