package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/pgcluster"
)

// postgresEnv names the PostgreSQL server tests create their databases on:
// a URL of a role that may CREATE DATABASE (.ci/run starts a throwaway
// cluster and sets it).
const postgresEnv = "MINICLAW_TEST_DATABASE_URL"

// requirePostgresEnv set to 1, as in CI, turns a skip for want of
// PostgreSQL into a failure.
const requirePostgresEnv = "MINICLAW_REQUIRE_POSTGRES"

// testSettings keep a test cluster's memory small: a test binary may run
// several at once.
const testSettings = "-c shared_buffers=16MB"

var postgresSkipOnce sync.Once

// sharedPostgres is the server NeedPostgres starts, once per test binary,
// when MINICLAW_TEST_DATABASE_URL is unset. It lives as long as the test
// process: c holds the write end of its keeper's pipe (see pgcluster.Cluster).
var sharedPostgres struct {
	once sync.Once
	c    *pgcluster.Cluster
	err  error
}

// NeedPostgres returns the URL of a new, empty database, dropped when the
// test ends. The database is on the server MINICLAW_TEST_DATABASE_URL names;
// when it is unset but PostgreSQL's server binaries are installed, on a
// server the test binary starts for itself (once, stopped when the process
// ends however it ends). With neither, the test is skipped, saying so on
// stderr (go test prints no skip line without -v); with
// MINICLAW_REQUIRE_POSTGRES=1, as in CI, it fails instead.
func NeedPostgres(t testing.TB) string {
	t.Helper()
	admin, err := postgresAdmin()
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		skipPostgres(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "miniclaw_test_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("PostgreSQL at %s: create the test database: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop the test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// postgresAdmin returns the URL of the server NeedPostgres creates its
// databases on: MINICLAW_TEST_DATABASE_URL, else the test binary's own
// server, started on the first call. The error wraps errNoPostgres when
// there is none because PostgreSQL cannot run here.
func postgresAdmin() (string, error) {
	if admin := os.Getenv(postgresEnv); admin != "" {
		return admin, nil
	}
	s := &sharedPostgres
	s.once.Do(func() {
		c, err := pgcluster.New(testSettings)
		if err == nil {
			if err = c.Start(); err != nil {
				c.Remove()
			}
		}
		if err != nil {
			s.err = fmt.Errorf("%s is not set and no PostgreSQL server could be started for the tests: %w", postgresEnv, err)
			return
		}
		s.c = c
		fmt.Fprintf(os.Stderr, "%s: %s is not set: started a PostgreSQL server for this test binary on 127.0.0.1:%d (log: %s); it stops, and its folder is deleted, when the tests end.\n",
			filepath.Base(os.Args[0]), postgresEnv, c.Port(), c.Log())
	})
	if s.err != nil {
		return "", s.err
	}
	return s.c.URL("postgres"), nil
}

// ConnectPostgres connects to url, within 10 s, for the test's own
// queries; the connection is closed when the test ends.
func ConnectPostgres(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Postgres is a private PostgreSQL server of one test, which the test may
// stop, restart and crash. Its methods fail the test, with the end of the
// server log, when they fail; call them from the test's goroutine.
type Postgres struct {
	t testing.TB
	c *pgcluster.Cluster
}

// StartPostgres makes and starts a throwaway PostgreSQL cluster for tests
// that need to stop, restart or kill the server (NeedPostgres's databases
// share a server no test may stop). It is removed when the test ends, and
// stopped by the system's means if the test process dies. Without
// PostgreSQL's server binaries the test is skipped, or fails with
// MINICLAW_REQUIRE_POSTGRES=1, as NeedPostgres does. A start takes a second
// or two.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	c, err := pgcluster.New(testSettings)
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		skipPostgres(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
	})
	p := &Postgres{t: t, c: c}
	p.Start()
	return p
}

// URL is the address of the server's postgres database, as its superuser.
// It stays the same across Stop, Kill and Start.
func (p *Postgres) URL() string { return p.c.URL("postgres") }

// Start serves the cluster (again, after Stop or Kill: same port, same
// data) and returns when it accepts connections.
func (p *Postgres) Start() { p.check(p.c.Start()) }

// Stop shuts the server down cleanly and returns when it has ended.
func (p *Postgres) Stop() { p.check(p.c.Stop()) }

// Kill crashes the server (SIGKILL to the postmaster) and returns when all
// its processes have ended; Start then runs crash recovery.
func (p *Postgres) Kill() { p.check(p.c.Kill()) }

func (p *Postgres) check(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
}

// skipPostgres skips a test for want of PostgreSQL (err says why), saying
// so once on stderr, or fails it with MINICLAW_REQUIRE_POSTGRES=1.
func skipPostgres(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(requirePostgresEnv) == "1" {
		t.Fatalf("%s=1 but %v", requirePostgresEnv, err)
	}
	postgresSkipOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "%s: tests against PostgreSQL were skipped: %v. Install PostgreSQL's server (apt-get install postgresql) or set %s to a postgres:// URL of a role that may create databases; %s=1 makes this a failure.\n",
			filepath.Base(os.Args[0]), err, postgresEnv, requirePostgresEnv)
	})
	t.Skipf("no PostgreSQL: %v", err)
}
