package gateway_test

// Helpers for what the gateway leaves behind: the sessions API over HTTP and
// the transcript files on disk.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// line is one transcript line, decoded both ways.
type line struct {
	core.Message
	Fields map[string]any
}

// readJSONL reads <sessions>/<id>.jsonl from disk.
func (ts *testServer) readJSONL(t *testing.T, id string) []line {
	t.Helper()
	f, err := os.Open(filepath.Join(ts.dir, id+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l.Message); err != nil {
			t.Fatalf("%s.jsonl line %d: %v", id, len(out)+1, err)
		}
		if err := json.Unmarshal(sc.Bytes(), &l.Fields); err != nil {
			t.Fatalf("%s.jsonl line %d: %v", id, len(out)+1, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readMeta reads <sessions>/<id>.meta.json from disk, once the store has
// written what it holds (meta files are written lazily).
func (ts *testServer) readMeta(t *testing.T, id string) session.Meta {
	t.Helper()
	ts.store.Flush()
	b, err := os.ReadFile(filepath.Join(ts.dir, id+".meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m session.Meta
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.meta.json: %v", id, err)
	}
	return m
}

// wantTranscript checks a transcript's roles and contents, line by line.
func wantTranscript(t *testing.T, got []line, want ...string) {
	t.Helper()
	if len(got) != len(want)/2 {
		t.Fatalf("transcript has %d lines, want %d: %+v", len(got), len(want)/2, got)
	}
	for i, l := range got {
		if l.Role != want[2*i] || l.Content != want[2*i+1] {
			t.Fatalf("transcript line %d is %s %q, want %s %q", i+1, l.Role, l.Content, want[2*i], want[2*i+1])
		}
	}
}

// do sends an HTTP request; body, when not nil, is marshalled as JSON. A
// POST says Content-Type: application/json unless header sets one. It
// returns the status and the response body.
func (ts *testServer) do(t *testing.T, method, path string, body any, header http.Header) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			r = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			r = bytes.NewReader(b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, ts.httpURL(path), r)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// doJSON is do that also decodes the answer into out (when not nil) and
// fails unless the status is want.
func (ts *testServer) doJSON(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	status, b := ts.do(t, method, path, body, nil)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, b, err)
		}
	}
}

// apiError is the body of an HTTP error answer.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantAPIError checks an HTTP error answer: its status and its code.
func (ts *testServer) wantAPIError(t *testing.T, method, path string, body any, status int, code string) {
	t.Helper()
	var e apiError
	ts.doJSON(t, method, path, body, status, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("%s %s: error %+v, want code %q with a message", method, path, e, code)
	}
}

// sessionView is GET /api/sessions/{id}.
type sessionView struct {
	Session struct {
		session.Meta
		Busy bool `json:"busy"`
	} `json:"session"`
	Messages []core.Message `json:"messages"`
	Offset   int            `json:"offset"`
	Total    int            `json:"total"`
}

// eventually polls cond until it holds, for state no event announces (a
// turn finishing after its only client left). It fails after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, waitFor, what, cond)
}

// eventuallyWithin is eventually with a wait of d.
func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
