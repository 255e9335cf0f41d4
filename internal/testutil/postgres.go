package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresEnv names the PostgreSQL server tests create their databases on:
// a URL of a role that may CREATE DATABASE (.ci/run starts a throwaway
// cluster and sets it).
const postgresEnv = "MINICLAW_TEST_DATABASE_URL"

var postgresSkipOnce sync.Once

// NeedPostgres returns the URL of a new, empty database on the server
// MINICLAW_TEST_DATABASE_URL names, dropped when the test ends; or skips the
// test when the variable is unset, saying so on stderr (go test prints no
// skip line without -v). With MINICLAW_REQUIRE_POSTGRES=1, as in CI, a
// missing server fails the test instead.
func NeedPostgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(postgresEnv)
	if admin == "" {
		if os.Getenv("MINICLAW_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("MINICLAW_REQUIRE_POSTGRES=1 but %s is not set", postgresEnv)
		}
		postgresSkipOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "%s: tests against PostgreSQL were skipped: %s is not set. Set it to a postgres:// URL of a role that may create databases; MINICLAW_REQUIRE_POSTGRES=1 makes this a failure.\n", filepath.Base(os.Args[0]), postgresEnv)
		})
		t.Skipf("no PostgreSQL server: %s is not set", postgresEnv)
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
