package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestRenameAPI: POST /api/sessions/{id}/rename sets the title that the
// list and the meta file on disk show; a bad title is a 400 that names the
// field and the limit, and changes nothing.
func TestRenameAPI(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	ts.dial(t, "/ws?sessionId=r1").chat("**first** question")

	var renamed struct {
		SessionID string `json:"sessionId"`
		Title     string `json:"title"`
	}
	ts.doJSON(t, "POST", "/api/sessions/r1/rename", map[string]string{"title": "  Trip <b>plans</b>  "}, http.StatusOK, &renamed)
	if renamed.SessionID != "r1" || renamed.Title != "Trip <b>plans</b>" {
		t.Fatalf("rename answered %+v, want r1 titled %q", renamed, "Trip <b>plans</b>")
	}
	var list listView
	ts.doJSON(t, "GET", "/api/sessions", nil, http.StatusOK, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].Title != "Trip <b>plans</b>" {
		t.Fatalf("list after rename: %+v", list.Sessions)
	}
	if m := ts.readMeta(t, "r1"); m.Title != "Trip <b>plans</b>" {
		t.Fatalf("meta.json title %q after rename", m.Title)
	}

	bad := []struct{ body, says string }{
		{`{"title":"   "}`, "title is empty"},
		{`{}`, "title is empty"},
		{`{"title":"` + strings.Repeat("é", 81) + `"}`, "the limit is 80"},
		{`{"title":"two\nlines"}`, "control characters"},
		{`{"title":7}`, "title"},
		{`{"title":"x","colour":"red"}`, "unknown field"},
	}
	for _, b := range bad {
		status, body := ts.do(t, "POST", "/api/sessions/r1/rename", b.body, nil)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"bad_request"`) || !strings.Contains(string(body), b.says) {
			t.Errorf("rename with %.40s: %d %s, want 400 bad_request saying %q", b.body, status, body, b.says)
		}
	}
	if status, body := ts.do(t, "POST", "/api/sessions/r1/rename", `{"title":"`+strings.Repeat("y", 70<<10)+`"}`, nil); status != http.StatusRequestEntityTooLarge {
		t.Errorf("rename with a 70 KiB body: %d %s, want 413", status, body)
	}
	if m := ts.readMeta(t, "r1"); m.Title != "Trip <b>plans</b>" {
		t.Fatalf("refused renames changed the title to %q", m.Title)
	}
	ts.wantAPIError(t, "POST", "/api/sessions/nope/rename", map[string]string{"title": "x"}, http.StatusNotFound, "not_found")
	ts.wantAPIError(t, "POST", "/api/sessions/.hidden/rename", map[string]string{"title": "x"}, http.StatusBadRequest, "bad_request")
	ts.doJSON(t, "POST", "/api/sessions/r1/archive", nil, http.StatusOK, nil)
	ts.wantAPIError(t, "POST", "/api/sessions/r1/rename", map[string]string{"title": "x"}, http.StatusNotFound, "not_found")
}

// TestRenameNeedsToken: the rename route is guarded like the other writes.
func TestRenameNeedsToken(t *testing.T) {
	t.Parallel()
	ts := echoServer(t, withToken("s3cret"))
	ts.wantAPIError(t, "POST", "/api/sessions/r1/rename", map[string]string{"title": "x"}, http.StatusUnauthorized, "unauthorized")
}
