package session

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

func prefixes(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

func TestConcurrentAppendsOneSession(t *testing.T) {
	const writers, perWriter = 50, 40
	s, dir := newStore(t)
	mustCreate(t, s, "busy", "webchat")
	names := prefixes("w%d", writers)

	var wg sync.WaitGroup
	var done atomic.Bool
	var readErr atomic.Value
	for range 2 { // readers race the writers and must never see a bad line
		wg.Go(func() {
			for ; !done.Load(); time.Sleep(time.Millisecond) {
				_, corrupt, err := s.Tail("busy", 25)
				if err == nil && len(corrupt) > 0 {
					err = fmt.Errorf("Tail saw corrupt lines %v", corrupt)
				}
				if err != nil {
					readErr.Store(err)
					return
				}
				if _, err := s.Page("busy", -1, 10); err != nil {
					readErr.Store(err)
					return
				}
				mustList(t, s)
			}
		})
	}
	var writersWG sync.WaitGroup
	for _, name := range names {
		writersWG.Go(func() {
			for i := range perWriter {
				content := fmt.Sprintf("%s-%d", name, i)
				if _, err := s.Append("busy", userMsg(content, int64(i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writersWG.Wait()
	done.Store(true)
	wg.Wait()
	if err := readErr.Load(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "busy.jsonl")
	msgs := decodeAll(t, readFile(t, path))
	if len(msgs) != writers*perWriter {
		t.Fatalf("%d lines, want %d", len(msgs), writers*perWriter)
	}
	checkWriters(t, msgs, names, perWriter)
	m, _ := s.Get("busy")
	if m.MessageCount != writers*perWriter || m.Size != fileSize(t, path) {
		t.Fatalf("meta %+v, file size %d", m, fileSize(t, path))
	}
	s.Flush() // meta files are written lazily
	if disk := metaOnDisk(t, filepath.Join(dir, "busy.meta.json")); disk != m {
		t.Fatalf("meta on disk %+v, index %+v", disk, m)
	}
}

func channelOf(k int) string { return []string{"webchat", "telegram", "cli"}[k%3] }

func TestConcurrentSessions(t *testing.T) {
	const sessions, writers, perWriter = 20, 5, 20
	s, dir := newStore(t)
	var created atomic.Int32
	var wg sync.WaitGroup
	for k := range sessions {
		id := fmt.Sprintf("s%02d", k)
		for w := range writers {
			wg.Go(func() {
				// Every writer tries to create; exactly one per session wins.
				if _, ok, err := s.Create(id, channelOf(k)); err != nil {
					t.Error(err)
					return
				} else if ok {
					created.Add(1)
				}
				for i := range perWriter {
					if _, err := s.Append(id, userMsg(fmt.Sprintf("w%d-%d", w, i), 1)); err != nil {
						t.Error(err)
						return
					}
				}
				s.Latest("webchat")
				s.Len()
			})
		}
	}
	wg.Wait()
	if created.Load() != sessions || s.Len() != sessions {
		t.Fatalf("created %d, Len %d, want %d", created.Load(), s.Len(), sessions)
	}
	for k := range sessions {
		id := fmt.Sprintf("s%02d", k)
		msgs := decodeAll(t, readFile(t, filepath.Join(dir, id+".jsonl")))
		checkWriters(t, msgs, prefixes("w%d", writers), perWriter)
		m, _ := s.Get(id)
		if m.MessageCount != writers*perWriter || m.Channel != channelOf(k) {
			t.Fatalf("%s: meta %+v, want %d messages on %s", id, m, writers*perWriter, channelOf(k))
		}
		s.Flush()
		if disk := metaOnDisk(t, filepath.Join(dir, id+".meta.json")); disk != m {
			t.Fatalf("%s: meta on disk %+v, index %+v", id, disk, m)
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
