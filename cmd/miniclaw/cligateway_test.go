package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seenWithin is how long a running gateway may take to show what the CLI
// did to the sessions directory.
const seenWithin = 3 * time.Second

// apiCall sends a bodiless request to the gateway and returns the status
// and body.
func (g *gatewayProc) apiCall(ctx context.Context, method, path string) (int, string) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, g.url(path), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(body)
}

// listedTitles is GET /api/sessions as ID → title.
func (g *gatewayProc) listedTitles(ctx context.Context) map[string]string {
	g.t.Helper()
	var body struct {
		Sessions []struct {
			SessionID    string `json:"sessionId"`
			Title        string `json:"title"`
			MessageCount int    `json:"messageCount"`
		} `json:"sessions"`
	}
	if err := g.getJSON(ctx, "/api/sessions", &body); err != nil {
		g.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range body.Sessions {
		out[s.SessionID] = fmt.Sprintf("%s (%d)", s.Title, s.MessageCount)
	}
	return out
}

// waitListed polls GET /api/sessions for up to seenWithin until ok holds
// of its ID → "title (messages)" map, and fails the test with what it saw
// last otherwise.
func (g *gatewayProc) waitListed(ctx context.Context, what string, ok func(map[string]string) bool) {
	g.t.Helper()
	deadline := time.Now().Add(seenWithin)
	for {
		got := g.listedTitles(ctx)
		if ok(got) {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("GET /api/sessions within %s: %s; it lists %v", seenWithin, what, got)
		}
		time.Sleep(50 * time.Millisecond) // polling the API, as the WebChat's sidebar does
	}
}

// wantNotFound checks a 404 not_found answer whose message names the
// session and no path of the data directory.
func wantNotFound(t *testing.T, what string, code int, body, id, dataDir string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal([]byte(body), &e)
	if code != http.StatusNotFound || e.Error.Code != "not_found" || !strings.Contains(e.Error.Message, id) ||
		strings.Contains(body, dataDir) || strings.Contains(body, "/") {
		t.Errorf("%s: %d %s; want 404 not_found naming %s and no path", what, code, body, id)
	}
}

// TestGatewaySeesCLIChanges: a fork, a rename, an archive and an unarchive made by
// `miniclaw sessions` beside a running gateway show in its session list
// within seconds; the archived ID answers 404 (never a 500 naming a file),
// no meta the gateway still had pending puts it back, and the next message
// of a client attached to it starts a new session of the client's channel
// that shares nothing with the archived transcript.
func TestGatewaySeesCLIChanges(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	sessionsDir := filepath.Join(data, "sessions")
	env := gatewayEnv(ws, data, nil)
	g := startGateway(t, "gateway", env)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := func(args ...string) { t.Helper(); sessionsOK(t, env, args...) }

	a, err := dialSession(ctx, g.addr, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.exchange(ctx, "first words"); err != nil {
		t.Fatal(err)
	}
	b, err := dialSession(ctx, g.addr, "renamed")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if err := b.exchange(ctx, "hello"); err != nil {
		t.Fatal(err)
	}

	cli("fork", "doomed", "--to", "forked")
	g.waitListed(ctx, "the CLI fork forked with its 2 messages", func(m map[string]string) bool {
		return m["forked"] == "Fork of first words (2)"
	})
	cli("rename", "renamed", "A new name")
	g.waitListed(ctx, "the CLI rename of renamed", func(m map[string]string) bool {
		return m["renamed"] == "A new name (2)"
	})

	// The gateway's meta of doomed may still be pending (written once a
	// second): the archive must win.
	cli("archive", "doomed")
	g.waitListed(ctx, "doomed gone after the CLI archived it", func(m map[string]string) bool {
		_, listed := m["doomed"]
		return !listed
	})
	code, body := g.apiCall(ctx, http.MethodGet, "/api/sessions/doomed")
	wantNotFound(t, "GET of the archived ID", code, body, "doomed", data)
	code, body = g.apiCall(ctx, http.MethodPost, "/api/sessions/doomed/fork")
	wantNotFound(t, "fork of the archived ID", code, body, "doomed", data)
	code, body = g.apiCall(ctx, http.MethodPost, "/api/sessions/doomed/archive")
	wantNotFound(t, "archive of the archived ID", code, body, "doomed", data)

	gone := func(m map[string]string) bool { _, listed := m["renamed"]; return !listed }
	cli("archive", "renamed")
	g.waitListed(ctx, "renamed gone after the CLI archived it", gone)
	cli("unarchive", "renamed")
	g.waitListed(ctx, "renamed back, with its title, after the CLI unarchived it", func(m map[string]string) bool {
		return m["renamed"] == "A new name (2)"
	})
	cli("archive", "renamed")
	g.waitListed(ctx, "renamed gone after the CLI archived it again", gone)

	// The client still attached to doomed: its next message starts a new
	// session with that ID, of channel webchat, holding only that message.
	if err := a.exchange(ctx, "second life"); err != nil {
		t.Fatal(err)
	}
	if code, body = g.apiCall(ctx, http.MethodGet, "/api/sessions/doomed"); code != http.StatusOK ||
		!strings.Contains(body, `"channel":"webchat"`) || !strings.Contains(body, `"messageCount":2`) || strings.Contains(body, "first words") {
		t.Errorf("GET of the new doomed: %d %s; want channel webchat, 2 messages, none of the archived ones", code, body)
	}
	a.close()
	b.close()
	if code, _ := g.terminate(20 * time.Second); code != 0 {
		t.Fatalf("gateway exit %d", code)
	}

	tr, err := readTranscript(filepath.Join(sessionsDir, "doomed.jsonl"))
	if err != nil || len(tr.msgs) != 2 || tr.msgs[0].Content != "second life" {
		t.Errorf("new doomed transcript: %v, %+v; want only the second life turn", err, tr.msgs)
	}
	archived, err := filepath.Glob(filepath.Join(sessionsDir, "archive", "*.jsonl"))
	if err != nil || len(archived) != 2 {
		t.Fatalf("archive holds %v (%v), want the two archived transcripts", archived, err)
	}
	for _, p := range archived {
		tr, err := readTranscript(p)
		if err != nil || len(tr.msgs) != 2 {
			t.Errorf("%s: %v, %d messages; want the 2 it had", filepath.Base(p), err, len(tr.msgs))
		}
	}
	for _, name := range []string{"renamed.jsonl", "renamed.meta.json"} {
		if _, err := os.Stat(filepath.Join(sessionsDir, name)); !os.IsNotExist(err) {
			t.Errorf("sessions/%s after the CLI archived it and the gateway stopped: %v; want it absent", name, err)
		}
	}
}
