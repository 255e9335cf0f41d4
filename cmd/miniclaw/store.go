package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/pgstore"
	"github.com/miniclaw/miniclaw/internal/session"
)

// storeOptions say which session store to open: the files in the sessions
// directory, or the PostgreSQL database when its URL is set.
type storeOptions struct {
	db          config.Database
	sessionsDir string
	workspace   string
	fsync       bool
	log         *slog.Logger
	// existing: the sessions directory must exist already (the sessions
	// commands: a mistyped --data-dir must not leave an empty data
	// directory behind).
	existing bool
	// gateway names this process in the turns it records (pgstore), and
	// onInterrupted is told of a dead gateway's turn this process marked
	// interrupted; both for the gateway only.
	gateway       string
	onInterrupted func(id string, m core.Message)
}

// databaseOpenTimeout bounds connecting to the database and migrating its
// schema at startup. A gateway that cannot reach its database within it
// exits (code 1) with an error naming the database: it would have nowhere
// to keep a message it took, and its supervisor restarts it while the
// load balancer sends clients to the gateways that are up.
const databaseOpenTimeout = 10 * time.Second

// openStore opens the session store the gateway, `miniclaw agent` and
// `miniclaw sessions` work on.
func openStore(o storeOptions) (session.Backend, error) {
	if o.db.URL == "" {
		if fi, err := os.Stat(o.sessionsDir); o.existing && (err != nil || !fi.IsDir()) {
			return nil, fmt.Errorf("no sessions directory at %s (check --data-dir or MINI_OPENCLAW_DATA_DIR)", o.sessionsDir)
		}
		return session.Open(o.sessionsDir, session.Options{Fsync: o.fsync, Logger: o.log, Workspace: o.workspace})
	}
	ctx, cancel := context.WithTimeout(context.Background(), databaseOpenTimeout)
	defer cancel()
	st, err := pgstore.Open(ctx, o.db.URL, pgstore.Options{
		MaxConns: int32(o.db.MaxConns), MaxTurns: int32(o.db.MaxTurns), Logger: o.log,
		Gateway: o.gateway, OnInterrupted: o.onInterrupted,
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("session store (MINI_OPENCLAW_DATABASE_URL): no answer within %s: %w", databaseOpenTimeout, err)
	}
	if err != nil {
		// pgstore's errors name the database without its password.
		return nil, fmt.Errorf("session store (MINI_OPENCLAW_DATABASE_URL): %w", err)
	}
	return st, nil
}

// storeKind names the store for the startup log: files or postgres.
func storeKind(db config.Database) string {
	if db.URL == "" {
		return "files"
	}
	return "postgres"
}
