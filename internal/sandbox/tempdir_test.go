package sandbox_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/sandbox"
)

// A temp dir left by a gateway that died is removed by the next one; a
// live gateway's is not; Remove removes the dir and its lock.
func TestTempDirs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	live, err := sandbox.CreateTempDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(live.Path, os.TempDir()) {
		t.Fatalf("temp dir %s is not in %s", live.Path, os.TempDir())
	}
	// A dead gateway's: the lock file and the dir, the lock released.
	lock, err := os.CreateTemp("", "miniclaw-tools-*.lock")
	if err != nil {
		t.Fatal(err)
	}
	lock.Close()
	stale := strings.TrimSuffix(lock.Name(), ".lock")
	if err := os.MkdirAll(filepath.Join(stale, "home", ".cache"), 0o700); err != nil {
		t.Fatal(err)
	}

	next, err := sandbox.CreateTempDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, lock.Name()} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s of a dead gateway is still there (%v)", p, err)
		}
	}
	if fi, err := os.Stat(live.Path); err != nil || !fi.IsDir() {
		t.Errorf("a live gateway's temp dir was removed: %v", err)
	}
	for _, d := range []*sandbox.TempDir{live, next} {
		if err := d.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	if left, _ := os.ReadDir(os.TempDir()); len(left) != 0 {
		t.Errorf("left in the temp dir after Remove: %v", left)
	}
}
