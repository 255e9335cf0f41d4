package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The process-level tests of the PostgreSQL store as the CLI and the
// gateway use it: `miniclaw sessions import`, every sessions command on
// both stores, the gateway's startup and /readyz.

// pgEnv is env with the database URL set.
func pgEnv(env map[string]string, url string) map[string]string {
	out := map[string]string{"MINI_OPENCLAW_DATABASE_URL": url}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// TestSessionsImportThenBothStores imports a files store (live sessions, an
// archived one, an unreadable line, a torn last line) into PostgreSQL: each
// session exports the same bytes on both stores, a second import imports
// nothing, and every sessions command prints the same on both (but for
// where the store is).
func TestSessionsImportThenBothStores(t *testing.T) {
	t.Parallel()
	url := testutil.NeedPostgres(t)
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	seedSessions(t, data)
	sessionsDir := filepath.Join(data, "sessions")
	files := sessionsEnv(ws, data)
	pg := pgEnv(files, url)
	run := func(env map[string]string, args ...string) cliResult {
		t.Helper()
		return runCLI(t, cliTimeout, env, append([]string{"sessions"}, args...)...)
	}
	// An archived session, a line that is no message, a torn last line.
	if r := run(files, "archive", "plain-1"); r.code != 0 {
		t.Fatalf("archive: %s", r.stderr)
	}
	testutil.AppendFile(t, filepath.Join(sessionsDir, "tools-1.jsonl"), "{garbage line\n")
	testutil.AppendFile(t, filepath.Join(sessionsDir, "pending-1.jsonl"), `{"role":"assistant","content":"cut`)

	r := run(pg, "import", "--from", data)
	if r.code != 0 || !strings.Contains(r.stderr, "3 imported, 0 caught up, 0 skipped, 0 conflicts, 0 failed") ||
		!strings.Contains(r.stderr, "torn last line") {
		t.Fatalf("import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = run(pg, "import", "--from", sessionsDir)
	if r.code != 0 || !strings.Contains(r.stderr, "0 imported, 0 caught up, 3 skipped, 0 conflicts, 0 failed") {
		t.Fatalf("second import: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	same := func(what string, args ...string) (cliResult, cliResult) {
		t.Helper()
		f, p := run(files, args...), run(pg, args...)
		if f.code != p.code || f.stdout != p.stdout {
			t.Errorf("%s: files (exit %d):\n%s\npostgres (exit %d):\n%s\nstderr: %s", what, f.code, f.stdout, p.code, p.stdout, p.stderr)
		}
		return f, p
	}
	for _, id := range []string{"tools-1", "pending-1"} {
		f, _ := same("export "+id, "export", id)
		file, _ := os.ReadFile(filepath.Join(sessionsDir, id+".jsonl"))
		if want := string(file[:strings.LastIndexByte(string(file), '\n')+1]); f.stdout != want {
			t.Errorf("export %s on files is not the file's complete lines", id)
		}
	}
	// The metas as JSON, but for what differs by nature: the size, which
	// on files counts a torn last line (not imported), the times of what
	// each store did at its own moment, and where an archived copy is.
	sameJSON := func(what string, args ...string) {
		t.Helper()
		norm := func(r cliResult) string {
			var metas []map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &metas); err != nil {
				t.Fatalf("%s: %v: %s", what, err, r.stdout)
			}
			for _, m := range metas {
				for _, k := range []string{"size", "createdAt", "updatedAt", "titledAt", "archivedAt"} {
					delete(m, k)
				}
				if f, ok := m["file"].(string); ok {
					m["file"] = archiveStamp.ReplaceAllString(filepath.Base(f), ".<time>.")
				}
			}
			b, _ := json.Marshal(metas)
			return string(b)
		}
		if f, p := norm(run(files, args...)), norm(run(pg, args...)); f != p {
			t.Errorf("%s: files\n%s\npostgres\n%s", what, f, p)
		}
	}
	same("list", "list")
	sameJSON("list --json", "list", "--json")
	sameJSON("list --archived --json", "list", "--archived", "--json")
	same("show", "show", "tools-1")
	same("show a prefix --limit 1", "show", "tool", "--limit", "1")
	same("export md", "export", "pending-1", "--format", "md")
	same("archive with a turn pending", "archive", "pending-1")
	same("show a missing session", "show", "nope")
	same("fork", "fork", "tools-1", "--messages", "2", "--to", "fork-1")
	same("rename", "rename", "fork-1", "Forked")
	same("export the fork", "export", "fork-1")
	sameJSON("list after fork and rename", "list", "--json")
	for _, env := range []map[string]string{files, pg} {
		if r := run(env, "unarchive", "plain-1"); r.code != 0 || !strings.Contains(r.stdout, "unarchived session plain-1 from ") {
			t.Errorf("unarchive: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := run(env, "archive", "fork-1"); r.code != 0 || !strings.HasPrefix(r.stdout, "archived session fork-1 to ") {
			t.Errorf("archive: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
	}
	sameJSON("list at the end", "list", "--json")
	sameJSON("archived at the end", "list", "--archived", "--json")
	same("export the unarchived", "export", "plain-1")
	if r := run(pg, "show", "nope"); !strings.Contains(r.stderr, "session nope not found in PostgreSQL database postgres://") {
		t.Errorf("show nope on postgres: stderr %q does not name the database", r.stderr)
	}
	// Import copies into PostgreSQL only, and needs a source.
	if r := run(files, "import", "--from", data); r.code != 2 || !strings.Contains(r.stderr, "MINI_OPENCLAW_DATABASE_URL") {
		t.Errorf("import without a database: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(pg, "import"); r.code != 2 || !strings.Contains(r.stderr, "--from") {
		t.Errorf("import without --from: exit %d, stderr %q", r.code, r.stderr)
	}
	missing := filepath.Join(ws, "missing")
	if r := run(pg, "import", "--from", missing); r.code != 1 || !strings.Contains(r.stderr, "--from "+missing+": not a data directory") {
		t.Errorf("import from a missing directory: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("import created %s", missing)
	}
}

// archiveStamp is the time in an archived copy's name.
var archiveStamp = regexp.MustCompile(`\.\d{8}T\d{6}\.\d{3}Z\.`)

// TestSessionsImportKilled: an import SIGKILLed in the middle of a
// session's transaction (its insert waits on a lock the test holds) leaves
// the sessions before it whole and that one absent; run again, it imports
// the rest, and the database holds each session once.
func TestSessionsImportKilled(t *testing.T) {
	t.Parallel()
	url := testutil.NeedPostgres(t)
	ws := t.TempDir()
	data := filepath.Join(ws, "data")
	st, err := session.Open(filepath.Join(data, "sessions"), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		id := fmt.Sprintf("s-%02d", i)
		if _, _, err := st.Create(id, "webchat"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(id, core.Message{Role: core.RoleUser, Content: "hello " + id, Timestamp: 1},
			core.Message{Role: core.RoleAssistant, Content: "hi", Timestamp: 2}); err != nil {
			t.Fatal(err)
		}
	}
	order, err := st.List() // the order the import goes in
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	env := pgEnv(sessionsEnv(ws, data), url)
	// The database's schema, made by a first import of nothing.
	empty := filepath.Join(t.TempDir(), "sessions")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, cliTimeout, env, "sessions", "import", "--from", empty); r.code != 0 {
		t.Fatalf("import of nothing: exit %d: %s", r.code, r.stderr)
	}

	// The test inserts the middle session itself, uncommitted: the
	// import's insert of it waits for the test's transaction.
	ctx := context.Background()
	blocker, err := testutil.ConnectPostgres(t, url).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blocked := order[n/2].SessionID
	if _, err := blocker.Exec(ctx, "INSERT INTO sessions (id, channel, created_at) VALUES ($1, 'webchat', 0)", blocked); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "sessions", "import", "--from", data)
	cmd.Env = childEnv(t, env)
	var stderr logBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	db := testutil.ConnectPostgres(t, url)
	eventually(t, "the import to wait for the test's lock", func() bool {
		var waiting int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'miniclaw' AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting == 1
	})
	cmd.Process.Kill()
	cmd.Wait()
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if out := stderr.String(); strings.Contains(out, "import: ") || !strings.Contains(out, "session "+order[0].SessionID+": imported") {
		t.Fatalf("the killed import's output:\n%s", out)
	}
	// The killed import's transaction ends once its server process sees
	// the connection gone.
	eventually(t, "the killed import's connection to end", func() bool {
		var left int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'miniclaw'`).Scan(&left)
		return err == nil && left == 0
	})
	var before, torn int
	if err := db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE (SELECT count(*) FROM messages m WHERE m.sid = s.sid) <> 2)
		FROM sessions s`).Scan(&before, &torn); err != nil {
		t.Fatal(err)
	}
	if before != n/2 || torn != 0 {
		t.Fatalf("after the kill the database holds %d sessions, %d of them not whole; want the %d before %s, whole", before, torn, n/2, blocked)
	}

	r := runCLI(t, cliTimeout, env, "sessions", "import", "--from", data)
	want := fmt.Sprintf("%d imported, 0 caught up, %d skipped, 0 conflicts, 0 failed", n-before, before)
	if r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("rerun: exit %d, want %q:\n%s", r.code, want, r.stderr)
	}
	var sessions, ids, messages int
	if err := db.QueryRow(ctx, "SELECT count(*), count(DISTINCT id), (SELECT count(*) FROM messages) FROM sessions").Scan(&sessions, &ids, &messages); err != nil {
		t.Fatal(err)
	}
	if sessions != n || ids != n || messages != 2*n {
		t.Errorf("after the rerun: %d sessions, %d IDs, %d messages; want %d, %d, %d", sessions, ids, messages, n, n, 2*n)
	}
}

// withPassword is url with a password in it.
func withPassword(t *testing.T, url, password string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, password, cfg.Host, cfg.Port, cfg.Database)
}

// TestGatewayDatabaseURL: a gateway on PostgreSQL says so at startup and in
// /readyz, and prints the URL's password nowhere; one whose database does
// not answer exits 1 at once with an error naming the host, and the
// password nowhere either.
func TestGatewayDatabaseURL(t *testing.T) {
	t.Parallel()
	const password = "pw-never-printed-42"
	url := withPassword(t, testutil.NeedPostgres(t), password)
	ws := t.TempDir()
	env := gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_DATABASE_URL": url})
	var stdout logBuf
	g := startGateway(t, "gateway", env, func(c *exec.Cmd) { c.Stdout = &stdout })
	if log := g.stderr.String(); !regexp.MustCompile(`store=postgres storeAt="PostgreSQL database postgres://\w+@`).MatchString(log) {
		t.Errorf("the listening line does not name the store:\n%s", log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ready struct{ Store, Database string }
	if err := g.getJSON(ctx, "/readyz", &ready); err != nil || ready.Store != "postgres" || ready.Database != "ok" {
		t.Errorf("readyz: %+v, %v", ready, err)
	}
	if code, _ := g.terminate(10 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": g.stderr.String()} {
		if strings.Contains(out, password) {
			t.Errorf("the gateway printed the password on %s:\n%s", name, out)
		}
	}

	// A port nothing listens on.
	ln := listenClosed(t)
	down := gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{
		"MINI_OPENCLAW_DATABASE_URL": "postgres://miniclaw:" + password + "@" + ln + "/chat"})
	r := runCLI(t, databaseOpenTimeout+startTimeout, down, "gateway")
	if r.code != 1 || !strings.Contains(r.stderr, ln) || !strings.Contains(r.stderr, "MINI_OPENCLAW_DATABASE_URL") {
		t.Errorf("gateway with its database down: exit %d, stderr:\n%s\nwant exit 1 naming %s", r.code, r.stderr, ln)
	}
	if strings.Contains(r.stderr+r.stdout, password) {
		t.Errorf("the gateway whose database is down printed the password:\n%s", r.stderr)
	}
}

// listenClosed is a loopback address nothing listens on: a socket bound
// to it, never listening, until the test ends (so no other test takes the
// port), to which connections are refused.
func listenClosed(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

// eventually polls cond, every 10 ms for up to 20 s, for a state no event
// announces (a pipe filled, a database back).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGatewayReadyzDatabaseStopped: /readyz is not ready (503, the
// database's error) while the database is stopped, and ready again once it
// is back.
func TestGatewayReadyzDatabaseStopped(t *testing.T) {
	t.Parallel()
	pg := testutil.StartPostgres(t)
	ws := t.TempDir()
	g := startGateway(t, "gateway", gatewayEnv(ws, filepath.Join(ws, "data"), map[string]string{"MINI_OPENCLAW_DATABASE_URL": pg.URL()}))
	readyz := func() (int, map[string]any) {
		resp, err := http.Get(g.url("/readyz"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h
	}
	if code, h := readyz(); code != 200 || h["database"] != "ok" {
		t.Fatalf("readyz with the database up: %d %v", code, h)
	}
	pg.Stop()
	code, h := readyz()
	if db, _ := h["database"].(string); code != 503 || h["store"] != "postgres" || !strings.Contains(db, "PostgreSQL database postgres://") {
		t.Errorf("readyz with the database stopped: %d %v; want 503 and the database's error", code, h)
	}
	pg.Start()
	eventually(t, "readyz to be ready with the database back", func() bool {
		code, h := readyz()
		return code == 200 && h["database"] == "ok"
	})
}
