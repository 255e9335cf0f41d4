package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// sessionsEnv points `miniclaw sessions` at a data directory.
func sessionsEnv(ws, data string) map[string]string {
	return map[string]string{"MINI_OPENCLAW_WORKSPACE": ws, "MINI_OPENCLAW_DATA_DIR": data}
}

// seedSessions writes sessions into dataDir through the store, as a gateway
// would: "tools-1" (a turn with a tool call), "pending-1" (ends with a user
// message: a turn in progress) and "plain-1".
func seedSessions(t *testing.T, dataDir string) {
	t.Helper()
	st, err := session.Open(filepath.Join(dataDir, "sessions"), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := time.Now().Add(-time.Hour).UnixMilli()
	add := func(id string, msgs ...core.Message) {
		if _, _, err := st.Create(id, "webchat"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(id, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	user := func(s string) core.Message { return core.Message{Role: core.RoleUser, Content: s, Timestamp: ts} }
	add("tools-1", user("list the files"),
		core.Message{Role: core.RoleAssistant, Content: "Let me look.", Timestamp: ts, ToolCalls: []core.ToolCallRecord{
			{ID: "call_1", Name: "bash", Input: json.RawMessage(`{"command":"ls"}`), Output: "a.txt\nb.txt\n"},
			{ID: "call_2", Name: "read_file", Input: json.RawMessage(`{"path":"x"}`), Output: "no such file", IsError: true},
		}},
		core.Message{Role: core.RoleAssistant, Content: "There are two files, one with ``` in its name.", Timestamp: ts})
	add("pending-1", user("first"), core.Message{Role: core.RoleAssistant, Content: "echo: first", Timestamp: ts}, user("second"))
	add("plain-1", user("hi"), core.Message{Role: core.RoleAssistant, Content: "echo: hi", Timestamp: ts})
}

func TestSessionsCommands(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	seedSessions(t, data)
	env := sessionsEnv(ws, data)
	sessionsDir := filepath.Join(data, "sessions")
	run := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, cliTimeout, env, append([]string{"sessions"}, args...)...)
	}
	ok := func(r cliResult, what string) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: exit %d\nstderr: %s", what, r.code, r.stderr)
		}
	}

	r := run("list")
	ok(r, "list")
	for _, want := range []string{"tools-1", "pending-1", "plain-1", "list the files", "MESSAGES"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run("list", "--json")
	ok(r, "list --json")
	var metas []session.Meta
	if err := json.Unmarshal([]byte(r.stdout), &metas); err != nil || len(metas) != 3 {
		t.Fatalf("list --json: %v, %d sessions:\n%s", err, len(metas), r.stdout)
	}

	r = run("show", "tools-1")
	ok(r, "show")
	for _, want := range []string{"── user", "list the files", `⚙ bash {"command":"ls"}`, "✓ bash: a.txt…", "✗ read_file: no such file", "There are two files"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run("show", "tools-1", "--limit", "1")
	ok(r, "show --limit 1")
	if strings.Contains(r.stdout, "list the files\n") || !strings.Contains(r.stdout, "There are two files") {
		t.Errorf("show --limit 1 does not show exactly the last message:\n%s", r.stdout)
	}

	r = run("export", "tools-1")
	ok(r, "export")
	file, err := os.ReadFile(filepath.Join(sessionsDir, "tools-1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if r.stdout != string(file) {
		t.Errorf("export --format jsonl is not the transcript's bytes:\n%s\nwant:\n%s", r.stdout, file)
	}
	mdPath := filepath.Join(t.TempDir(), "out.md")
	ok(run("export", "--format", "md", "tools-1", "-o", mdPath), "export md")
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# list the files\n", "## User · ", "**Tool call: `bash`**", "```json\n{\n  \"command\": \"ls\"\n}\n```", "```text\na.txt\nb.txt\n```", "**Tool call: `read_file`** (error)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown export lacks %q:\n%s", want, md)
		}
	}

	r = run("fork", "tools-1", "--messages", "2", "--to", "fork-1")
	ok(r, "fork")
	if r.stdout != "fork-1\n" {
		t.Errorf("fork printed %q, want the new ID", r.stdout)
	}
	if tr, err := readTranscript(filepath.Join(sessionsDir, "fork-1.jsonl")); err != nil || len(tr.msgs) != 2 {
		t.Errorf("forked transcript: %v, %d messages; want 2", err, len(tr.msgs))
	}
	if r = run("fork", "tools-1", "--to", "fork-1"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("fork onto an existing ID: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run("fork", "plain-1")
	ok(r, "fork to a new UUID")
	if id := strings.TrimSpace(r.stdout); id == "" || !strings.Contains(run("list").stdout, id) {
		t.Errorf("fork without --to printed %q, which list does not show", r.stdout)
	}

	// A session whose last message has no reply may have a turn running.
	if r = run("archive", "pending-1"); r.code != 1 || !strings.Contains(r.stderr, "pending-1") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("archive of a session with an unanswered message: exit %d, stderr %q; want a refusal naming it and --force", r.code, r.stderr)
	}
	ok(run("archive", "pending-1", "--force"), "archive --force")
	ok(run("archive", "plain-1"), "archive")
	archived, _ := filepath.Glob(filepath.Join(sessionsDir, "archive", "*.jsonl"))
	if len(archived) != 2 {
		t.Errorf("archive dir holds %v, want 2 transcripts", archived)
	}
	if strings.Contains(run("list").stdout, "plain-1") {
		t.Errorf("list still shows the archived plain-1")
	}

	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"bogus"}, 2, "bogus"},
		{[]string{"show"}, 2, "session ID"},
		{[]string{"show", "a", "b"}, 2, "one argument"},
		{[]string{"show", "../x"}, 2, "../x"},
		{[]string{"show", "tools-1", "--limit", "-1"}, 2, "--limit"},
		{[]string{"show", "tools-1", "--limit", "x"}, 2, "limit"},
		{[]string{"list", "extra"}, 2, "no arguments"},
		{[]string{"export", "tools-1", "--format", "xml"}, 2, "jsonl or md"},
		{[]string{"fork", "tools-1", "--to", "a/b"}, 2, "--to"},
		{[]string{"fork", "tools-1", "--messages", "-2"}, 2, "--messages"},
		{[]string{"show", "nope"}, 1, "session nope not found"},
		{[]string{"export", "nope"}, 1, "session nope not found"},
		{[]string{"fork", "nope"}, 1, "session nope not found"},
		{[]string{"archive", "nope"}, 1, "session nope not found"},
		{[]string{"archive", "plain-1"}, 1, "session plain-1 not found"},
	} {
		r := run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("sessions %v: exit %d, stderr %q; want exit %d naming %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	for _, sub := range []string{"list", "show", "export", "fork", "archive"} {
		if r := run(sub, "--help"); r.code != 0 || !strings.Contains(r.stderr, "Usage: miniclaw sessions "+sub) || !strings.Contains(r.stderr, "-data-dir") {
			t.Errorf("sessions %s --help: exit %d, stderr %q", sub, r.code, r.stderr)
		}
	}
	if r := run("--help"); r.code != 0 || !strings.Contains(r.stdout, "archive ID") {
		t.Errorf("sessions --help: exit %d, stdout %q", r.code, r.stdout)
	}
	missing := filepath.Join(ws, "no-such-data")
	if r := runCLI(t, cliTimeout, sessionsEnv(ws, missing), "sessions", "list"); r.code != 1 || !strings.Contains(r.stderr, missing) {
		t.Errorf("list on a missing data dir: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("list created the missing data dir %s", missing)
	}
}

// A named pipe where a transcript should be (the data dir lies in the
// workspace by default, so the model's shell can make one) blocks no
// command: list leaves it out with a warning naming it, show and export
// fail at once naming its type.
func TestSessionsSpecialTranscript(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	seedSessions(t, data)
	fifo := filepath.Join(data, "sessions", "fifo-9.jsonl")
	testutil.Mkfifo(t, fifo)
	env := sessionsEnv(ws, data)
	// A blocked command is killed at this bound; a working one takes
	// milliseconds.
	const bound = 10 * time.Second
	for _, args := range [][]string{{"show", "fifo-9"}, {"show", "fifo-9", "--limit", "1"}, {"export", "fifo-9"}} {
		r := runCLI(t, bound, env, append([]string{"sessions"}, args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, fifo+" is a named pipe") {
			t.Errorf("sessions %v: exit %d, stderr %q; want a failure naming %s as a named pipe", args, r.code, r.stderr, fifo)
		}
	}
	r := runCLI(t, bound, env, "sessions", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "plain-1") || strings.Contains(r.stdout, "fifo-9") {
		t.Errorf("sessions list: exit %d, stdout %q; want the other sessions without fifo-9", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, fifo+" is a named pipe") {
		t.Errorf("sessions list: stderr %q does not say why fifo-9 is left out", r.stderr)
	}
}

// A gateway on a data dir inside the workspace (the default) whose
// sessions directory holds a pipe as a transcript, a link to /dev/zero as
// a meta file and a pipe as the index snapshot starts, lists the other
// sessions with their counts, and answers a request for the pipe's session
// with an error naming it.
func TestGatewaySpecialSessionFiles(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, ".mini-openclaw")
	seedSessions(t, data)
	dir := filepath.Join(data, "sessions")
	testutil.Mkfifo(t, filepath.Join(dir, "fifo-9.jsonl"))
	for _, name := range []string{"plain-1.meta.json", ".index"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "plain-1.meta.json")); err != nil {
		t.Fatal(err)
	}
	testutil.Mkfifo(t, filepath.Join(dir, ".index"))
	g := startGateway(t, "gateway", gatewayEnv(ws, "", map[string]string{"MINI_OPENCLAW_DATA_DIR": ""}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := g.listSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["plain-1"].MessageCount != 2 || got["tools-1"].MessageCount != 3 {
		t.Errorf("GET /api/sessions = %+v; want tools-1 (3 messages), pending-1, plain-1 (2)", got)
	}
	var v any
	if err := g.getJSON(ctx, "/api/sessions/fifo-9", &v); err == nil || !strings.Contains(err.Error(), "is a named pipe") {
		t.Errorf("GET /api/sessions/fifo-9: %v; want an error naming the named pipe", err)
	}
	if log := g.stderr.String(); !strings.Contains(log, filepath.Join(dir, "fifo-9.jsonl")+" is a named pipe") {
		t.Errorf("the gateway's log does not say why fifo-9 is left out:\n%s", log)
	}
}

// The sessions commands run against the data dir of a gateway process while
// clients stream turns into it: they see consistent data, fork and archive
// work, the gateway keeps serving, and every transcript line still parses.
func TestSessionsBesideRunningGateway(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	sessionsDir := filepath.Join(data, "sessions")
	g := startGateway(t, "gateway", gatewayEnv(ws, data, nil))
	env := sessionsEnv(ws, data)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Sessions that stay idle: one to fork, one to archive.
	for _, id := range []string{"src-1", "idle-1"} {
		c, err := dialSession(ctx, g.addr, id)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := c.exchange(ctx, fmt.Sprintf("%s message %d", id, i)); err != nil {
				t.Fatal(err)
			}
		}
		c.close()
	}

	// Clients that stream turns the whole time.
	const writers = 3
	stop := make(chan struct{})
	turns := make([]int, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("busy-%d", w)
			c, err := dialSession(ctx, g.addr, id)
			if err != nil {
				errs <- err
				return
			}
			defer c.close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.exchange(ctx, fmt.Sprintf("turn %d of %s with some words", turns[w], id)); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				turns[w]++
			}
		})
	}

	for round := range 3 {
		r := runCLI(t, cliTimeout, env, "sessions", "list", "--json")
		if r.code != 0 {
			t.Fatalf("round %d: list: exit %d: %s", round, r.code, r.stderr)
		}
		var metas []session.Meta
		if err := json.Unmarshal([]byte(r.stdout), &metas); err != nil {
			t.Fatalf("round %d: list --json: %v", round, err)
		}
		for _, m := range metas {
			tr, err := readTranscript(filepath.Join(sessionsDir, m.SessionID+".jsonl"))
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			// The transcript only grows: it holds at least what list saw.
			if m.MessageCount > len(tr.msgs) {
				t.Errorf("round %d: list says %s has %d messages, its file has %d", round, m.SessionID, m.MessageCount, len(tr.msgs))
			}
		}

		if r := runCLI(t, cliTimeout, env, "sessions", "show", "busy-0", "--limit", "4"); r.code != 0 || !strings.Contains(r.stdout, "echo: turn") {
			t.Errorf("round %d: show: exit %d, stdout %q, stderr %q", round, r.code, r.stdout, r.stderr)
		}

		r = runCLI(t, cliTimeout, env, "sessions", "export", "busy-1")
		if r.code != 0 {
			t.Fatalf("round %d: export: exit %d: %s", round, r.code, r.stderr)
		}
		now, err := os.ReadFile(filepath.Join(sessionsDir, "busy-1.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(now, []byte(r.stdout)) || !strings.HasSuffix(r.stdout, "\n") {
			t.Errorf("round %d: the JSONL export is not a whole-line prefix of the transcript", round)
		}
		for i, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
			if _, err := decodeDiskLine([]byte(line)); err != nil {
				t.Errorf("round %d: exported line %d: %v", round, i+1, err)
			}
		}

		if r := runCLI(t, cliTimeout, env, "sessions", "export", "busy-2", "--format", "md"); r.code != 0 || !strings.Contains(r.stdout, "## User · ") {
			t.Errorf("round %d: export md: exit %d, stderr %q", round, r.code, r.stderr)
		}
	}

	if r := runCLI(t, cliTimeout, env, "sessions", "fork", "src-1", "--messages", "4", "--to", "forked-1"); r.code != 0 {
		t.Fatalf("fork: exit %d: %s", r.code, r.stderr)
	}
	if r := runCLI(t, cliTimeout, env, "sessions", "archive", "idle-1"); r.code != 0 {
		t.Fatalf("archive: exit %d: %s", r.code, r.stderr)
	}
	// The gateway serves the fork, which it did not create.
	c, err := dialSession(ctx, g.addr, "forked-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.exchange(ctx, "continuing the fork"); err != nil {
		t.Fatalf("a turn on the forked session: %v", err)
	}
	c.close()

	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a streaming client failed: %v", err)
	}
	var health struct{ Status string }
	if err := g.getJSON(ctx, "/healthz", &health); err != nil || health.Status != "ok" {
		t.Errorf("/healthz after the commands: %v %+v", err, health)
	}
	if code, _ := g.terminate(15 * time.Second); code != 0 {
		t.Errorf("gateway exit %d after SIGTERM", code)
	}

	for w, n := range turns {
		if n == 0 {
			t.Errorf("busy-%d completed no turn", w)
		}
		tr, err := readTranscript(filepath.Join(sessionsDir, fmt.Sprintf("busy-%d.jsonl", w)))
		if err != nil {
			t.Errorf("busy-%d: %v", w, err)
		} else if len(tr.msgs) != 2*n || len(tr.torn) != 0 {
			t.Errorf("busy-%d: %d lines (+%d torn bytes) for %d turns", w, len(tr.msgs), len(tr.torn), n)
		}
	}
	if tr, err := readTranscript(filepath.Join(sessionsDir, "forked-1.jsonl")); err != nil || len(tr.msgs) != 6 {
		t.Errorf("forked-1: %v, %d lines; want 4 forked + 2", err, len(tr.msgs))
	}
	archived, _ := filepath.Glob(filepath.Join(sessionsDir, "archive", "idle-1.*.jsonl"))
	if len(archived) != 1 {
		t.Fatalf("archive holds %v, want one idle-1 transcript", archived)
	}
	if tr, err := readTranscript(archived[0]); err != nil || len(tr.msgs) != 6 {
		t.Errorf("archived idle-1: %v, %d lines; want 6", err, len(tr.msgs))
	}
	for _, id := range sessionFiles(t, sessionsDir) {
		if _, err := readTranscript(filepath.Join(sessionsDir, id+".jsonl")); err != nil {
			t.Errorf("after the run: %v", err)
		}
	}
	// With the gateway gone, list agrees with the files.
	r := runCLI(t, cliTimeout, env, "sessions", "list", "--json")
	var metas []session.Meta
	if err := json.Unmarshal([]byte(r.stdout), &metas); err != nil {
		t.Fatalf("list --json: %v", err)
	}
	for _, m := range metas {
		tr, _ := readTranscript(filepath.Join(sessionsDir, m.SessionID+".jsonl"))
		if m.MessageCount != len(tr.msgs) {
			t.Errorf("after the run, list says %s has %d messages; its file has %d", m.SessionID, m.MessageCount, len(tr.msgs))
		}
	}
}

