package session

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
)

// checkWriters verifies that msgs holds exactly count messages
// "<prefix>-0" ... "<prefix>-<count-1>" from each writer, in order per writer,
// and nothing else.
func checkWriters(t testing.TB, msgs []core.Message, prefixes []string, count int) {
	t.Helper()
	next := map[string]int{}
	for _, p := range prefixes {
		next[p] = 0
	}
	for i, m := range msgs {
		p, num, ok := strings.Cut(m.Content, "-")
		n, err := strconv.Atoi(num)
		want, known := next[p]
		if !ok || err != nil || !known || n != want {
			t.Fatalf("message %d is %q; writer %q expected its message %d next", i, m.Content, p, want)
		}
		next[p]++
	}
	for _, p := range prefixes {
		if next[p] != count {
			t.Errorf("writer %q: %d messages, want %d", p, next[p], count)
		}
	}
}

// Appends racing an Archive either land in the archived transcript or fail
// with ErrNotFound; none is lost and none re-creates the session.
func TestAppendRacingArchive(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "race", "webchat")
	mustAppend(t, s, "race", userMsg("first", 1))
	var ok atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			<-start
			for i := range 50 {
				_, err := s.Append("race", userMsg(fmt.Sprintf("w%d-%d", w, i), 2))
				switch {
				case err == nil:
					ok.Add(1)
				case isNotFound(err):
				default:
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	var archived string
	wg.Go(func() {
		<-start
		var err error
		if archived, err = s.Archive("race"); err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if exists(filepath.Join(dir, "race.jsonl")) {
		t.Fatal("session re-created after archive")
	}
	if n := len(decodeAll(t, readFile(t, archived))); n != int(ok.Load())+1 {
		t.Fatalf("archived transcript has %d lines, %d appends succeeded (+1)", n, ok.Load())
	}
}
