package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

func TestAppendRepairsTornTail(t *testing.T) {
	short := []byte(`{"role":"assistant","content":"cut sh`)
	long := []byte(`{"role":"assistant","content":"` + strings.Repeat("z", 100<<10)) // longer than the read buffer
	cases := []struct {
		name   string
		good   int // messages appended before the crash
		frag   []byte
		reopen bool // a new store (a restarted gateway) does the repair
		shrink bool // the file was also cut by hand below what the index knows
	}{
		{"same store", 2, short, false, false},
		{"same store long fragment", 2, long, false, false},
		{"reopened store", 2, short, true, false},
		{"reopened store long fragment", 2, long, true, false},
		{"only a fragment", 0, short, true, false},
		{"only a fragment same store", 0, short, false, false},
		{"file shrunk then torn", 3, short, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newStore(t)
			mustCreate(t, s, "torn", "webchat")
			path := filepath.Join(dir, "torn.jsonl")
			good := testutil.Numbered("good", tc.good)
			if len(good) > 0 {
				mustAppend(t, s, "torn", good...)
			}
			if tc.shrink {
				good = good[:1]
				writeFile(t, path, lines(t, good...))
			}
			appendFile(t, path, tc.frag)
			if tc.reopen {
				s = openStore(t, dir, Options{})
				if m, _ := s.Get("torn"); m.MessageCount != len(good) {
					t.Fatalf("MessageCount with a torn tail = %d, want %d", m.MessageCount, len(good))
				}
			}
			// Reads skip the fragment and say nothing about it.
			got, corrupt, err := s.Load("torn")
			if err != nil || len(corrupt) != 0 {
				t.Fatalf("Load before repair: %v %v", err, corrupt)
			}
			testutil.EqualMsgs(t, "Load before repair", got, good)

			next := testutil.AsstMsg("after the crash", 5000)
			m := mustAppend(t, s, "torn", next)
			want := lines(t, append(good, next)...)
			if got := readFile(t, path); string(got) != string(want) {
				t.Fatalf("transcript after repair:\n%.300q\nwant:\n%.300q", got, want)
			}
			if got := readFile(t, path+".torn"); string(got) != string(tc.frag)+"\n" {
				t.Fatalf(".torn holds %.100q, want the fragment and a newline", got)
			}
			if m.MessageCount != len(good)+1 || m.Size != int64(len(want)) {
				t.Fatalf("meta after repair %+v, want %d messages, size %d", m, len(good)+1, len(want))
			}
			s.Flush() // meta files are written lazily
			if disk := metaOnDisk(t, filepath.Join(dir, "torn.meta.json")); disk != m {
				t.Fatalf("meta on disk %+v, want %+v", disk, m)
			}

			// A second crash: the next fragment is added to the .torn file.
			appendFile(t, path, []byte("second fragment"))
			mustAppend(t, s, "torn", next)
			if got := readFile(t, path); string(got) != string(want)+string(line(t, next)) {
				t.Fatalf("transcript after second repair ends %q", tailBytes(got, 100))
			}
			if got := readFile(t, path+".torn"); string(got) != string(tc.frag)+"\nsecond fragment\n" {
				t.Fatalf(".torn after second repair ends %q", tailBytes(got, 100))
			}
		})
	}
}