// seededSessionsCLI seeds a data dir with seedSessions and returns a
// runner of `miniclaw sessions ARGS…` on it; on store "postgres", on a
// database the data dir was imported into.
func seededSessionsCLI(t *testing.T, store string) func(args ...string) cliResult {
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	seedSessions(t, data)
	env := sessionsEnvOn(t, store, ws, data)
	return func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, cliTimeout, env, append([]string{"sessions"}, args...)...)
	}
}

// sessionsEnvOn is sessionsEnv on store: the data dir itself ("files"), or
// a database it was imported into ("postgres").
func sessionsEnvOn(t *testing.T, store, ws, data string) map[string]string {
	t.Helper()
	env := sessionsEnv(ws, data)
	if store == "postgres" {
		env = pgEnv(env, testutil.NeedPostgres(t))
		sessionsOK(t, env, "import", "--from", data)
	}
	return env
}

// onBothStores runs test on the files store and on PostgreSQL.
func onBothStores(t *testing.T, test func(t *testing.T, store string)) {
	for _, store := range []string{"files", "postgres"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			test(t, store)
		})
	}
}

// TestSessionsIDPrefix: every sessions command that takes an ID takes a
// unique prefix of one; an ambiguous prefix fails and names the matches.
func TestSessionsIDPrefix(t *testing.T) {
	t.Parallel()
	onBothStores(t, testSessionsIDPrefix)
}

