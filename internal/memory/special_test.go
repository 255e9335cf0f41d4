package memory

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// within is how long a memory call may take before the test calls it
// blocked.
const within = 5 * time.Second

// A FIFO, or a link to /dev/zero, in place of a memory file never blocks a
// turn: it is left out of the prompt and of searches with a warning naming
// it, appends to it fail at once, and the other files still count.
func TestSpecialMemoryFiles(t *testing.T) {
	s := newStore(t)
	log := &testutil.Buffer{}
	s.Log = slog.New(slog.NewTextHandler(log, nil))
	testutil.Mkfifo(t, s.WorkspaceFile())
	writeFile(t, s.File(), "- deploy on Fridays is forbidden\n")
	testutil.Mkfifo(t, s.DayFile(day(0)))
	if err := os.Symlink("/dev/zero", s.DayFile(day(-1))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.DayFile(day(-2)), "- [10:00:00] asked \"deploy staging\"\n")

	var section string
	testutil.Within(t, within, "MemorySection", func() { section = s.MemorySection() })
	want := "### Long-term memory (.mini-openclaw/memory/MEMORY.md)\n- deploy on Fridays is forbidden\n\n" +
		"### Daily log 2025-03-12\n- [10:00:00] asked \"deploy staging\"\n"
	if section != want {
		t.Errorf("section = %q, want %q", section, want)
	}
	for _, p := range []string{s.WorkspaceFile(), s.DayFile(day(0))} {
		if !strings.Contains(log.String(), p+" is a named pipe, not a regular file") {
			t.Errorf("log = %q, want a warning naming the FIFO %s", log.String(), p)
		}
	}
	if !strings.Contains(log.String(), s.DayFile(day(-1))+" is a symbolic link leading out of") {
		t.Errorf("log = %q, want a warning naming the link to /dev/zero", log.String())
	}

	log.Take()
	var hits []Hit
	var err error
	testutil.Within(t, within, "Search", func() { hits, err = s.Search("deploy", 10) })
	if got := FormatHits(hits); err != nil || got != ".mini-openclaw/memory/MEMORY.md:1: - deploy on Fridays is forbidden\n"+
		".mini-openclaw/memory/daily-logs/2025-03-12.md:1: - [10:00:00] asked \"deploy staging\"\n" {
		t.Errorf("Search = %q, %v", got, err)
	}
	if !strings.Contains(log.String(), s.DayFile(day(0))+" is a named pipe") {
		t.Errorf("log = %q, want the search's warning about the FIFO", log.String())
	}

	testutil.Within(t, within, "RecordTurn", func() { err = s.RecordTurn(core.Message{Content: "hi"}, nil) })
	if err == nil || !strings.Contains(err.Error(), s.DayFile(day(0))+" is a named pipe, not a regular file") {
		t.Errorf("RecordTurn into a FIFO: err = %v", err)
	}
	other := newStore(t)
	testutil.Mkfifo(t, other.File())
	testutil.Within(t, within, "Remember", func() { _, err = other.Remember("a fact") })
	if err == nil || !strings.Contains(err.Error(), other.File()+" is a named pipe, not a regular file") {
		t.Errorf("Remember into a FIFO: err = %v", err)
	}
}

// memory_search streams its files: a sparse 64 MiB daily log (one huge
// line of NULs) costs a bounded read, not its size in memory.
func TestSearchDoesNotReadFilesWhole(t *testing.T) {
	s := newStore(t)
	writeFile(t, s.File(), "- the budget is fixed\n")
	big := s.DayFile(day(0))
	writeFile(t, big, "- [09:00:00] asked \"budget\"\n")
	if err := os.Truncate(big, 64<<20); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	hits, err := s.Search("budget", 10)
	runtime.ReadMemStats(&after)
	if err != nil || len(hits) != 2 {
		t.Fatalf("Search = %+v, %v", hits, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("a search of a 64 MiB file allocated %d bytes", n)
	}
}

// A long line is searched in its head and its hit is cut; the next line
// still has its own number.
func TestSearchLongLine(t *testing.T) {
	s := newStore(t)
	writeFile(t, filepath.Join(s.LogDir(), "2025-03-14.md"), "needle "+strings.Repeat("x", 200<<10)+"\nneedle two\n")
	hits, err := s.Search("needle", 10)
	if err != nil || len(hits) != 2 || hits[0].Line != 1 || hits[1].Line != 2 || len(hits[0].Text) > maxHitChars*4 {
		t.Fatalf("hits = %+v, %v", hits, err)
	}
}