func TestArchive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	s := openStore(t, dir, Options{Now: fixedClock(t0)})
	other := openStore(t, dir, Options{}) // a second process that knows the session
	mustCreate(t, s, "arc", "telegram")
	mustCreate(t, s, "keep", "telegram")
	mustAppend(t, s, "arc", testutil.Numbered("a", 3)...)
	if _, err := other.Get("arc"); err != nil {
		t.Fatal(err)
	}
	jsonl := readFile(t, filepath.Join(dir, "arc.jsonl"))
	meta := readFile(t, filepath.Join(dir, "arc.meta.json"))

	path, err := s.Archive("arc")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "archive", "arc.20240102T030405.006Z")
	if path != base+".jsonl" {
		t.Fatalf("Archive path = %s, want %s.jsonl", path, base)
	}
	if got := readFile(t, base+".jsonl"); string(got) != string(jsonl) {
		t.Fatal("archived transcript differs from the original")
	}
	if got := readFile(t, base+".meta.json"); string(got) != string(meta) {
		t.Fatal("archived meta differs from the original")
	}
	if names := dirNames(t, dir); names != "archive keep.jsonl keep.meta.json" {
		t.Fatalf("sessions dir after archive: %q", names)
	}
	if s.Len() != 1 {
		t.Fatalf("Len after archive = %d", s.Len())
	}
	for _, st := range []*Store{s, other} {
		_, err := st.Append("arc", testutil.UserMsg("too late", 1))
		if !isNotFound(err) {
			t.Fatalf("Append after archive: %v, want ErrNotFound", err)
		}
		if _, err := st.Get("arc"); st == s && !isNotFound(err) {
			t.Fatalf("Get after archive: %v", err)
		}
		if _, _, err := st.Load("arc"); !isNotFound(err) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load after archive: %v", err)
		}
	}
	if exists(filepath.Join(dir, "arc.jsonl")) {
		t.Fatal("an append after archive re-created the transcript")
	}
	if _, err := s.Archive("arc"); !isNotFound(err) {
		t.Fatalf("second Archive: %v", err)
	}
	if n := openStore(t, dir, Options{}).Len(); n != 1 {
		t.Fatalf("reopened store indexes %d sessions, want 1", n)
	}

	// The ID is free again; a later archive of it gets its own name.
	mustCreate(t, s, "arc", "telegram")
	s.now = fixedClock(t0.Add(time.Second))
	if p2, err := s.Archive("arc"); err != nil || p2 == path || !exists(path) || !exists(p2) {
		t.Fatalf("second archive = %s, %v", p2, err)
	}
}

// TestArchiveSameMillisecond: two archives of one ID at the same clock
// reading must not replace one another; each keeps its transcript and meta.
func TestArchiveSameMillisecond(t *testing.T) {
	s, dir := newStore(t)
	s.now = fixedClock(t0)
	var paths []string
	var want [][]byte
	for i := range 3 {
		mustCreate(t, s, "twice", "telegram")
		mustAppend(t, s, "twice", testutil.UserMsg(fmt.Sprintf("transcript %d", i), int64(i)))
		want = append(want, readFile(t, filepath.Join(dir, "twice.jsonl")))
		p, err := s.Archive("twice")
		if err != nil {
			t.Fatalf("archive %d: %v", i, err)
		}
		paths = append(paths, p)
	}
	base := filepath.Join(dir, "archive", "twice.20240102T030405.006Z")
	wantPaths := []string{base + ".jsonl", base + "-1.jsonl", base + "-2.jsonl"}
	for i, p := range paths {
		if p != wantPaths[i] {
			t.Fatalf("archive %d went to %s, want %s", i, p, wantPaths[i])
		}
		if got := readFile(t, p); string(got) != string(want[i]) {
			t.Fatalf("archive %d holds %q, want %q", i, got, want[i])
		}
		meta := metaOnDisk(t, strings.TrimSuffix(p, jsonlExt)+metaExt)
		if meta.MessageCount != 1 || meta.Title != fmt.Sprintf("transcript %d", i) {
			t.Fatalf("archived meta %d: %+v", i, meta)
		}
	}
}

// TestArchiveBesideAPendingMetaWrite: a process archives a session (the CLI)
// while another (a gateway) still has its meta write pending; when that
// one's flusher runs, it must not put a stray meta file back beside the
// archive.
func TestArchiveBesideAPendingMetaWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	gw := openStore(t, dir, Options{})
	mustCreate(t, gw, "left", "telegram")
	mustAppend(t, gw, "left", testutil.UserMsg("question", 1), testutil.AsstMsg("answer", 2)) // meta write pending
	cli := openStore(t, dir, Options{})
	if _, err := cli.Archive("left"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	gw.Flush()
	if names := dirNames(t, dir); names != ".index archive" {
		t.Fatalf("sessions dir after the archive and the other store's flush: %q, want only the archive and the index", names)
	}
	if _, err := gw.Get("left"); !isNotFound(err) {
		t.Fatalf("Get after the archive: %v, want ErrNotFound", err)
	}
}

