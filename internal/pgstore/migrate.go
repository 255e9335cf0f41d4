package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, migrations/NNNN_name.sql, applied
// in order; version N is the database after NNNN. A released file is never
// edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that makes one gateway at a time
// migrate, so gateways started together do not race on the schema.
const migrationLock = 0x6d636c776d6967 // "mclwmig"

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order, checking
// that versions run 1, 2, 3... with no gap.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for i, name := range names {
		base := path.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", base, i+1)
		}
		b, err := migrations.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	return out, nil
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the database's schema up to this binary's newest version,
// each migration in a transaction of its own with the version it sets. A
// database whose schema is newer than this binary knows is refused: an
// older gateway would write what the newer schema no longer means.
func migrate(ctx context.Context, pool *pgxpool.Pool) (from, to int, err error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, 0, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return 0, 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS miniclaw_schema (
		version     integer     NOT NULL,
		migrated_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, 0, err
	}
	err = conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM miniclaw_schema").Scan(&from)
	if err != nil {
		return 0, 0, err
	}
	if from > len(ms) {
		return from, from, fmt.Errorf("the database's schema is version %d, newer than this miniclaw knows (%d): upgrade miniclaw, or use another database", from, len(ms))
	}
	for _, m := range ms[from:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO miniclaw_schema (version) VALUES ($1)", m.version)
			return err
		})
		if err != nil {
			return from, m.version - 1, fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return from, len(ms), nil
}
