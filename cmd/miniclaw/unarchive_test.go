package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
)

// TestSessionsArchivedAndUnarchive: `sessions list --archived` lists the
// archived copies (ID, when archived, messages, title), and `sessions
// unarchive` brings one back by ID or unique prefix: the newest copy when
// there are several, saying so; refused over a live session and for an
// ambiguous prefix (listing the matches).
func TestSessionsArchivedAndUnarchive(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	seedSessions(t, data)
	sessionsDir := filepath.Join(data, "sessions")
	env := sessionsEnv(ws, data)
	ok := func(args ...string) cliResult { t.Helper(); return sessionsOK(t, env, args...) }
	run := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, cliTimeout, env, append([]string{"sessions"}, args...)...)
	}

	// plain-1 is archived twice, and lives a third time.
	ok("archive", "plain-1")
	relive := func(content string) {
		t.Helper()
		st, err := session.Open(sessionsDir, session.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, _, err := st.Create("plain-1", "cli"); err != nil {
			t.Fatal(err)
		}
		ts := time.Now().UnixMilli()
		if _, err := st.Append("plain-1", core.Message{Role: core.RoleUser, Content: content, Timestamp: ts},
			core.Message{Role: core.RoleAssistant, Content: "echo: " + content, Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	relive("second life")
	ok("archive", "plain-1")
	relive("third life")
	ok("archive", "tools-1")
	ok("archive", "pending-1", "--force")

	r := ok("list", "--archived")
	for _, want := range []string{"ARCHIVED", "MESSAGES", "TITLE", "tools-1", "list the files", "pending-1", "second life", "just now"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list --archived lacks %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "plain-1"); n != 2 {
		t.Errorf("list --archived shows plain-1 %d times, want its 2 archived copies:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout, "third life") {
		t.Errorf("list --archived shows the live plain-1:\n%s", r.stdout)
	}
	var archived []struct {
		SessionID    string `json:"sessionId"`
		Title        string `json:"title"`
		MessageCount int    `json:"messageCount"`
		ArchivedAt   int64  `json:"archivedAt"`
	}
	r = ok("list", "--archived", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &archived); err != nil || len(archived) != 4 {
		t.Fatalf("list --archived --json: %v, %d entries:\n%s", err, len(archived), r.stdout)
	}
	for _, a := range archived {
		if a.SessionID == "tools-1" && (a.MessageCount != 3 || a.Title != "list the files" || time.Since(time.UnixMilli(a.ArchivedAt)).Abs() > time.Minute) {
			t.Errorf("tools-1 in list --archived --json: %+v", a)
		}
	}

	if r = run("unarchive", "plain-1"); r.code != 1 || !strings.Contains(r.stderr, "plain-1") || !strings.Contains(r.stderr, "live") {
		t.Errorf("unarchive over a live session: exit %d, stderr %q; want 1 and a refusal naming it", r.code, r.stderr)
	}
	if r = run("unarchive", "p"); r.code != 1 || !strings.Contains(r.stderr, "pending-1, plain-1") {
		t.Errorf("unarchive of an ambiguous prefix: exit %d, stderr %q; want 1 and the matches", r.code, r.stderr)
	}
	if r = run("unarchive", "nothing-here"); r.code != 1 || !strings.Contains(r.stderr, "nothing-here") || !strings.Contains(r.stderr, "list --archived") {
		t.Errorf("unarchive of an unknown ID: exit %d, stderr %q", r.code, r.stderr)
	}

	r = ok("unarchive", "too")
	if !strings.Contains(r.stdout, "unarchived session tools-1") {
		t.Errorf("unarchive by prefix printed %q", r.stdout)
	}
	if tr, err := readTranscript(filepath.Join(sessionsDir, "tools-1.jsonl")); err != nil || len(tr.msgs) != 3 {
		t.Errorf("unarchived tools-1: %v, %d messages; want its 3", err, len(tr.msgs))
	}
	if r = ok("list"); !strings.Contains(r.stdout, "tools-1") || !strings.Contains(r.stdout, "list the files") {
		t.Errorf("list after unarchive lacks tools-1:\n%s", r.stdout)
	}
	if r = ok("list", "--archived"); strings.Contains(r.stdout, "tools-1") {
		t.Errorf("list --archived still shows the unarchived tools-1:\n%s", r.stdout)
	}

	// Live plain-1 archived a third time: unarchive takes the newest copy.
	ok("archive", "plain-1")
	r = ok("unarchive", "plain-1")
	if !strings.Contains(r.stdout, "unarchived session plain-1") || !strings.Contains(r.stdout, "newest of 3") {
		t.Errorf("unarchive of an ID archived 3 times printed %q; want it to say it took the newest of 3", r.stdout)
	}
	tr, err := readTranscript(filepath.Join(sessionsDir, "plain-1.jsonl"))
	if err != nil || len(tr.msgs) != 2 || tr.msgs[0].Content != "third life" {
		t.Errorf("unarchived plain-1: %v, %+v; want the third life", err, tr.msgs)
	}
	if r = ok("list", "--json"); !strings.Contains(r.stdout, `"channel": "cli"`) {
		t.Errorf("the unarchived plain-1 lost its meta (channel cli):\n%s", r.stdout)
	}

	for _, sub := range []string{"list", "unarchive"} {
		r := run(sub, "--help")
		if r.code != 0 || !strings.Contains(r.stderr, "Usage: miniclaw sessions "+sub) || !strings.Contains(r.stderr, "archive") {
			t.Errorf("sessions %s --help: exit %d, stderr %q", sub, r.code, r.stderr)
		}
	}
	if r := ok("--help"); !strings.Contains(r.stdout, "unarchive ID") || !strings.Contains(r.stdout, "--archived") {
		t.Errorf("sessions --help does not name unarchive and list --archived:\n%s", r.stdout)
	}
}