func TestFork(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "src", "telegram")
	src := testutil.Numbered("s", 5)
	src[1] = core.Message{Role: core.RoleAssistant, Timestamp: 1001, ToolCalls: []core.ToolCallRecord{
		{ID: "tu1", Name: "read", Input: []byte(`{"path":"a"}`), Output: "data"},
	}}
	mustAppend(t, s, "src", src...)
	srcBytes := readFile(t, filepath.Join(dir, "src.jsonl"))

	cases := []struct {
		n, want int
	}{{3, 3}, {1, 1}, {0, 5}, {-1, 5}, {5, 5}, {50, 5}}
	for _, tc := range cases {
		id := fmt.Sprintf("fork%d", tc.n+10)
		m, corrupt, err := s.Fork("src", tc.n, id)
		if err != nil || len(corrupt) != 0 {
			t.Fatalf("Fork(%d): %v %v", tc.n, err, corrupt)
		}
		want := lines(t, src[:tc.want]...)
		if got := readFile(t, filepath.Join(dir, id+".jsonl")); string(got) != string(want) {
			t.Fatalf("Fork(%d) transcript:\n%s\nwant:\n%s", tc.n, got, want)
		}
		if m.SessionID != id || m.ForkedFrom != "src" || m.Channel != "telegram" || m.MessageCount != tc.want || m.Size != int64(len(want)) || m.Title != "Fork of s-0" {
			t.Fatalf("Fork(%d) meta %+v", tc.n, m)
		}
		s.Flush()
		if disk := metaOnDisk(t, filepath.Join(dir, id+".meta.json")); disk != m {
			t.Fatalf("Fork(%d) meta on disk %+v, want %+v", tc.n, disk, m)
		}
	}
	if got := readFile(t, filepath.Join(dir, "src.jsonl")); string(got) != string(srcBytes) {
		t.Fatal("fork changed the source transcript")
	}

	// A fresh UUID when no ID is given; forkedFrom survives a reopen and a
	// meta rebuild for staleness.
	m, _, err := s.Fork("src", 2, "")
	if err != nil || len(m.SessionID) != 36 || !exists(filepath.Join(dir, m.SessionID+".jsonl")) {
		t.Fatalf("Fork to a fresh ID: %+v, %v", m, err)
	}
	appendFile(t, filepath.Join(dir, m.SessionID+".jsonl"), line(t, testutil.UserMsg("by hand", 1)))
	if re, _ := openStore(t, dir, Options{}).Get(m.SessionID); re.ForkedFrom != "src" || re.MessageCount != 3 || re.Title != "Fork of s-0" {
		t.Fatalf("forked meta after reopen: %+v", re)
	}
	// A meta that claims more than the transcript holds is rebuilt by a
	// whole scan, which keeps the fork's title.
	metaPath := filepath.Join(dir, m.SessionID+".meta.json")
	stale := metaOnDisk(t, metaPath)
	stale.Size += 1000
	b, _ := json.Marshal(stale)
	writeFile(t, metaPath, b)
	if re, _ := openStore(t, dir, Options{}).Get(m.SessionID); re.Title != "Fork of s-0" || re.MessageCount != 3 {
		t.Fatalf("forked meta after a rebuild: %+v", re)
	}
	// Corrupt lines are not copied but reported.
	mustCreate(t, s, "bad", "webchat")
	data, good, bad := corruptTranscript(t)
	writeFile(t, filepath.Join(dir, "bad.jsonl"), data)
	m, corrupt, err := s.Fork("bad", 4, "badfork") // lines 1-4: g0 g1 garbage g2
	if err != nil {
		t.Fatal(err)
	}
	checkLineErrors(t, "Fork", corrupt, bad[:1])
	if got := readFile(t, filepath.Join(dir, "badfork.jsonl")); string(got) != string(lines(t, good[:3]...)) {
		t.Fatalf("fork of a corrupt transcript:\n%s", got)
	}
	if m.MessageCount != 3 {
		t.Fatalf("fork meta %+v", m)
	}
}

func TestFsyncStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	s := openStore(t, dir, Options{Fsync: true})
	mustCreate(t, s, "durable", "webchat")
	m := mustAppend(t, s, "durable", testutil.Numbered("d", 3)...)
	if m.MessageCount != 3 || m.Size != fileSize(t, filepath.Join(dir, "durable.jsonl")) {
		t.Fatalf("meta %+v", m)
	}
	if _, err := s.Archive("durable"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); names != "archive" {
		t.Fatalf("sessions dir holds %q after archive and probe", names)
	}
}
