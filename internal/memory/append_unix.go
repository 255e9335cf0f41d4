//go:build unix

package memory

import (
	"fmt"
	"os"

	"github.com/miniclaw/miniclaw/internal/filelock"
)

// appendLine appends line (one line, without its "\n") to path, creating
// the file and its directory. The whole line goes out in one O_APPEND write
// under an exclusive flock, so concurrent appenders — goroutines or
// processes — never interleave or lose a line; the lock belongs to the open
// file, so a killed holder cannot leave it stuck. A file that does not end
// in a newline (a hand edit) gets one first, so the line stays its own.
// New files and directories are private to the user, like the transcripts:
// memory holds what the user told the agent.
func (s *Store) appendLine(path, line string) error {
	// A FIFO in the file's place would take the line and block the next
	// writes once its buffer is full: it is refused, as is a link out.
	f, _, err := s.open(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	if err := filelock.Lock(f); err != nil {
		return fmt.Errorf("memory: lock %s: %w", path, err)
	}
	// Closing the file releases the lock. The size is taken under it.
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	data := []byte(line + "\n")
	if size := fi.Size(); size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err != nil {
			return fmt.Errorf("memory: read %s: %w", path, err)
		}
		if last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("memory: append to %s: %w", path, err)
	}
	if s.Fsync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("memory: fsync %s: %w", path, err)
		}
	}
	return nil
}
