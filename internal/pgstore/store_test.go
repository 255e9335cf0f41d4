package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/session/sessiontest"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// transcript is messages of every kind a transcript holds, with what JSON
// escapes or keeps as it is.
func transcript() []core.Message {
	return []core.Message{
		{Role: core.RoleUser, Content: "# Plan <b>&</b> \"quoted\" é 🙂\nline two\ttab \u2028", Timestamp: 1000},
		{Role: core.RoleAssistant, Timestamp: 2000, ToolCalls: []core.ToolCallRecord{
			{ID: "t1", Name: "bash", Input: json.RawMessage(`{"cmd":"ls <dir>"}`), Output: "a\nb\x00c", IsError: true},
		}, Usage: &core.Usage{InputTokens: 10, OutputTokens: 20}},
		{Role: core.RoleAssistant, Content: "partial", Timestamp: 3000, Status: core.StatusAborted, Error: "stopped"},
		{Role: core.RoleSummary, Content: "what came before", Covers: 2, Timestamp: 4000},
		{Role: core.RoleSystem, Content: "sys", Timestamp: 5000},
	}
}

// TestExportSameBytesAsFiles: the same appends give the same export on
// both stores, byte for byte, and the same meta.
func TestExportSameBytesAsFiles(t *testing.T) {
	pg := openTest(t, testutil.NeedPostgres(t), Options{})
	files, err := session.Open(filepath.Join(t.TempDir(), "sessions"), session.Options{Now: sessiontest.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	var exports [2][]byte
	var metas [2]session.Meta
	for i, s := range []session.Backend{files, pg} {
		mustCreate(t, s, "same")
		msgs := transcript()
		if _, err := s.Append("same", msgs[:1]...); err != nil {
			t.Fatal(err)
		}
		if metas[i], err = s.Append("same", msgs[1:]...); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := s.Export(&b, "same"); err != nil {
			t.Fatal(err)
		}
		exports[i] = b.Bytes()
	}
	if !bytes.Equal(exports[0], exports[1]) {
		t.Fatalf("exports differ:\nfiles:\n%s\nPostgreSQL:\n%s", exports[0], exports[1])
	}
	if metas[0] != metas[1] {
		t.Fatalf("metas differ:\nfiles      %+v\nPostgreSQL %+v", metas[0], metas[1])
	}
}

func mustCreate(t testing.TB, s session.Backend, id string) {
	t.Helper()
	if _, created, err := s.Create(id, session.DefaultChannel); err != nil || !created {
		t.Fatalf("Create(%s): created %v, %v", id, created, err)
	}
}

// downStore is a store on a database that does not answer: a port nothing
// listens on, with a password in its URL.
func downStore(t *testing.T) *Store {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, err := pgxpool.ParseConfig("postgres://miniclaw:s3cret@" + addr + "/sessions?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &Store{pool: pool, log: slog.New(slog.DiscardHandler), now: time.Now, where: describe(cfg), leases: map[string]*lease{}}
}

// TestDatabaseDownErrors: with the database gone, every call fails (none
// hangs: each has a bounded context), saying which store and which
// operation, and never showing the password.
func TestDatabaseDownErrors(t *testing.T) {
	s := downStore(t)
	calls := map[string]error{}
	_, _, calls["create"] = s.Create("x", "webchat")
	_, calls["get"] = s.Get("x")
	_, calls["list sessions"] = s.List()
	_, _, calls["latest session"] = s.Latest("webchat")
	_, calls["resolve"] = s.Resolve("x")
	_, calls["append"] = s.Append("x", core.Message{Role: core.RoleUser, Content: "hi", Timestamp: 1})
	_, _, calls["load"] = s.Load("x")
	_, calls["page"] = s.Page("x", 0, 5)
	_, _, calls["tail"] = s.Tail("x", 5)
	_, calls["recent"] = s.Recent("x", 5)
	calls["export"] = s.Export(io.Discard, "x")
	_, calls["rename"] = s.Rename("x", "title")
	_, calls["archive"] = s.Archive("x")
	_, _, calls["fork"] = s.Fork("x", 0, "y")
	_, calls["list archived sessions"] = s.ListArchived()
	_, _, calls["unarchive"] = s.Unarchive("x")
	calls["check"] = s.CheckWritable()
	for what, err := range calls {
		if err == nil || !strings.Contains(err.Error(), s.where) || strings.Contains(err.Error(), "s3cret") ||
			what != "check" && !strings.Contains(err.Error(), what) || errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s: %v; want an error naming %s and the operation, without the password", what, err, s.where)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

// TestArchiveSameMillisecond: archives of one ID at the same clock reading
// get names of their own, as the files store's archived transcripts.
func TestArchiveSameMillisecond(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)
	s := openTest(t, testutil.NeedPostgres(t), Options{Now: func() time.Time { return at }})
	for i, want := range []string{"twice.20240102T030405.006Z.jsonl", "twice.20240102T030405.006Z-1.jsonl", "twice.20240102T030405.006Z-2.jsonl"} {
		mustCreate(t, s, "twice")
		if _, err := s.Append("twice", core.Message{Role: core.RoleUser, Content: fmt.Sprint("transcript ", i), Timestamp: 1}); err != nil {
			t.Fatal(err)
		}
		if name, err := s.Archive("twice"); err != nil || name != want {
			t.Fatalf("archive %d = %q, %v; want %q", i, name, err, want)
		}
	}
	mustCreate(t, s, "other")
	if _, err := s.Archive("other"); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListArchived()
	if err != nil || len(all) != 4 {
		t.Fatalf("ListArchived = %+v, %v", all, err)
	}
	// Newest first, as the files store lists them: by time, the -n, the ID.
	for i, want := range []string{"twice.20240102T030405.006Z-2.jsonl", "twice.20240102T030405.006Z-1.jsonl", "other.20240102T030405.006Z.jsonl", "twice.20240102T030405.006Z.jsonl"} {
		if a := all[i]; a.File != want || a.ArchivedAt != at.UnixMilli() {
			t.Errorf("archived copy %d: %s at %d, want %s", i, a.File, a.ArchivedAt, want)
		}
	}
	if all[0].Title != "transcript 2" || all[3].Title != "transcript 0" {
		t.Errorf("archived copies' titles: %q, %q", all[0].Title, all[3].Title)
	}
}

// TestCorruptLines: a line that does not decode (only an import can store
// one) is reported where it is, with its 1-based line number and its byte
// offset in the export, by every read; Fork leaves it out.
func TestCorruptLines(t *testing.T) {
	s := openTest(t, testutil.NeedPostgres(t), Options{})
	mustCreate(t, s, "c")
	good := func(i int) core.Message {
		return core.Message{Role: core.RoleUser, Content: fmt.Sprint("g", i), Timestamp: int64(i)}
	}
	if _, err := s.Append("c", good(0), good(1)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// As an import stores a line that is no message: role ''.
	if _, err := s.pool.Exec(ctx, `INSERT INTO messages (sid, seq, role, at, line)
		SELECT sid, 2, '', 0, 'not json at all' FROM sessions WHERE id = 'c'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("c", good(3), good(4)); err != nil {
		t.Fatal(err)
	}
	var export bytes.Buffer
	if err := s.Export(&export, "c"); err != nil {
		t.Fatal(err)
	}
	offset := int64(bytes.Index(export.Bytes(), []byte("not json at all")))
	check := func(what string, got []session.LineError) {
		t.Helper()
		if len(got) != 1 || got[0].Line != 3 || got[0].Offset != offset || !strings.Contains(got[0].Err, "invalid character") {
			t.Errorf("%s: corrupt %+v, want line 3 at byte %d", what, got, offset)
		}
	}
	_, corrupt, err := s.Load("c")
	check("Load", corrupt)
	_, corrupt, err2 := s.Tail("c", 3)
	check("Tail", corrupt)
	p, err3 := s.Page("c", 1, 3)
	check("Page", p.Corrupt)
	r, err4 := s.Recent("c", 10)
	check("Recent", r.Corrupt)
	m, corrupt, err5 := s.Fork("c", 4, "f")
	check("Fork", corrupt)
	if err := errors.Join(err, err2, err3, err4, err5); err != nil {
		t.Fatal(err)
	}
	if p.Total != 5 || m.MessageCount != 3 || len(r.Messages) != 4 || r.Lines[2] != 3 {
		t.Fatalf("page total %d, fork %+v, recent lines %v", p.Total, m, r.Lines)
	}
	msgs, _, err := s.Load("f")
	if err != nil || len(msgs) != 3 || msgs[2].Content != "g3" {
		t.Fatalf("fork holds %+v, %v; want g0 g1 g3", msgs, err)
	}
}

// TestListAndLatestTies: sessions updated at the same time are listed by
// ID in byte order, as the files store sorts them (not in the database's
// collation, which may put "a" before "B"); Latest takes the greatest.
func TestListAndLatestTies(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)
	s := openTest(t, testutil.NeedPostgres(t), Options{Now: func() time.Time { return at }})
	// A database made with a natural-language collation (as initdb does
	// in an en_US locale); ICU's is there whatever the server's locales.
	if _, err := s.pool.Exec(context.Background(), `ALTER TABLE sessions ALTER COLUMN id TYPE text COLLATE "und-x-icu"`); err != nil {
		t.Skipf("no ICU collation on this server: %v", err)
	}
	for _, id := range []string{"b", "a", "B", "_x", "A-1"} {
		mustCreate(t, s, id)
	}
	l, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range l {
		got = append(got, m.SessionID)
	}
	if strings.Join(got, ",") != "A-1,B,_x,a,b" {
		t.Fatalf("List with equal times = %v, want A-1,B,_x,a,b", got)
	}
	if m, _, err := s.Latest(session.DefaultChannel); err != nil || m.SessionID != "b" {
		t.Fatalf("Latest with equal times = %q, %v; want b", m.SessionID, err)
	}
}

// TestAppendsOnASerializableDatabase: a database whose default isolation
// is SERIALIZABLE does not fail concurrent appends to one session (a
// write waits for the row lock, then must see what it waited for).
func TestAppendsOnASerializableDatabase(t *testing.T) {
	url := testutil.NeedPostgres(t)
	first := openTest(t, url, Options{})
	if _, err := first.pool.Exec(context.Background(), "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = serializable', current_database()); END $$"); err != nil {
		t.Fatal(err)
	}
	stores := []*Store{openTest(t, url, Options{}), openTest(t, url, Options{})}
	mustCreate(t, stores[0], "s")
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			var err error
			for i := range 10 {
				if _, err = stores[w%2].Append("s", core.Message{Role: core.RoleUser, Content: fmt.Sprint(w, "-", i), Timestamp: 1}); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m, err := stores[1].Get("s"); err != nil || m.MessageCount != 80 {
		t.Fatalf("Get = %+v, %v; want 80 messages", m, err)
	}
}
