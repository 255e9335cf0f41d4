package session_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/session/sessiontest"
)

// TestBackend runs the conformance suite every session.Backend passes on
// the files store.
func TestBackend(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	sessiontest.Run(t, func(t *testing.T) session.Backend {
		mu.Lock()
		dir, ok := dirs[t]
		if !ok {
			dir = filepath.Join(t.TempDir(), "sessions")
			dirs[t] = dir
		}
		mu.Unlock()
		s, err := session.Open(dir, session.Options{Now: sessiontest.Clock()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	})
}

// BenchmarkRecent is the store suite's Recent benchmark on the files store
// (pgstore runs it too).
func BenchmarkRecent(b *testing.B) {
	sessiontest.BenchRecent(b, func(b *testing.B) session.Backend {
		s, err := session.Open(filepath.Join(b.TempDir(), "sessions"), session.Options{Now: sessiontest.Clock()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	})
}
