package chatclient

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Sessions the terminal client starts (the first start with none to
// resume, /new, a --session or /switch ID that does not exist yet) are of
// channel cli; a start without --session resumes the most recently active
// session of any channel.
func TestSessionsStartedAreCLI(t *testing.T) {
	t.Parallel()
	g := startGateway(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "sessions"), "")
	run := func(opt Options, in string) string {
		t.Helper()
		var out strings.Builder
		opt.URL, opt.In, opt.Out = g.addr, strings.NewReader(in), &out
		if err := Run(context.Background(), opt); err != nil {
			t.Fatalf("Run: %v\n%s", err, out.String())
		}
		return out.String()
	}
	out := run(Options{}, "one\n/new\ntwo\n/switch named-2\ny\nthree\n")
	if n := strings.Count(out, "(new session)"); n != 3 {
		t.Errorf("%d new sessions, want 3:\n%s", n, out)
	}
	run(Options{SessionID: "named-1"}, "four\n")
	list, err := g.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("%d sessions, want 4: %+v", len(list), list)
	}
	for _, m := range list {
		if m.Channel != "cli" {
			t.Errorf("session %s has channel %q, want cli", m.SessionID, m.Channel)
		}
	}

	// The latest session, whatever its channel, is the one resumed.
	// updatedAt has millisecond resolution: let the clock pass the last.
	for time.Now().UnixMilli() <= list[0].UpdatedAt {
		runtime.Gosched()
	}
	if _, _, err := g.store.Create("web-1", "webchat"); err != nil {
		t.Fatal(err)
	}
	if out := run(Options{}, "five\n"); !strings.Contains(out, "session web-1 (resumed)") {
		t.Errorf("a start without --session did not resume the latest session web-1:\n%s", out)
	}
}
