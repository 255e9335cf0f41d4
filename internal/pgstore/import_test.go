package pgstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// importSource builds a files store: a plain session, one with an
// unreadable line, one with a torn last line, and an archived one.
func importSource(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sessions")
	fs, err := session.Open(dir, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"plain", "corrupt", "torn", "old"} {
		if _, _, err := fs.Create(id, "webchat"); err != nil {
			t.Fatal(err)
		}
		msgs := []core.Message{
			{Role: core.RoleUser, Content: "hello from " + id, Timestamp: 1000},
			{Role: core.RoleAssistant, Content: "hi " + id + " ✓", Timestamp: 2000},
		}
		if _, err := fs.Append(id, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fs.Archive("old"); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	testutil.AppendFile(t, filepath.Join(dir, "corrupt.jsonl"), "{not json at all\n")
	testutil.AppendFile(t, filepath.Join(dir, "torn.jsonl"), `{"role":"user","content":"cut sh`)
	return dir
}

// runImport imports dir into s, returning the summary and each finished
// transcript's outcome by name (the session ID, or the archive name).
func runImport(t *testing.T, s *Store, dir string) (ImportSummary, map[string]ImportReport) {
	t.Helper()
	src, err := session.Open(dir, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := map[string]ImportReport{}
	sum, err := s.Import(context.Background(), src, func(r ImportReport) {
		if r.Outcome != "" {
			got[cmpName(r)] = r
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum, got
}

func cmpName(r ImportReport) string {
	if r.Archive != "" {
		return r.Archive
	}
	return r.Session
}

// dbTranscript is a transcript as the database holds it, with the
// newlines export writes.
func dbTranscript(t *testing.T, s *Store, where string, arg any) string {
	t.Helper()
	var out string
	err := s.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(m.line || E'\n', '' ORDER BY m.seq), '')
		FROM sessions s JOIN messages m USING (sid) WHERE `+where, arg).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImport: every transcript of a files store lands in the database with
// the same lines (an unreadable one too, a torn last one left out and
// reported), archived ones under their archive names; a second run
// skips them all; lines the files store added since are caught up; a
// session the database holds with other lines is a conflict, left alone.
func TestImport(t *testing.T) {
	s, err := Open(context.Background(), testutil.NeedPostgres(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := importSource(t)

	sum, got := runImport(t, s, dir)
	if sum != (ImportSummary{Imported: 4}) || !sum.OK() {
		t.Fatalf("first import: %+v %+v, want 4 imported", sum, got)
	}
	if r := got["torn"]; !strings.Contains(r.Detail, "torn last line") || r.Lines != 2 {
		t.Errorf("torn session's report = %+v, want 2 lines and the torn line named", r)
	}
	complete := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:strings.LastIndexByte(string(b), '\n')+1])
	}
	for _, id := range []string{"plain", "corrupt", "torn"} {
		if got, want := dbTranscript(t, s, "s.id = $1 AND s.archived_at IS NULL", id), complete(id+".jsonl"); got != want {
			t.Errorf("session %s in the database:\n%q\nwant the file's complete lines:\n%q", id, got, want)
		}
	}
	var archive string
	for name := range got {
		if strings.HasPrefix(name, "old.") {
			archive = name
		}
	}
	if archive == "" {
		t.Fatalf("no archived copy of old among %v", got)
	}
	if got, want := dbTranscript(t, s, "s.archive_name = $1", archive), complete(filepath.Join("archive", archive)); got != want {
		t.Errorf("archived %s in the database:\n%q\nwant\n%q", archive, got, want)
	}
	var role string
	if err := s.pool.QueryRow(context.Background(), `SELECT m.role FROM sessions s JOIN messages m USING (sid)
		WHERE s.id = 'corrupt' AND m.seq = 2`).Scan(&role); err != nil || role != "" {
		t.Errorf("the unreadable line's role = %q, %v; want ''", role, err)
	}

	if sum, got := runImport(t, s, dir); sum != (ImportSummary{Skipped: 4}) {
		t.Fatalf("second import: %+v %+v, want 4 skipped", sum, got)
	}

	testutil.AppendFile(t, filepath.Join(dir, "plain.jsonl"), `{"role":"user","content":"later","timestamp":3000}`+"\n")
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO messages (sid, seq, role, at, line)
		SELECT sid, 3, 'user', 4000, '{"role":"user","content":"on postgres","timestamp":4000}' FROM sessions WHERE id = 'corrupt'`); err != nil {
		t.Fatal(err)
	}
	sum, got = runImport(t, s, dir)
	if sum != (ImportSummary{CaughtUp: 1, Skipped: 2, Conflicts: 1}) || sum.OK() {
		t.Fatalf("third import: %+v %+v, want plain caught up, corrupt a conflict", sum, got)
	}
	if r := got["corrupt"]; r.Outcome != Conflict || !strings.Contains(r.Detail, "4 there, 3 in the file") {
		t.Errorf("conflict report = %+v", r)
	}
	if got, want := dbTranscript(t, s, "s.id = $1 AND s.archived_at IS NULL", "plain"), complete("plain.jsonl"); got != want {
		t.Errorf("plain after catching up:\n%q\nwant\n%q", got, want)
	}
}
