package session

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestSnapshotIndexesWithoutMetaFiles: after Close, a restart takes every
// unchanged session from the index snapshot, and every session changed
// behind its back (appended, meta damaged, archived, added) from its files.
func TestSnapshotIndexesWithoutMetaFiles(t *testing.T) {
	s, dir := newStore(t)
	for _, id := range []string{"same", "grown", "damaged", "gone"} {
		mustCreate(t, s, id, "telegram")
		mustAppend(t, s, id, testutil.UserMsg("question about "+id, 100), testutil.AsstMsg("answer", 200))
	}
	before, _ := s.Get("same")
	s.Close()
	if !strings.HasPrefix(string(readFile(t, filepath.Join(dir, snapshotName))), snapshotHeader+"\n") {
		t.Fatal("Close wrote no index snapshot")
	}

	// Another process changes things while this one is down.
	appendFile(t, filepath.Join(dir, "grown.jsonl"), line(t, testutil.UserMsg("one more", 300)))
	writeFile(t, filepath.Join(dir, "damaged.meta.json"), []byte("{not json"))
	removeFile(t, filepath.Join(dir, "gone.jsonl"))
	other := openStore(t, filepath.Join(t.TempDir(), "other"), Options{})
	mustCreate(t, other, "added", "cli")
	other.Close()
	for _, ext := range []string{jsonlExt, metaExt} {
		if err := os.Rename(filepath.Join(other.Dir(), "added"+ext), filepath.Join(dir, "added"+ext)); err != nil {
			t.Fatal(err)
		}
	}

	var log testutil.Buffer
	s2 := openStore(t, dir, Options{Logger: newLogger(&log)})
	if !strings.Contains(log.String(), "sessions=4 from_snapshot=2 from_meta_files=2") {
		t.Fatalf("index load not as expected: %s", log.String())
	}
	if got, _ := s2.Get("same"); got != before {
		t.Fatalf("same: %+v from the snapshot, want %+v", got, before)
	}
	if got, _ := s2.Get("grown"); got.MessageCount != 3 || got.Size != fileSize(t, filepath.Join(dir, "grown.jsonl")) {
		t.Fatalf("grown: %+v, want 3 messages", got)
	}
	// The snapshot still describes "damaged" (its transcript is unchanged),
	// and its meta file is rewritten from the index in the background.
	damaged, _ := s2.Get("damaged")
	if damaged.MessageCount != 2 || damaged.Title != "question about damaged" {
		t.Fatalf("damaged: %+v", damaged)
	}
	s2.Close() // waits for the background work
	if got := metaOnDisk(t, filepath.Join(dir, "damaged.meta.json")); got != damaged {
		t.Fatalf("damaged meta on disk %+v, want %+v", got, damaged)
	}
	if !strings.Contains(log.String(), "session meta file changed while the gateway was down") {
		t.Fatalf("repair not logged: %s", log.String())
	}
	if _, err := s2.Get("gone"); err == nil {
		t.Fatal("a session whose transcript is gone is still indexed")
	}
	if got, err := s2.Get("added"); err != nil || got.Channel != "cli" {
		t.Fatalf("added: %+v, %v", got, err)
	}
}

// TestSnapshotDamagedIsIgnored: a snapshot that is not ours, or has broken
// lines, costs only the fallback to meta files.
func TestSnapshotDamagedIsIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"foreign header": "something else\nx\t1\t2\n",
		"broken lines":   snapshotHeader + "\nfresh\tnot a number\t1\t2\t3\t4\t5\t6\t\"\"\t\"\"\t\"\"\n\x00\xff\n",
		"lying sizes":    snapshotHeader + "\nfresh\t999\t1\t2\t3\t4\t5\t6\t\"\"\t\"\"\t\"\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			s, dir := newStore(t)
			mustCreate(t, s, "fresh", "telegram")
			want := mustAppend(t, s, "fresh", testutil.UserMsg("hi", 100))
			s.Close()
			writeFile(t, filepath.Join(dir, snapshotName), []byte(content))
			got, err := openStore(t, dir, Options{}).Get("fresh")
			if err != nil || got != want {
				t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

// TestSnapshotDamagedLineNotTrusted: an index line that parses but does
// not tell the truth about its transcript (damaged in place, or written with
// a count no file of that size can hold) is not used: the session is
// indexed from its meta file and transcript, which hold the real count.
func TestSnapshotDamagedLineNotTrusted(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, line string, e *snapEntry) string{
		// A count of 4000 for a 6-line transcript of the right size and time.
		"impossible count": func(t *testing.T, _ string, e *snapEntry) string {
			m := e.e.meta
			m.MessageCount = 4000
			return formatSnapLine(m, e.jsonl, e.file)
		},
		// A plausible count, changed in place: 6 lines become 5.
		"changed in place": func(t *testing.T, line string, _ *snapEntry) string {
			damaged := strings.Replace(line, "\t6\t", "\t5\t", 1)
			if damaged == line {
				t.Fatalf("no count field 6 in %q", line)
			}
			return damaged
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, dir := newStore(t)
			mustCreate(t, s, "six", "telegram")
			want := mustAppend(t, s, "six", testutil.Numbered("m", 6)...)
			s.Close()
			path := filepath.Join(dir, snapshotName)
			header, line, _ := strings.Cut(strings.TrimSuffix(string(readFile(t, path)), "\n"), "\n")
			var e snapEntry
			if !parseSnapLine(line, &e) || e.e.meta != want {
				t.Fatalf("the snapshot line %q does not hold %+v", line, want)
			}
			writeFile(t, path, []byte(header+"\n"+damage(t, line, &e)+"\n"))

			var log testutil.Buffer
			got, err := openStore(t, dir, Options{Logger: newLogger(&log)}).Get("six")
			if err != nil || got != want {
				t.Fatalf("after a restart on the damaged index: %+v, %v; want %+v", got, err, want)
			}
			if !strings.Contains(log.String(), "from_snapshot=0 from_meta_files=1") {
				t.Fatalf("the damaged line was used: %s", log.String())
			}
		})
	}
}

