package session

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestCreateWritesFiles: a new session is an empty transcript and its
// meta file (the rest of Create, Get, List and Latest is in the
// sessiontest suite).
func TestCreateWritesFiles(t *testing.T) {
	s, dir := newStore(t)
	a := mustCreate(t, s, "a", "webchat")
	want := Meta{SessionID: "a", Channel: "webchat", CreatedAt: t0.UnixMilli(), UpdatedAt: t0.UnixMilli()}
	if a != want {
		t.Fatalf("Create a = %+v, want %+v", a, want)
	}
	if got := readFile(t, filepath.Join(dir, "a.jsonl")); len(got) != 0 {
		t.Fatalf("new transcript holds %q", got)
	}
	if got := metaOnDisk(t, filepath.Join(dir, "a.meta.json")); got != want {
		t.Fatalf("a.meta.json = %+v, want %+v", got, want)
	}
}

func TestListAndLatestTies(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{Now: fixedClock(t0)})
	for _, id := range []string{"y", "x", "z"} {
		mustCreate(t, s, id, "webchat")
	}
	var got []string
	for _, m := range mustList(t, s) {
		got = append(got, m.SessionID)
	}
	if strings.Join(got, ",") != "x,y,z" {
		t.Fatalf("List with equal times = %v, want x,y,z", got)
	}
	if m, _, _ := s.Latest("webchat"); m.SessionID != "z" {
		t.Fatalf("Latest with equal times = %q, want z", m.SessionID)
	}
}

// TestMetaFileAfterAppends: the meta file, written lazily, describes the
// transcript with the spec's field names (the meta itself is in the
// sessiontest suite).
func TestMetaFileAfterAppends(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "m", "telegram")
	ts := t0.Add(time.Hour).UnixMilli()
	mustAppend(t, s, "m", core.Message{Role: core.RoleSystem, Content: "system first", Timestamp: ts + 5})
	last := mustAppend(t, s, "m", testutil.UserMsg("Hello world", ts+7), testutil.AsstMsg("reply", ts+9))
	if last.Size != fileSize(t, filepath.Join(dir, "m.jsonl")) || last.MessageCount != 3 {
		t.Fatalf("Append returned %+v", last)
	}
	s.Flush() // meta files are written lazily
	if got := metaOnDisk(t, filepath.Join(dir, "m.meta.json")); got != last {
		t.Fatalf("meta on disk %+v, want %+v", got, last)
	}
	var raw map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "m.meta.json")), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sessionId", "channel", "createdAt", "updatedAt", "messageCount", "title", "size"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("meta lacks %q: %v", k, raw)
		}
	}
}

func TestOpenRebuildsMeta(t *testing.T) {
	msgs := []core.Message{
		{Role: core.RoleSystem, Content: "sys", Timestamp: 100},
		testutil.UserMsg("first question\nmore", 200),
		testutil.AsstMsg("answer", 300),
	}
	extraAt := t0.Add(time.Hour).UnixMilli() // later than the session's creation
	extra := testutil.AsstMsg("appended by hand", extraAt)
	const rebuilt, caughtUp = "session meta rebuilt", "session meta caught up"
	cases := []struct {
		name      string
		mutate    func(t *testing.T, jsonl, meta string)
		channel   string // expected after rebuild
		count     int
		updatedAt int64
		logged    string
	}{
		{"missing", func(t *testing.T, _, meta string) { removeFile(t, meta) }, DefaultChannel, 3, 300, rebuilt},
		{"garbage", func(t *testing.T, _, meta string) { writeFile(t, meta, []byte("\x00\xffnot json{")) }, DefaultChannel, 3, 300, rebuilt},
		{"empty object", func(t *testing.T, _, meta string) { writeFile(t, meta, []byte("{}")) }, DefaultChannel, 3, 300, rebuilt},
		// A meta that describes fewer lines (written lazily, or another
		// process appended): only the lines past its size are read.
		{"stale size", func(t *testing.T, jsonl, _ string) { appendFile(t, jsonl, line(t, extra)) }, "telegram", 4, extraAt, caughtUp},
		{"other session's meta", func(t *testing.T, _, meta string) {
			b := readFile(t, meta)
			writeFile(t, meta, []byte(strings.Replace(string(b), `"sessionId": "s1"`, `"sessionId": "s2"`, 1)))
		}, "telegram", 3, 300, rebuilt}, // a decodable meta still lends its channel
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newStore(t)
			mustCreate(t, s, "s1", "telegram")
			mustAppend(t, s, "s1", msgs...)
			s.Flush()
			jsonl, meta := filepath.Join(dir, "s1.jsonl"), filepath.Join(dir, "s1.meta.json")
			tc.mutate(t, jsonl, meta)

			var log testutil.Buffer
			s2 := openStore(t, dir, Options{Logger: newLogger(&log)})
			got, err := s2.Get("s1")
			if err != nil {
				t.Fatal(err)
			}
			if got.MessageCount != tc.count || got.Size != fileSize(t, jsonl) || got.Title != "first question" ||
				got.UpdatedAt != tc.updatedAt || got.Channel != tc.channel || got.SessionID != "s1" || got.CreatedAt == 0 {
				t.Fatalf("rebuilt meta %+v (file size %d)", got, fileSize(t, jsonl))
			}
			if onDisk := metaOnDisk(t, meta); onDisk != got {
				t.Fatalf("meta on disk %+v, index %+v", onDisk, got)
			}
			if !strings.Contains(log.String(), tc.logged) {
				t.Fatalf("%q not logged: %s", tc.logged, log.String())
			}
		})
	}
}

