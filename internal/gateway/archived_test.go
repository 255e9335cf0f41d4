package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
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
