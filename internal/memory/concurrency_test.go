//go:build unix

package memory

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Child processes are this test binary re-run with envHelper set to the
// memory directory; TestHelperProcess then appends like a second gateway.
const (
	envHelper = "MINICLAW_MEMORY_HELPER_DIR"
	envPrefix = "MINICLAW_MEMORY_HELPER_PREFIX"
	envCount  = "MINICLAW_MEMORY_HELPER_COUNT"
)

func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(envHelper)
	if dir == "" {
		t.Skip("only runs as a child process")
	}
	n, _ := strconv.Atoi(os.Getenv(envCount))
	s := &Store{Workspace: t.TempDir(), Dir: dir, Now: func() time.Time { return fixedNow }}
	if err := appendMany(s, os.Getenv(envPrefix), n); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
}

// appendMany writes n daily log lines and n facts of about 2 KB, long
// enough that a split or unlocked write would show.
func appendMany(s *Store, prefix string, n int) error {
	pad := strings.Repeat("p", 1900)
	for i := range n {
		tag := fmt.Sprintf("%s-%d", prefix, i)
		if err := s.RecordTurn(core.Message{Content: tag + " " + pad}, nil); err != nil {
			return err
		}
		if _, err := s.Remember(tag + " " + pad); err != nil {
			return err
		}
	}
	return nil
}

// checkLines requires every tag to appear in exactly one intact line of
// path, and no other line.
func checkLines(t *testing.T, path string, want map[string]bool, intact func(line, tag string) bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "\n") {
		t.Errorf("%s does not end with a newline", path)
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		tag := tagOf(line)
		if !want[tag] || seen[tag] || !intact(line, tag) {
			t.Fatalf("%s:%d: unexpected, repeated or torn line %.80q", path, i+1, line)
		}
		seen[tag] = true
	}
	if len(seen) != len(want) {
		t.Errorf("%s: %d lines, want %d", path, len(seen), len(want))
	}
}

// tagOf finds the "prefix-i" tag in a log or fact line.
func tagOf(line string) string {
	line = strings.TrimPrefix(line, "- [15:09:26] asked \"")
	line = strings.TrimPrefix(line, "- ")
	tag, _, _ := strings.Cut(line, " ")
	return tag
}

func TestConcurrentAndCrossProcessAppends(t *testing.T) {
	s := newStore(t)
	const goroutines, procs, perWriter = 16, 2, 25
	want := map[string]bool{}
	var children []*exec.Cmd
	for p := range procs {
		prefix := fmt.Sprintf("proc%d", p)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), envHelper+"="+s.Dir, envPrefix+"="+prefix, envCount+"="+strconv.Itoa(perWriter))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, cmd)
		for i := range perWriter {
			want[fmt.Sprintf("%s-%d", prefix, i)] = true
		}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		prefix := fmt.Sprintf("g%d", g)
		for i := range perWriter {
			want[fmt.Sprintf("%s-%d", prefix, i)] = true
		}
		wg.Go(func() {
			if err := appendMany(s, prefix, perWriter); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	pad := strings.Repeat("p", 1900)
	checkLines(t, s.DayFile(fixedNow), want, func(line, tag string) bool {
		return line == fmt.Sprintf("- [15:09:26] asked %q", cut(tag+" "+pad, maxAskedChars))
	})
	checkLines(t, s.File(), want, func(line, tag string) bool { return line == "- "+tag+" "+pad })
}
