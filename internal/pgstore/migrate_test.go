package pgstore

import (
	"context"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestMigrateOnceThenRefuseNewer: a new database gets every migration, a
// second Open changes nothing, and a database a newer miniclaw migrated is
// refused with a message saying so.
func TestMigrateOnceThenRefuseNewer(t *testing.T) {
	url := testutil.NeedPostgres(t)
	ctx := context.Background()
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n, v int
	if err := s.pool.QueryRow(ctx, "SELECT count(*), max(version) FROM miniclaw_schema").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || v != SchemaVersion() || v < 1 {
		t.Fatalf("miniclaw_schema: %d rows, version %d; want %d", n, v, SchemaVersion())
	}
	s.Close()
	s, err = Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO miniclaw_schema (version) VALUES ($1)", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, url, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this miniclaw knows") {
		t.Fatalf("Open on a newer schema: %v, want a refusal", err)
	}
}

// TestOpenBadURLHidesThePassword: a URL pgx cannot parse is refused without
// echoing it, password included.
func TestOpenBadURLHidesThePassword(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:s3cret@host:notaport/db", Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "MINI_OPENCLAW_DATABASE_URL") {
		t.Fatalf("Open: %v", err)
	}
}