func TestOpenTrustsValidMeta(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "v", "telegram")
	m := mustAppend(t, s, "v", testutil.UserMsg("q", 10))
	// A meta whose size matches is used as is, not recounted.
	m.Title = "custom title"
	if err := writeMetaAt(t, filepath.Join(dir, "v.meta.json"), m); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, filepath.Join(dir, "v.meta.json"))
	got, err := openStore(t, dir, Options{}).Get("v")
	if err != nil || got != m {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, m)
	}
	if after := readFile(t, filepath.Join(dir, "v.meta.json")); string(after) != string(before) {
		t.Fatal("valid meta was rewritten")
	}
}

func TestOpenSkipsForeignFiles(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "ok", "webchat")
	mustAppend(t, s, "ok", testutil.UserMsg("x", 1))
	for _, name := range []string{"notes.txt", "ok.jsonl.torn", ".hidden.jsonl", "bad id.jsonl"} {
		writeFile(t, filepath.Join(dir, name), line(t, testutil.UserMsg("y", 2)))
	}
	if _, err := s.Archive("ok"); err != nil { // makes the archive/ directory
		t.Fatal(err)
	}
	mustCreate(t, s, "ok2", "webchat")
	s2 := openStore(t, dir, Options{})
	if s2.Len() != 1 || mustList(t, s2)[0].SessionID != "ok2" {
		t.Fatalf("index = %+v, want only ok2", mustList(t, s2))
	}
}

func TestSessionCreatedByAnotherStore(t *testing.T) {
	dir := t.TempDir()
	a, b := openStore(t, dir, Options{}), openStore(t, dir, Options{})
	mustCreate(t, a, "shared", "telegram")
	mustAppend(t, a, "shared", testutil.UserMsg("from a", 1))

	if _, created, err := b.Create("shared", "webchat"); err != nil || created {
		t.Fatalf("b.Create of a's session: created %v, err %v", created, err)
	}
	mustAppend(t, b, "shared", testutil.UserMsg("from b", 2))
	// a's index is stale; its next append must count b's line.
	late := t0.Add(time.Hour).UnixMilli()
	m := mustAppend(t, a, "shared", testutil.UserMsg("from a again", late))
	if m.MessageCount != 3 || m.Size != fileSize(t, filepath.Join(dir, "shared.jsonl")) || m.UpdatedAt != late {
		t.Fatalf("a's meta after catch-up: %+v", m)
	}
	got, _, err := b.Load("shared")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(testutil.Contents(got), "|") != "from a|from b|from a again" {
		t.Fatalf("Load = %q", testutil.Contents(got))
	}
}

func TestInvalidIDsRefused(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sessions")
	s := openStore(t, dir, Options{})
	mustCreate(t, s, "good", "webchat")
	mustAppend(t, s, "good", testutil.UserMsg("x", 1))
	before := dirNames(t, dir)

	bad := []string{"", ".", "..", "../evil", ".hidden", "a/b", `a\b`, "a b", "é", "x\x00y", strings.Repeat("a", protocol.MaxSessionIDLen+1)}
	for _, id := range bad {
		if protocol.ValidateSessionID(id) == nil {
			t.Fatalf("test bug: %q is a valid ID", id)
		}
		calls := map[string]error{}
		_, _, calls["Create"] = s.Create(id, "webchat")
		_, calls["Get"] = s.Get(id)
		_, calls["Append"] = s.Append(id, testutil.UserMsg("x", 1))
		_, _, calls["Load"] = s.Load(id)
		_, _, calls["Tail"] = s.Tail(id, 5)
		_, calls["Page"] = s.Page(id, 0, 5)
		_, calls["Archive"] = s.Archive(id)
		_, _, calls["Fork from"] = s.Fork(id, 0, "fork1")
		if id != "" { // "" asks Fork for a fresh UUID
			_, _, calls["Fork to"] = s.Fork("good", 0, id)
		}
		for name, err := range calls {
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("%s(%q): err %v, want ErrInvalidID", name, id, err)
			}
		}
	}
	if after := dirNames(t, dir); after != before {
		t.Errorf("sessions dir changed: %q -> %q", before, after)
	}
	if names := dirNames(t, root); names != "sessions" {
		t.Errorf("files written outside the sessions dir: %q", names)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
}

// TestArchivedByAnotherProcess: when another store (the CLI beside a
// running gateway) archives a session, this store drops it on its next
// append, and the ID can be used again, for a new session.
func TestArchivedByAnotherProcess(t *testing.T) {
	gw, dir := newStore(t)
	mustCreate(t, gw, "a1", DefaultChannel)
	mustAppend(t, gw, "a1", testutil.UserMsg("before", 1))
	mustCreate(t, gw, "a2", DefaultChannel)

	cli := openStore(t, dir, Options{})
	for _, id := range []string{"a1", "a2"} {
		if _, err := cli.Archive(id); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := gw.Append("a1", testutil.UserMsg("after", 2)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("append to an archived session: %v, want ErrNotFound", err)
	}
	if _, err := gw.Get("a1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the failed append: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"a1", "a2"} {
		m, created, err := gw.Create(id, DefaultChannel)
		if err != nil || !created || m.MessageCount != 0 {
			t.Fatalf("Create(%s) after archive = %+v, created %v, %v; want a new empty session", id, m, created, err)
		}
	}
	mustAppend(t, gw, "a1", testutil.UserMsg("a new start", 3))
	if got := readFile(t, filepath.Join(dir, "a1.jsonl")); string(got) != string(line(t, testutil.UserMsg("a new start", 3))) {
		t.Fatalf("new a1 holds %q", got)
	}
}