func testSessionsIDPrefix(t *testing.T, store string) {
	run := seededSessionsCLI(t, store)

	if r := run("show", "to"); r.code != 0 || !strings.Contains(r.stdout, "Session tools-1 ·") {
		t.Errorf("show to: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := run("export", "pl"); r.code != 0 || !strings.Contains(r.stdout, `"echo: hi"`) {
		t.Errorf("export pl: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := run("fork", "to", "--to", "copy-1"); r.code != 0 || r.stdout != "copy-1\n" || !strings.Contains(r.stderr, "forked session tools-1 into copy-1") {
		t.Errorf("fork to: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r := run("show", "p")
	if r.code != 1 || !strings.Contains(r.stderr, "ambiguous session ID prefix: p starts pending-1, plain-1") {
		t.Errorf("show p: exit %d, want 1 with both matches\nstderr: %s", r.code, r.stderr)
	}
	if r := run("archive", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "session nosuch not found in ") {
		t.Errorf("archive nosuch: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := run("archive", "pl"); r.code != 0 || !strings.Contains(r.stdout, "archived session plain-1 to ") {
		t.Errorf("archive pl: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestSessionsRename: rename sets the title that list and show print, takes
// an ID prefix, and refuses a title that cannot be shown on one line.
func TestSessionsRename(t *testing.T) {
	t.Parallel()
	onBothStores(t, testSessionsRename)
}

func testSessionsRename(t *testing.T, store string) {
	run := seededSessionsCLI(t, store)
	if r := run("rename", "pl", "Greeting test"); r.code != 0 || r.stdout != "renamed session plain-1 to \"Greeting test\"\n" {
		t.Fatalf("rename: exit %d\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := run("show", "plain-1"); !strings.HasPrefix(r.stdout, `Session plain-1 · webchat · 2 messages · "Greeting test"`) {
		t.Errorf("show after rename:\n%s", r.stdout)
	}
	if r := run("list"); !strings.Contains(r.stdout, "Greeting test") {
		t.Errorf("list after rename:\n%s", r.stdout)
	}
	if r := run("rename", "plain-1"); r.code != 2 || !strings.Contains(r.stderr, "rename takes two arguments, the session ID and the title") {
		t.Errorf("rename without a title: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := run("rename", "plain-1", "a\tb"); r.code != 1 || !strings.Contains(r.stderr, `title has '\t' at byte 1`) {
		t.Errorf("rename to a title with a tab: exit %d\nstderr: %s", r.code, r.stderr)
	}
}
