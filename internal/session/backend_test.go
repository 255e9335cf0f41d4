package session_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/session/sessiontest"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// filesDirs gives each test (by its *testing.T) a data dir of its own, and
// opens files stores on it: the suite's Opener.
type filesDirs struct {
	mu   sync.Mutex
	dirs map[*testing.T]string
}

func (d *filesDirs) dir(t *testing.T) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, ok := d.dirs[t]
	if !ok {
		dir = filepath.Join(t.TempDir(), "sessions")
		d.dirs[t] = dir
	}
	return dir
}

func (d *filesDirs) open(t *testing.T) session.Backend {
	s, err := session.Open(d.dir(t), session.Options{Now: sessiontest.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestBackend runs the conformance suite every session.Backend passes on
// the files store.
func TestBackend(t *testing.T) {
	d := &filesDirs{dirs: map[*testing.T]string{}}
	sessiontest.Run(t, d.open)
}

// TestRecentFollowsEveryChange: the suite's Recent check with what only
// the files store meets besides (corrupt and blank lines, a torn tail and
// its repair, written into the transcript as another program would).
func TestRecentFollowsEveryChange(t *testing.T) {
	d := &filesDirs{dirs: map[*testing.T]string{}}
	sessiontest.RecentFollowsChanges(t, d.open, func(t *testing.T, id, text string) {
		testutil.AppendFile(t, filepath.Join(d.dir(t), id+".jsonl"), text)
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