// TestMetaFileImpossibleCount: the same check on the meta file path: a meta
// of the right size whose count no such file can hold is rebuilt from the
// transcript.
func TestMetaFileImpossibleCount(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "six", "telegram")
	want := mustAppend(t, s, "six", testutil.Numbered("m", 6)...)
	s.Close()
	removeFile(t, filepath.Join(dir, snapshotName))
	lying := want
	lying.MessageCount = 4000
	if err := writeMetaAt(t, filepath.Join(dir, "six.meta.json"), lying); err != nil {
		t.Fatal(err)
	}
	got, err := openStore(t, dir, Options{}).Get("six")
	if err != nil || got.MessageCount != 6 || got.Size != want.Size {
		t.Fatalf("after a restart on a lying meta file: %+v, %v; want 6 messages", got, err)
	}
}

// TestLazyMetaSeenByOtherStores: meta files lag behind appends until the
// flusher or Close writes them, and a store opened meanwhile (the CLI
// beside a running gateway) still counts every line.
func TestLazyMetaSeenByOtherStores(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "lag", DefaultChannel)
	want := mustAppend(t, s, "lag", testutil.Numbered("m", 7)...)
	got, err := openStore(t, dir, Options{}).Get("lag")
	if err != nil || got != want {
		t.Fatalf("second store: %+v, %v; want %+v", got, err, want)
	}
	s.Close()
	if disk := metaOnDisk(t, filepath.Join(dir, "lag.meta.json")); disk != want {
		t.Fatalf("meta on disk after Close %+v, want %+v", disk, want)
	}
}

// FuzzSnapshotLine: any line either fails to parse or parses to an entry
// that formats back to a line parsing to the same entry. (Entries are only
// looked up by IDs of transcripts found in the directory, so a strange ID
// in the file is never used.)
func FuzzSnapshotLine(f *testing.F) {
	f.Add(formatSnapLine(Meta{SessionID: "a", Channel: "webchat", Title: "tab\there\nnewline", MessageCount: 3, Size: 9}, fileStamp{9, 1}, fileStamp{100, 2}))
	f.Add("a\t1\t2\t3\t4\t5\t6\t7\t\"\"\t\"\"\t\"\"")
	f.Add("a\t-1\t2\t3\t4\t5\t6\t7\t\"\"\t\"\"\t\"x")
	f.Add("a\t1\t2\t3\t4\t5\t6\t7\t\"\"\t\"\"\t\"\"\textra")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		var e snapEntry
		if !parseSnapLine(line, &e) {
			return
		}
		var again snapEntry
		if !parseSnapLine(formatSnapLine(e.e.meta, e.jsonl, e.file), &again) ||
			again.e.meta != e.e.meta || again.jsonl != e.jsonl || again.file != e.file {
			t.Fatalf("round trip of %q: %+v, want %+v", line, again.e.meta, e.e.meta)
		}
	})
}

// TestSnapshotWrittenOnlyWhenDue: a store that only reads (the CLI's
// `sessions list`) leaves a current snapshot alone; an append makes the
// next Close write a new one; and a meta file repaired in the background
// is recorded, so the next start does not repair it again.
func TestSnapshotWrittenOnlyWhenDue(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "r", DefaultChannel)
	mustAppend(t, s, "r", testutil.UserMsg("hello", 1))
	s.Close()
	path := filepath.Join(dir, snapshotName)
	stat := func() os.FileInfo {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	before := stat()

	reader := openStore(t, dir, Options{})
	mustList(t, reader)
	if _, _, err := reader.Tail("r", 5); err != nil {
		t.Fatal(err)
	}
	reader.Close()
	if after := stat(); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("a read-only store rewrote a current snapshot")
	}

	writer := openStore(t, dir, Options{})
	mustAppend(t, writer, "r", testutil.AsstMsg("hi", 2))
	writer.Close()
	if after := stat(); os.SameFile(before, after) {
		t.Fatal("Close after an append did not write a new snapshot")
	}

	writeFile(t, filepath.Join(dir, "r.meta.json"), []byte("{not json"))
	openStore(t, dir, Options{}).Close() // repairs the meta in the background
	var log testutil.Buffer
	openStore(t, dir, Options{Logger: newLogger(&log)}).Close()
	if strings.Contains(log.String(), "meta file changed") || !strings.Contains(log.String(), "from_snapshot=1") {
		t.Fatalf("second start after a repair: %s", log.String())
	}
}
