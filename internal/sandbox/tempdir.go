package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miniclaw/miniclaw/internal/filelock"
	"golang.org/x/sys/unix"
)

// tempPrefix names the per-gateway temp dirs in the system temp dir.
const tempPrefix = "miniclaw-tools-"

// TempDir is a gateway's temp dir for its tools (their TMPDIR, and HOME
// when confined). It is removed by Remove; one left by a gateway that died
// is removed by the next gateway that creates one. Its owner is known by an
// flock on <dir>.lock beside it (not inside, where tools could delete it),
// which the kernel releases when the owner dies, in whatever pid namespace.
type TempDir struct {
	Path string
	lock *os.File
}

// CreateTempDir removes the temp dirs of gateways that are gone, then
// creates and locks a new one in the system temp dir.
func CreateTempDir() (*TempDir, error) {
	removeStaleTempDirs()
	lock, err := os.CreateTemp("", tempPrefix+"*.lock")
	if err != nil {
		return nil, fmt.Errorf("tools temp dir: %w", err)
	}
	d := &TempDir{Path: strings.TrimSuffix(lock.Name(), ".lock"), lock: lock}
	// Locked before the directory exists, so a directory beside a lock
	// that can be taken is always an orphan.
	// Blocking: a sweeping gateway may hold it for a moment.
	if err := filelock.Lock(lock); err != nil {
		d.removeLock()
		return nil, fmt.Errorf("tools temp dir: lock: %w", err)
	}
	if err := os.Mkdir(d.Path, 0o700); err != nil {
		d.removeLock()
		return nil, fmt.Errorf("tools temp dir: %w", err)
	}
	return d, nil
}

// Remove deletes the directory and its lock.
func (d *TempDir) Remove() error {
	return errors.Join(os.RemoveAll(d.Path), d.removeLock())
}

func (d *TempDir) removeLock() error {
	return errors.Join(os.Remove(d.lock.Name()), d.lock.Close())
}

// removeStaleTempDirs deletes every tools temp dir whose lock nobody holds.
func removeStaleTempDirs() {
	locks, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*.lock"))
	for _, name := range locks {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			dir := strings.TrimSuffix(name, ".lock")
			if _, err := os.Lstat(dir); err == nil {
				// Orphaned: its gateway locked it before creating the dir.
				os.RemoveAll(dir)
				os.Remove(name)
			}
		}
		f.Close()
	}
}
