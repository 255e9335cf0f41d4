package session

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The data directory lies in the workspace by default, so the model's bash
// can put a named pipe, a socket or a link to /dev/zero where the store
// expects one of its files. None of them may block or exhaust the store.

// specialWait bounds each call on a special file: a blocked open never
// returns, and every call here takes milliseconds.
const specialWait = 5 * time.Second

// zeroLink makes path a symbolic link to /dev/zero, which never ends.
func zeroLink(t *testing.T, path string) {
	t.Helper()
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Fatal(err)
	}
}

// within runs f under specialWait and returns its error.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	var err error
	testutil.Within(t, specialWait, what, func() { err = f() })
	return err
}

// openWithin opens the store in dir with a logger, under specialWait.
func openWithin(t *testing.T, dir string, log *testutil.Buffer) *Store {
	t.Helper()
	var s *Store
	err := within(t, "Open", func() (err error) {
		s, err = Open(dir, Options{Now: tickingClock(), Logger: newLogger(log)})
		return err
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// wantTypeError checks that err names the path and the type found.
func wantTypeError(t *testing.T, what string, err error, path, typ string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is a "+typ) {
		t.Errorf("%s: err = %v, want one naming %s as a %s", what, err, path, typ)
	}
}

// seedStore writes sessions "good-1" (two messages) and "victim-1" into a
// fresh sessions directory and closes the store, which leaves an index
// snapshot.
func seedStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sessions")
	s, err := Open(dir, Options{Now: tickingClock()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"good-1", "victim-1"} {
		mustCreate(t, s, id, "webchat")
		mustAppend(t, s, id, testutil.UserMsg(id+" hello", 1000), testutil.AsstMsg("echo", 1001))
	}
	s.Close()
	return dir
}

// checkRefused runs every operation on session id, whose transcript is not
// a regular file, and checks that each fails at once naming it.
func checkRefused(t *testing.T, s *Store, id, typ string) {
	t.Helper()
	path := s.jsonlPath(id)
	ops := []struct {
		name string
		f    func() error
	}{
		{"Get", func() error { _, err := s.Get(id); return err }},
		{"Load", func() error { _, _, err := s.Load(id); return err }},
		{"Tail", func() error { _, _, err := s.Tail(id, 5); return err }},
		{"Page", func() error { _, err := s.Page(id, 0, 5); return err }},
		{"Page from the end", func() error { _, err := s.Page(id, -1, 5); return err }},
		{"Append", func() error { _, err := s.Append(id, testutil.UserMsg("more", 2000)); return err }},
		{"Fork", func() error { _, _, err := s.Fork(id, 0, "fork-"+id); return err }},
		{"Archive", func() error { _, err := s.Archive(id); return err }},
		{"Create", func() error { _, _, err := s.Create(id, "webchat"); return err }},
	}
	for _, op := range ops {
		wantTypeError(t, op.name+" "+id, within(t, op.name+" "+id, op.f), path, typ)
	}
	if exists(s.jsonlPath("fork-" + id)) {
		t.Errorf("a failed fork of %s left a transcript", id)
	}
}

func TestSpecialTranscriptAtOpen(t *testing.T) {
	dir := seedStore(t)
	removeFile(t, filepath.Join(dir, "victim-1.jsonl"))
	testutil.Mkfifo(t, filepath.Join(dir, "victim-1.jsonl"))
	testutil.Mkfifo(t, filepath.Join(dir, "fifo-2.jsonl")) // unknown to the snapshot
	zeroLink(t, filepath.Join(dir, "zero-3.jsonl"))

	var log testutil.Buffer
	s := openWithin(t, dir, &log)
	if got := mustList(t, s); len(got) != 1 || got[0].SessionID != "good-1" || got[0].MessageCount != 2 {
		t.Fatalf("List = %+v, want good-1 alone", got)
	}
	for id, typ := range map[string]string{"victim-1": "named pipe", "fifo-2": "named pipe", "zero-3": "symbolic link leading out of"} {
		path := s.jsonlPath(id)
		if !strings.Contains(log.String(), path+" is a "+typ) {
			t.Errorf("log does not name %s as a %s:\n%s", path, typ, log.String())
		}
		checkRefused(t, s, id, typ)
	}
	if _, err := s.Append("good-1", testutil.UserMsg("still fine", 3000)); err != nil {
		t.Fatalf("Append to a regular session: %v", err)
	}
}

func TestSpecialTranscriptAfterOpen(t *testing.T) {
	dir := seedStore(t)
	var log testutil.Buffer
	s := openWithin(t, dir, &log)
	// Swapped in behind the store's back, after it indexed the session.
	removeFile(t, s.jsonlPath("victim-1"))
	testutil.Mkfifo(t, s.jsonlPath("victim-1"))
	// And one the store has never seen, looked up from disk on first use.
	testutil.Mkfifo(t, s.jsonlPath("late-2"))
	for _, id := range []string{"victim-1", "late-2"} {
		path := s.jsonlPath(id)
		for _, op := range []struct {
			name string
			f    func() error
		}{
			{"Tail", func() error { _, _, err := s.Tail(id, 5); return err }},
			{"Load", func() error { _, _, err := s.Load(id); return err }},
			{"Append", func() error { _, err := s.Append(id, testutil.UserMsg("more", 2000)); return err }},
			{"Fork", func() error { _, _, err := s.Fork(id, 0, ""); return err }},
			{"Archive", func() error { _, err := s.Archive(id); return err }},
		} {
			wantTypeError(t, op.name+" "+id, within(t, op.name+" "+id, op.f), path, "named pipe")
		}
	}
	if got := len(mustList(t, s)); got > 2 {
		t.Errorf("List has %d sessions, want at most good-1 and victim-1", got)
	}
	within(t, "Flush", func() error { s.Flush(); return nil })
}

// TestSpecialMetaAndIndex puts a named pipe, a link to /dev/zero or an
// oversized file where a meta file or the index snapshot should be: the
// store opens, indexes the sessions from their transcripts, and replaces
// the damaged file with a regular one.
func TestSpecialMetaAndIndex(t *testing.T) {
	// An oversized file is valid and gives victim-1 a title of its own: read
	// whole, it would be trusted.
	const wrongTitle = "not from the transcript"
	oversized := func(t *testing.T, path string) {
		if filepath.Base(path) == snapshotName {
			var b strings.Builder
			b.WriteString(snapshotHeader + "\n")
			for _, l := range strings.Split(strings.TrimSpace(string(readFile(t, path))), "\n")[1:] {
				var e snapEntry
				if !parseSnapLine(l, &e) {
					t.Fatalf("seeded snapshot line %q does not parse", l)
				}
				if e.e.meta.SessionID == "victim-1" {
					e.e.meta.Title = wrongTitle
				}
				b.WriteString(formatSnapLine(e.e.meta, e.jsonl, e.file) + "\n")
			}
			writeFile(t, path, []byte(b.String()))
			// Sparse: the rest reads as zeros, costing no disk.
			if err := os.Truncate(path, maxSnapshotBytes+1); err != nil {
				t.Fatal(err)
			}
			return
		}
		m := metaOnDisk(t, path)
		m.Title = wrongTitle
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, append(b[:len(b)-1], strings.Repeat(" ", maxMetaBytes)+"}\n"...))
	}
	kinds := map[string]func(t *testing.T, path string){
		"fifo":      func(t *testing.T, path string) { testutil.Mkfifo(t, path) },
		"dev-zero":  zeroLink,
		"oversized": oversized,
	}
	for name, plant := range kinds {
		for _, target := range []string{"victim-1.meta.json", snapshotName} {
			t.Run(name+" as "+target, func(t *testing.T) {
				dir := seedStore(t)
				if target != snapshotName {
					// Without a snapshot every meta file is read.
					removeFile(t, filepath.Join(dir, snapshotName))
				}
				if name != "oversized" {
					removeFile(t, filepath.Join(dir, target))
				}
				plant(t, filepath.Join(dir, target))
				var log testutil.Buffer
				s := openWithin(t, dir, &log)
				for _, id := range []string{"good-1", "victim-1"} {
					m, err := s.Get(id)
					if err != nil || m.MessageCount != 2 || m.Title != id+" hello" {
						t.Errorf("Get(%s) = %+v, %v; want 2 messages titled %q", id, m, err, id+" hello")
					}
				}
				within(t, "Close", func() error { s.Close(); return nil })
				fi, err := os.Lstat(filepath.Join(dir, target))
				if target == snapshotName && err != nil {
					t.Fatalf("no index snapshot after Close: %v", err)
				}
				if err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxSnapshotBytes) {
					t.Errorf("%s is still %v (%d bytes) after Close", target, fi.Mode(), fi.Size())
				}
				if target != snapshotName {
					if m := metaOnDisk(t, filepath.Join(dir, target)); m.Title != "victim-1 hello" {
						t.Errorf("meta on disk = %+v, want it rebuilt from the transcript", m)
					}
				}
			})
		}
	}
}

