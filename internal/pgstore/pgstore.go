// Package pgstore is the session store on PostgreSQL (session.Backend), for
// several gateways sharing sessions: chosen by MINI_OPENCLAW_DATABASE_URL.
// The files store (package session) stays the default.
//
// Transcripts are append-only rows with a per-session sequence (see
// migrations/0001_sessions.sql); a session's meta is read from them, not
// kept beside them; archive and fork are transactions. One turn of a
// session runs at a time across every gateway on the database: the turn
// holds the session's lease (lease.go). Events reach the clients of every
// gateway through LISTEN/NOTIFY (relay.go).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Options configure a Store.
type Options struct {
	// MaxConns bounds the pool the store's reads and writes use.
	MaxConns int32
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxTurns bounds the lease pool: the connections that hold the turns
	// this process runs, one each, from before a turn's user message is
	// appended until its reply is stored (or waits for another gateway's
	// turn of the session). DefaultMaxTurns when 0.
	MaxTurns int32
	// Gateway names this process in the turns it records, for the marker of
	// a turn it leaves when it dies; a random name when empty.
	Gateway string
	// OnInterrupted, when set, is called with the marker this process
	// appended to session id for a turn a stopped gateway left, so that the
	// session's clients can be told. It runs on the store's goroutines and
	// must not block for long.
	OnInterrupted func(id string, m core.Message)
}

// DefaultMaxConns is the pool's bound when Options.MaxConns is 0.
const DefaultMaxConns = 8

// Store is the session store in one PostgreSQL database.
type Store struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	now   func() time.Time
	where string // the database, for people: no password

	recent recentLRU // Recent's caches (recent.go)

	// leasePool holds the connections of the turns this process runs
	// (lease.go); it has keepalives set, so the server ends a dead
	// gateway's connection, and its lock, in time.
	leasePool     *pgxpool.Pool
	gateway       string
	onInterrupted func(id string, m core.Message)
	stopSweep     context.CancelFunc
	swept         chan struct{} // closed when the sweeper has stopped

	leaseMu sync.Mutex
	leases  map[string]*lease // sessions whose turn this process holds
}

// db is what a write runs on: the pool, or one connection of it.
type db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// withWriter runs fn on what writes of session id go through: while this
// process holds the session's lease, the connection holding it, so that a
// gateway whose lease was lost (its connection broke, and another gateway
// may now run a turn) can no longer write to the session; else the pool.
func (s *Store) withWriter(id string, fn func(db) error) error {
	if l := s.heldLease(id); l != nil {
		return l.use(fn)
	}
	return fn(s.pool)
}

// Open connects to the database url names (a postgres:// URL or a libpq
// key=value string), creates or migrates its schema, and returns the store.
// It fails when the database cannot be reached within ctx, or holds a
// schema newer than this binary knows.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = opt.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "miniclaw"
	// Writes lock a session's row, then read what the writers they waited
	// for committed: READ COMMITTED, whatever the database's default (a
	// stricter one would fail them with serialization errors instead).
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	s := &Store{log: opt.Logger, now: opt.Now, where: describe(cfg), leases: map[string]*lease{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", s.where, err)
	}
	from, to, err := migrate(ctx, s.pool)
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("%s: %w", s.where, err)
	}
	if from != to {
		s.log.Info("database schema migrated", "from", from, "to", to)
	}
	if err := s.openLeases(ctx, cfg, opt); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("%s: %w", s.where, err)
	}
	return s, nil
}

// parseURL is the pool configuration of rawURL. Its error never quotes the
// URL: pgx's message may, password and all.
func parseURL(rawURL string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, errors.New("MINI_OPENCLAW_DATABASE_URL: not a PostgreSQL URL (postgres://user:password@host:port/database)")
	}
	return cfg, nil
}

// describe names the database of cfg for messages: never its password.
func describe(cfg *pgxpool.Config) string {
	u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port), Path: "/" + cfg.ConnConfig.Database}
	if cfg.ConnConfig.User != "" {
		u.User = url.User(cfg.ConnConfig.User)
	}
	return "PostgreSQL database " + u.String()
}

// Where names the database, without its password.
func (s *Store) Where() string { return s.where }

// ArchiveWhere names where archived sessions are: the same database.
func (s *Store) ArchiveWhere() string { return "the archived sessions of " + s.where }

// CheckWritable reports whether the database answers, for readiness probes.
func (s *Store) CheckWritable() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.where, err)
	}
	return nil
}

// Watch does nothing: every gateway reads the database, so a change made
// by another one is seen by the next read.
func (s *Store) Watch() error { return nil }

// Close stops the sweeper and closes the pools, once every turn this
// process took is unlocked (a pool's Close waits for its connections).
func (s *Store) Close() {
	s.stopSweep()
	<-s.swept
	s.leasePool.Close()
	s.pool.Close()
}
