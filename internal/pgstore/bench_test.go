package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/session/sessiontest"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// benchStore is a store on a new database with session "a" holding n
// messages.
func benchStore(b *testing.B, n int) *Store {
	s := openTest(b, testutil.NeedPostgres(b), Options{})
	mustCreate(b, s, "a")
	if n > 0 {
		if _, err := s.Append("a", history(n)...); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkAppend measures one append of a short message to a session of
// 1000 messages (it grows by one per round).
func BenchmarkAppend(b *testing.B) {
	s := benchStore(b, 1000)
	ts := time.Now().UnixMilli()
	for b.Loop() {
		if _, err := s.Append("a", core.Message{Role: core.RoleUser, Content: "bench says hello", Timestamp: ts}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecent is the store suite's Recent benchmark on PostgreSQL (the
// files store runs it too).
func BenchmarkRecent(b *testing.B) {
	sessiontest.BenchRecent(b, func(b *testing.B) session.Backend {
		return openTest(b, testutil.NeedPostgres(b), Options{})
	})
}

// BenchmarkList10k measures List of 10,000 sessions of two messages each.
func BenchmarkList10k(b *testing.B) {
	s := openTest(b, testutil.NeedPostgres(b), Options{})
	ctx := context.Background()
	// Written by SQL: 10,000 Creates and Appends take minutes.
	for _, sql := range []string{
		`INSERT INTO sessions (id, channel, created_at) SELECT 's' || i, 'webchat', 1000 + i FROM generate_series(1, 10000) i`,
		`INSERT INTO messages (sid, seq, role, at, line) SELECT sid, k, 'user', 2000 + sid + k,
			'{"role":"user","content":"hello ' || k || '","timestamp":' || (2000 + sid + k) || '}'
			FROM sessions, generate_series(0, 1) k`,
		`ANALYZE sessions, messages`,
	} {
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if l, err := s.List(); err != nil || len(l) != 10000 {
			b.Fatalf("List: %d sessions, %v", len(l), err)
		}
	}
}
