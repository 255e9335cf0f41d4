// Package memory is the agent's long-term memory, kept as plain
// Markdown the user can read and edit:
//
//   - <workspace>/MEMORY.md: the user's own notes, read first;
//   - <memory>/MEMORY.md: facts the model stores with memory_write;
//   - <memory>/daily-logs/YYYY-MM-DD.md: one line per turn, "- [HH:MM:SS]
//     summary", appended by the gateway after the turn is persisted.
//
// The prompt's Memory section holds both MEMORY.md files and the logs of
// the last PromptDays days, each capped (see the Max* constants) with a
// note saying what was cut; memory_search reaches the rest.
//
// Appends are one write of whole lines under an exclusive flock, so
// concurrent turns and processes sharing a data directory never lose or
// interleave a line.
package memory

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Limits of what memory puts into the prompt.
const (
	// MaxMemoryBytes caps each MEMORY.md in the prompt. The head is kept:
	// a curated file puts what matters first.
	MaxMemoryBytes = 8 << 10
	// MaxDayBytes caps each day's log in the prompt. The tail is kept: the
	// latest turns matter most.
	MaxDayBytes = 4 << 10
	// PromptDays is how many days of logs (today included) the prompt holds.
	PromptDays = 3
)

// FileName is the long-term memory file, in the workspace and in the
// memory directory.
const FileName = "MEMORY.md"

// Store is the memory of one workspace and data directory. Its methods are
// safe for concurrent use, in one process and across processes.
type Store struct {
	Workspace string // holds the user's MEMORY.md
	Dir       string // the memory directory, <data>/memory
	// Fsync makes every append durable before it returns (survives power
	// loss); without it an append survives a process crash.
	Fsync bool
	Now   func() time.Time // the clock of the daily log; nil: time.Now
	Log   *slog.Logger     // where unreadable memory files are reported; nil: nowhere
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// WorkspaceFile is the user's MEMORY.md.
func (s *Store) WorkspaceFile() string { return filepath.Join(s.Workspace, FileName) }

// File is the MEMORY.md that memory_write appends to.
func (s *Store) File() string { return filepath.Join(s.Dir, FileName) }

// LogDir holds the daily logs.
func (s *Store) LogDir() string { return filepath.Join(s.Dir, "daily-logs") }

// DayFile is the log of day's date, in day's location: the gateway's local
// time, like the times of its lines.
func (s *Store) DayFile(day time.Time) string {
	return filepath.Join(s.LogDir(), day.Format(time.DateOnly)+".md")
}

// Display is how path is shown to the model and the user: relative to the
// workspace when inside it (so read_file accepts it), else absolute.
func (s *Store) Display(path string) string {
	if rel, err := filepath.Rel(s.Workspace, path); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	return path
}

// MemorySection is the prompt's Memory section ("" when there is no
// memory yet); it implements half of agent.Knowledge. A file that cannot be
// read is left out and logged: memory must never stop a turn.
func (s *Store) MemorySection() string {
	var b strings.Builder
	part := func(title, text string) {
		if strings.TrimSpace(text) == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "### %s\n%s\n", title, strings.TrimRight(text, "\n"))
	}
	report := func(text string, err error) string {
		if err != nil {
			s.warn("memory file left out of the prompt", err)
		}
		return text
	}
	for _, path := range []string{s.WorkspaceFile(), s.File()} {
		text := report(s.readHead(path, MaxMemoryBytes))
		part("Long-term memory ("+s.Display(path)+")", text)
	}
	today := s.now()
	for i := PromptDays - 1; i >= 0; i-- {
		day := today.AddDate(0, 0, -i)
		text := report(s.readTail(s.DayFile(day), MaxDayBytes))
		title := "Daily log " + day.Format(time.DateOnly)
		if i == 0 {
			title += " (today)"
		}
		part(title, text)
	}
	return b.String()
}

// warn logs a memory file that was left out.
func (s *Store) warn(msg string, err error) {
	if s.Log != nil {
		s.Log.Warn(msg, "err", err)
	}
}

// readHead returns the first limit bytes of path, cut at a line end, with a
// note when it was cut. A missing file is "".
func (s *Store) readHead(path string, limit int) (string, error) {
	f, size, err := s.openSized(path)
	if f == nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, min(size, int64(limit)+1))
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", fmt.Errorf("memory: read %s: %w", path, err)
	}
	buf = buf[:n]
	if len(buf) <= limit {
		return strings.ToValidUTF8(string(buf), ""), nil
	}
	buf = buf[:limit]
	if i := strings.LastIndexByte(string(buf), '\n'); i >= 0 {
		buf = buf[:i+1]
	} else {
		buf = []byte(validPrefix(string(buf)))
	}
	return fmt.Sprintf("%s[%s cut: the first %d of %d bytes are shown; memory_search finds the rest]\n",
		strings.ToValidUTF8(string(buf), ""), filepath.Base(path), len(buf), size), nil
}

// readTail returns the last limit bytes of path, from a line start, with a
// note when earlier lines were left out. A missing file is "".
func (s *Store) readTail(path string, limit int) (string, error) {
	f, size, err := s.openSized(path)
	if f == nil {
		return "", err
	}
	defer f.Close()
	start := max(0, size-int64(limit))
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("memory: read %s: %w", path, err)
	}
	if start == 0 {
		return strings.ToValidUTF8(string(buf), ""), nil
	}
	if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	return fmt.Sprintf("[earlier entries cut: the last %d of %d bytes are shown; memory_search finds the rest]\n%s",
		len(buf), size, strings.ToValidUTF8(string(buf), "")), nil
}

// openSized opens the regular file at path and returns its size; a missing
// file is (nil, 0, nil). A FIFO or a device is an error, never a wait.
func (s *Store) openSized(path string) (*os.File, int64, error) {
	f, fi, err := s.open(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("memory: %w", err)
	}
	return f, fi.Size(), nil
}

// open opens a memory file: path is WorkspaceFile, File or a file of
// LogDir. It is opened through a root of the workspace (the memory
// directory too when it lies inside the workspace), so a link the model
// planted to a file of the user's (~/.bashrc, ~/.aws/credentials) is
// refused with an error naming it, never read into the prompt or appended
// to. With os.O_CREATE, the file's directories are created (0700).
func (s *Store) open(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	base := s.Dir
	if path == s.WorkspaceFile() {
		base = s.Workspace
	}
	create := flag&os.O_CREATE != 0
	root, err := safeopen.OpenDir(s.Workspace, base, create)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close() // the file outlives it
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return nil, nil, err
	}
	if dir := filepath.Dir(rel); create && dir != "." {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, safeopen.InRoot(root, dir, err)
		}
	}
	return safeopen.OpenFileIn(root, rel, flag, perm, safeopen.Regular)
}

// validPrefix drops a multi-byte character cut in two at the end of s.
func validPrefix(s string) string {
	for i := 0; i < utf8.UTFMax && !utf8.ValidString(s); i++ {
		s = s[:len(s)-1]
	}
	return s
}
