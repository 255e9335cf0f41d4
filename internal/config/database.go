package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Database is where sessions are kept when they are not files in the data
// dir: a PostgreSQL database several gateways share.
type Database struct {
	// URL is a postgres:// or postgresql:// URL; "" means the files store.
	URL string
	// MaxConns bounds the pool that reads and writes sessions.
	MaxConns int
	// MaxTurns bounds the turns run at once: each holds its session's
	// lease on a connection of its own, besides the pool.
	MaxTurns int
}

// databaseSettings are the settings Database is resolved from.
var databaseSettings = []string{"MINI_OPENCLAW_DATABASE_URL", "MINI_OPENCLAW_DATABASE_MAX_CONNS", "MINI_OPENCLAW_DATABASE_MAX_TURNS"}

// resolveDatabase checks and returns the database settings; raw gives a
// setting's value and the name to blame for it (the flag or the variable).
func resolveDatabase(raw func(env string) (string, string)) (Database, error) {
	var d Database
	var errs []error
	v, name := raw("MINI_OPENCLAW_DATABASE_URL")
	if err := checkDatabaseURL(v); err != nil {
		// Never the value: it may hold the password.
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	d.URL = v
	for _, b := range []struct {
		env    string
		lo, hi int
		to     *int
	}{
		{"MINI_OPENCLAW_DATABASE_MAX_CONNS", 1, 1000, &d.MaxConns},
		{"MINI_OPENCLAW_DATABASE_MAX_TURNS", 1, 10000, &d.MaxTurns},
	} {
		v, name := raw(b.env)
		n, err := wholeNumber(v, name, b.lo, b.hi)
		if err != nil {
			errs = append(errs, err)
		}
		*b.to = n
	}
	return d, errors.Join(errs...)
}

// wholeNumber parses the value v of setting name, from lo to hi.
func wholeNumber(v, name string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return n, fmt.Errorf("%s=%q: must be a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// checkDatabaseURL checks that v ("" is fine: no database) is a PostgreSQL
// URL naming a host. Its errors never quote v, which may hold a password.
func checkDatabaseURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		// A *url.Error quotes the whole URL; what went wrong is enough.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("scheme %q: must be postgres:// or postgresql://", u.Scheme)
	}
	if u.Hostname() == "" && u.Query().Get("host") == "" {
		return errors.New("no host: want postgres://user@host:port/database (or ?host=/socket/dir)")
	}
	return nil
}

// DatabaseWhere names the database of a valid URL for people (logs, help,
// errors): the user, host, port and database, never the password, which
// may be in the URL or its parameters (so none of them are shown).
func DatabaseWhere(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a URL that does not parse)"
	}
	socket := u.Query().Get("host")
	out := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		out.User = url.User(u.User.Username())
	}
	if socket != "" {
		return fmt.Sprintf("%s (socket %s)", out.String(), socket)
	}
	return out.String()
}

// storeHelp says, for --help, which store the URL v (set by name) picks.
func storeHelp(v, name string) string {
	if v == "" {
		return "files in the data directory's sessions/ (MINI_OPENCLAW_DATABASE_URL is not set)"
	}
	if checkDatabaseURL(v) != nil {
		return "PostgreSQL, but " + name + " is not a valid URL"
	}
	return fmt.Sprintf("PostgreSQL, %s (%s)", DatabaseWhere(v), name)
}

// DatabaseFlags adds the database settings' flags to fs, for the commands
// that open the session store without running a gateway (miniclaw
// sessions). After fs.Parse, the returned function resolves them as Load
// does: flags over the environment over the defaults.
func DatabaseFlags(fs *flag.FlagSet, getenv func(string) string) func() (Database, error) {
	vals := map[string]*string{} // by env name
	byEnv := map[string]setting{}
	for _, s := range settings {
		for _, env := range databaseSettings {
			if s.env == env {
				byEnv[env] = s
				vals[env] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s)", s.help, s.env))
			}
		}
	}
	return func() (Database, error) {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		return resolveDatabase(func(env string) (string, string) {
			s := byEnv[env]
			if set[s.flag] {
				return *vals[env], "--" + s.flag
			}
			if v := getenv(env); v != "" {
				return v, env
			}
			return s.def, env
		})
	}
}
