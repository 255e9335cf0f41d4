package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miniclaw/miniclaw/internal/session"
)

// TestSessionArchivedBehindTheGateway: the CLI archives the session a
// client is attached to; the client's next message starts a new session
// with the same ID instead of failing forever.
func TestSessionArchivedBehindTheGateway(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	c := ts.dial(t, "/ws?sessionId=gone")
	if got := c.chat("first").text(); got != "echo: first" {
		t.Fatalf("first reply %q", got)
	}

	cli, err := session.Open(ts.dir, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Archive("gone"); err != nil {
		t.Fatal(err)
	}
	cli.Close()

	if got := c.chat("second").text(); got != "echo: second" {
		t.Fatalf("reply after the archive %q", got)
	}
	b, err := os.ReadFile(filepath.Join(ts.dir, "gone.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != 2 || !strings.Contains(string(b), `"second"`) || strings.Contains(string(b), `"first"`) {
		t.Fatalf("new transcript:\n%s", b)
	}
}

// TestArchivedBehindTheGatewayKeepsTheChannel: a terminal client's session
// (channel cli) archived by the CLI: the client's next message starts a new
// session of channel cli, not webchat; the gateway's HTTP answers for the
// vanished ID before that are 404s naming no file.
func TestArchivedBehindTheGatewayKeepsTheChannel(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	ts.doJSON(t, http.MethodPost, "/api/sessions", map[string]string{"sessionId": "term", "channel": "cli"}, http.StatusCreated, nil)
	c := ts.dial(t, "/ws?sessionId=term")
	if got := c.chat("first").text(); got != "echo: first" {
		t.Fatalf("first reply %q", got)
	}

	cli, err := session.Open(ts.dir, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Archive("term"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	for _, req := range [][2]string{{http.MethodGet, "/api/sessions/term"}, {http.MethodPost, "/api/sessions/term/fork"}, {http.MethodPost, "/api/sessions/term/archive"}} {
		code, body := ts.do(t, req[0], req[1], nil, nil)
		if code != http.StatusNotFound || !strings.Contains(string(body), `"not_found"`) || strings.Contains(string(body), ".jsonl") {
			t.Errorf("%s %s of the archived ID: %d %s; want 404 not_found naming no file", req[0], req[1], code, body)
		}
	}

	if got := c.chat("second").text(); got != "echo: second" {
		t.Fatalf("reply after the archive %q", got)
	}
	if m := ts.readMeta(t, "term"); m.Channel != "cli" || m.MessageCount != 2 {
		t.Errorf("new session after the archive: channel %q, %d messages; want cli, 2", m.Channel, m.MessageCount)
	}
}

// TestStoreErrorsNameNoFile: a store failure (here a named pipe planted as
// a transcript) is a 500 whose message names no file of the data dir; the
// gateway's log has the detail.
func TestStoreErrorsNameNoFile(t *testing.T) {
	t.Parallel()
	ts := echoServer(t)
	if err := syscall.Mkfifo(filepath.Join(ts.dir, "pipe.jsonl"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := ts.do(t, http.MethodGet, "/api/sessions/pipe", nil, nil)
	if code != http.StatusInternalServerError || !strings.Contains(string(body), `"internal"`) || strings.Contains(string(body), ts.dir) {
		t.Errorf("GET of a session whose transcript is a pipe: %d %s; want a 500 naming no file", code, body)
	}
	if !strings.Contains(ts.logs.String(), "pipe.jsonl") {
		t.Errorf("the gateway log does not name the file:\n%s", ts.logs.String())
	}
}
