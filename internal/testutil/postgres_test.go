package testutil

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/pgcluster"
)

// pgQuery runs sql on the database url names and returns the first column
// of the first row as text ("" when there is no row).
func pgQuery(t *testing.T, url, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var s string
	err = c.QueryRow(ctx, sql).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return s, err
}

// mustExec runs the statements in sql on the database url names.
func mustExec(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ConnectPostgres(t, url).Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustQuery(t *testing.T, url, sql string) string {
	t.Helper()
	s, err := pgQuery(t, url, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestNeedPostgresGivesEachTestItsOwnEmptyDatabase(t *testing.T) {
	names := map[string]string{}
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			url := NeedPostgres(t)
			if n := mustQuery(t, url, "SELECT count(*)::text FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != "0" {
				t.Errorf("database %s holds %s relations in public, want an empty one", url, n)
			}
			// A table in a must not show up in b.
			mustExec(t, url, "CREATE TABLE leftover (x int)")
			names[sub] = mustQuery(t, url, "SELECT current_database()")
		})
	}
	if t.Failed() {
		return
	}
	if names["a"] == names["b"] {
		t.Fatalf("both tests got database %s", names["a"])
	}
	admin, err := postgresAdmin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if got := mustQuery(t, admin, "SELECT datname FROM pg_database WHERE datname = '"+name+"'"); got != "" {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func TestStartPostgresStopStartKeepsData(t *testing.T) {
	pg := StartPostgres(t)
	mustExec(t, pg.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the restart')")
	pg.Stop()
	if _, err := pgQuery(t, pg.URL(), "SELECT 1"); err == nil {
		t.Fatal("the server still answers after Stop")
	}
	pg.Start()
	if got := mustQuery(t, pg.URL(), "SELECT v FROM kept"); got != "before the restart" {
		t.Fatalf("after Stop and Start the table holds %q, want %q", got, "before the restart")
	}
}

func TestStartPostgresKillThenStartRecovers(t *testing.T) {
	pg := StartPostgres(t)
	mustExec(t, pg.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('committed before the crash')")
	pg.Kill()
	if _, err := pgQuery(t, pg.URL(), "SELECT 1"); err == nil {
		t.Fatal("the server still answers after Kill")
	}
	pg.Start()
	if got := mustQuery(t, pg.URL(), "SELECT v FROM kept"); got != "committed before the crash" {
		t.Fatalf("after Kill and Start the table holds %q, want %q", got, "committed before the crash")
	}
}

// pgChildEnv makes TestKilledTestLeavesNoPostgres, run as a child of
// itself, start both kinds of server, print their folders and block.
const pgChildEnv = "MINICLAW_TESTUTIL_PG_CHILD"

func TestKilledTestLeavesNoPostgres(t *testing.T) {
	if os.Getenv(pgChildEnv) == "1" {
		NeedPostgres(t) // with MINICLAW_TEST_DATABASE_URL unset: the binary's own server
		pg := StartPostgres(t)
		os.Stdout.WriteString("pgdirs " + sharedPostgres.c.Dir() + " " + pg.c.Dir() + "\n")
		io.Copy(io.Discard, os.Stdin) // until the parent kills us
		return
	}
	if _, err := pgcluster.Bin(); err != nil {
		skipPostgres(t, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledTestLeavesNoPostgres$", "-test.count=1")
	cmd.Env = append(os.Environ(), pgChildEnv+"=1", postgresEnv+"=")
	if _, err := cmd.StdinPipe(); err != nil { // never written: the child blocks reading it
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var dirs []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "pgdirs" {
			dirs = f[1:]
			break
		}
	}
	if dirs == nil {
		t.Fatalf("the child test printed no pgdirs line (scan: %v)", sc.Err())
	}
	for _, d := range dirs {
		if len(pgcluster.Processes(d)) == 0 {
			t.Fatalf("no postgres process runs in %s before the kill", d)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range dirs {
		for {
			_, statErr := os.Stat(d)
			pids := pgcluster.Processes(d)
			if len(pids) == 0 && errors.Is(statErr, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("10 s after the test process was killed, postgres processes %v still run in %s (folder: %v)", pids, d, statErr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
