package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// The database settings: unset, the files store with the pool bounds'
// defaults; set, a postgres:// URL checked for its scheme and host, from
// the environment or the flag.
func TestLoadDatabase(t *testing.T) {
	c := mustLoad(t, nil)
	if c.Database != (Database{MaxConns: 8, MaxTurns: 32}) {
		t.Errorf("defaults: Database = %+v, want no URL, 8 connections, 32 turns", c.Database)
	}
	url := "postgres://miniclaw:pw@db.example:5432/miniclaw?sslmode=disable"
	c = mustLoad(t, map[string]string{"MINI_OPENCLAW_DATABASE_URL": url, "MINI_OPENCLAW_DATABASE_MAX_CONNS": "20"}, "--database-max-turns", "100")
	if c.Database != (Database{URL: url, MaxConns: 20, MaxTurns: 100}) {
		t.Errorf("Database = %+v", c.Database)
	}
	for _, ok := range []string{"postgresql://db.example/miniclaw", "postgres:///miniclaw?host=/run/postgresql"} {
		if c := mustLoad(t, nil, "--database-url", ok); c.Database.URL != ok {
			t.Errorf("--database-url %s: URL = %q", ok, c.Database.URL)
		}
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"MINI_OPENCLAW_DATABASE_URL": "mysql://u:hunter2@db/x"}, nil,
			`MINI_OPENCLAW_DATABASE_URL: scheme "mysql": must be postgres:// or postgresql://`},
		{nil, []string{"--database-url", "postgres://u:hunter2@/x"},
			`--database-url: no host: want postgres://user@host:port/database (or ?host=/socket/dir)`},
		{nil, []string{"--database-url", "host=db password=hunter2"},
			`--database-url: scheme "": must be postgres:// or postgresql://`},
		{map[string]string{"MINI_OPENCLAW_DATABASE_URL": "postgres://u:hunter2@db:port/x"}, nil,
			`MINI_OPENCLAW_DATABASE_URL: not a URL: invalid port ":port" after host`},
		{map[string]string{"MINI_OPENCLAW_DATABASE_MAX_CONNS": "0"}, nil,
			`MINI_OPENCLAW_DATABASE_MAX_CONNS="0": must be a whole number from 1 to 1000`},
		{nil, []string{"--database-max-turns", "10001"},
			`--database-max-turns="10001": must be a whole number from 1 to 10000`},
	} {
		_, _, err := load(t, tc.env, tc.args...)
		wantErr(t, err, tc.want)
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows the password", err)
		}
	}
}

// --help says which store the gateway would use, and never the password.
func TestLoadHelpNamesTheStore(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "\nSession store: files in the data directory's sessions/ (MINI_OPENCLAW_DATABASE_URL is not set).\n"},
		{map[string]string{"MINI_OPENCLAW_DATABASE_URL": "postgres://mc:hunter2@db.example:5433/chat?password=hunter2"}, nil,
			"\nSession store: PostgreSQL, postgres://mc@db.example:5433/chat (MINI_OPENCLAW_DATABASE_URL).\n"},
		{nil, []string{"--database-url", "postgresql://mc:hunter2@db.example/chat"},
			"\nSession store: PostgreSQL, postgresql://mc@db.example/chat (--database-url).\n"},
	} {
		_, out, err := load(t, tc.env, append(tc.args, "--help")...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, tc.want) {
			t.Errorf("--help with %v %v: %v, output lacks %q:\n%s", tc.env, tc.args, err, tc.want, out)
		}
		if strings.Contains(out, "hunter2") {
			t.Errorf("--help shows the password:\n%s", out)
		}
	}
}

// DatabaseFlags gives the commands that open the store without running a
// gateway (miniclaw sessions) the same settings, checked alike.
func TestDatabaseFlags(t *testing.T) {
	env := map[string]string{"MINI_OPENCLAW_DATABASE_URL": "postgres://db.example/a"}
	for _, tc := range []struct {
		args    []string
		want    Database
		wantErr string
	}{
		{nil, Database{URL: "postgres://db.example/a", MaxConns: 8, MaxTurns: 32}, ""},
		{[]string{"--database-url", "postgres://other/b"}, Database{URL: "postgres://other/b", MaxConns: 8, MaxTurns: 32}, ""},
		{[]string{"--database-url", "http://u:hunter2@x/"}, Database{}, `--database-url: scheme "http": must be postgres:// or postgresql://`},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		db := DatabaseFlags(fs, envOf(env))
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		got, err := db()
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%v: err = %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

// DatabaseWhere names the database for people: user, host, port and
// database, never a password (in the URL or its parameters).
func TestDatabaseWhere(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://mc:hunter2@db:5432/x?sslmode=disable&password=hunter2": "postgres://mc@db:5432/x",
		"postgres:///chat?host=/run/postgresql":                            "postgres:///chat (socket /run/postgresql)",
		"postgresql://db":                                                  "postgresql://db",
	} {
		if got := DatabaseWhere(in); got != want {
			t.Errorf("DatabaseWhere(%q) = %q, want %q", in, got, want)
		}
	}
}