func TestTornFileSpecial(t *testing.T) {
	dir := seedStore(t)
	var log testutil.Buffer
	s := openWithin(t, dir, &log)
	// A crashed writer left a torn tail; the file that keeps it is a pipe.
	appendFile(t, s.jsonlPath("good-1"), []byte(`{"role":"user","con`))
	testutil.Mkfifo(t, s.jsonlPath("good-1")+".torn")
	var m Meta
	err := within(t, "Append", func() (err error) { m, err = s.Append("good-1", testutil.UserMsg("after", 2000)); return err })
	if err != nil || m.MessageCount != 3 {
		t.Fatalf("Append = %+v, %v; want 3 messages", m, err)
	}
	if !strings.Contains(log.String(), s.jsonlPath("good-1")+".torn is a named pipe") {
		t.Errorf("log does not say why the torn tail was not saved:\n%s", log.String())
	}
}

func TestTurnLockSpecialFile(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "s-1", "webchat")
	path := filepath.Join(dir, "s-1"+lockExt)
	testutil.Mkfifo(t, path)
	err := within(t, "LockTurn", func() error {
		l, err := s.LockTurn(context.Background(), "s-1", time.Second, func() {})
		if err == nil {
			l.Unlock()
		}
		return err
	})
	wantTypeError(t, "LockTurn", err, path, "named pipe")
}
