package pgstore

import (
	"context"
	"sync"
	"testing"

	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/session/sessiontest"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// openTest opens a store on url for t, with the suite's clock unless opt
// sets one; it is closed when t ends.
func openTest(t testing.TB, url string, opt Options) *Store {
	t.Helper()
	if opt.Now == nil {
		opt.Now = sessiontest.Clock()
	}
	s, err := Open(context.Background(), url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestBackend runs the conformance suite every session.Backend passes on
// PostgreSQL. The suite's tests run one after the other, so each starts on
// the one database emptied (a database of its own each would cost the
// suite most of its time).
func TestBackend(t *testing.T) {
	url := testutil.NeedPostgres(t)
	var mu sync.Mutex
	seen := map[*testing.T]bool{}
	sessiontest.Run(t, func(t *testing.T) session.Backend {
		s := openTest(t, url, Options{})
		mu.Lock()
		first := !seen[t]
		seen[t] = true
		mu.Unlock()
		if first {
			if _, err := s.pool.Exec(context.Background(), "TRUNCATE sessions, messages, turns, relay_spill"); err != nil {
				t.Fatal(err)
			}
		}
		return s
	})
}
