// Package sessiontest is the conformance suite of session.Backend: the
// tests every store (the files store, PostgreSQL) must pass, through the
// interface only, so the two behave alike for everything above them.
package sessiontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// T0 is where Clock starts: 2024-01-02T03:04:05.006Z.
var T0 = time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)

// Clock returns T0, T0+1s, T0+2s, ... on successive calls: the clock the
// stores open gives must read (the tests count on sessions created one
// after the other having distinct, increasing times).
func Clock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return T0.Add(time.Duration(n.Add(1)-1) * time.Second) }
}

// Opener opens a store for test t: on fresh, empty storage the first time
// it is called with t, and on the same storage when called again with the
// same t (another process's store, such as a second gateway or the CLI).
// Its stores read a Clock and are closed when t ends.
type Opener func(t *testing.T) session.Backend

// Run runs the conformance suite on the stores open gives.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"CreateGetListLatestLen", testCreateGetListLatestLen},
		{"AppendLoadRoundTrip", testAppendLoadRoundTrip},
		{"MetaAfterAppends", testMetaAfterAppends},
		{"InvalidIDs", testInvalidIDs},
		{"ReadUnknownSession", testReadUnknownSession},
		{"Resolve", testResolve},
		{"Page", testPage},
		{"Tail", testTail},
		{"RecentLoadsFromTheLatestSummary", testRecentLoadsFromTheLatestSummary},
		{"RecentFollowsAppends", testRecentFollowsAppends},
		{"Rename", testRename},
		{"ArchiveUnarchive", testArchiveUnarchive},
		{"Fork", testFork},
		{"ConcurrentAppendsOneSession", testConcurrentAppendsOneSession},
		{"ConcurrentSessions", testConcurrentSessions},
		{"AppendRacingArchive", testAppendRacingArchive},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open) })
	}
}

// BenchRecent measures a turn's read of a 1000-message session's history
// with the store's cache warm: alone, and after an append (what a turn
// does). open returns a store on fresh, empty storage, closed when b ends.
// Every store runs it, so their figures compare.
func BenchRecent(b *testing.B, open func(b *testing.B) session.Backend) {
	for _, appendFirst := range []bool{false, true} {
		name := "warm"
		if appendFirst {
			name = "after-append"
		}
		b.Run(name, func(b *testing.B) {
			s := open(b)
			mustCreate(b, s, "a", session.DefaultChannel)
			mustAppend(b, s, "a", testutil.Numbered("m", 1000)...)
			if _, err := s.Recent("a", 1000); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if appendFirst {
					mustAppend(b, s, "a", testutil.UserMsg("one more", 1))
				}
				if r, err := s.Recent("a", 1000); err != nil || len(r.Messages) != 1000 {
					b.Fatalf("Recent: %d messages, %v", len(r.Messages), err)
				}
			}
		})
	}
}

func mustCreate(t testing.TB, s session.Backend, id, channel string) session.Meta {
	t.Helper()
	m, created, err := s.Create(id, channel)
	if err != nil || !created {
		t.Fatalf("Create(%q, %q) = created %v, err %v", id, channel, created, err)
	}
	return m
}

func mustAppend(t testing.TB, s session.Backend, id string, msgs ...core.Message) session.Meta {
	t.Helper()
	m, err := s.Append(id, msgs...)
	if err != nil {
		t.Fatalf("Append(%q): %v", id, err)
	}
	return m
}

func mustList(t testing.TB, s session.Backend) []session.Meta {
	t.Helper()
	metas, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return metas
}

// export is session id's transcript as Export writes it.
func export(t testing.TB, s session.Backend, id string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Export(&b, id); err != nil {
		t.Fatalf("Export(%s): %v", id, err)
	}
	return b.Bytes()
}

// sizedMsgs returns n messages whose transcript lines are about size bytes.
func sizedMsgs(n, size int) []core.Message {
	out := make([]core.Message, n)
	for i := range out {
		head := fmt.Sprintf("m%d:", i)
		out[i] = testutil.UserMsg(head+strings.Repeat("x", max(0, size-len(head)-50)), int64(i+1))
	}
	return out
}

// lines is the transcript of msgs: each one's JSON and a newline.
func lines(t testing.TB, msgs ...core.Message) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		l, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, l...), '\n')
	}
	return b
}

func ids(ms []session.Meta) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.SessionID)
	}
	return strings.Join(out, ",")
}

func testCreateGetListLatestLen(t *testing.T, open Opener) {
	s := open(t)
	if s.Len() != 0 || len(mustList(t, s)) != 0 {
		t.Fatalf("new store: Len %d, List %v", s.Len(), mustList(t, s))
	}
	a := mustCreate(t, s, "a", "webchat")  // T0
	b := mustCreate(t, s, "b", "telegram") // T0+1s
	mustCreate(t, s, "c", "webchat")       // T0+2s

	want := session.Meta{SessionID: "a", Channel: "webchat", CreatedAt: T0.UnixMilli(), UpdatedAt: T0.UnixMilli()}
	if a != want {
		t.Fatalf("Create a = %+v, want %+v", a, want)
	}
	if got, err := s.Get("b"); err != nil || got != b {
		t.Fatalf("Get b = %+v, %v; want %+v", got, err, b)
	}
	if _, err := s.Get("nope"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get nope: err %v, want ErrNotFound", err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}

	// Create on a taken ID keeps the existing session and its channel.
	again, created, err := s.Create("a", "telegram")
	if err != nil || created || again != a {
		t.Fatalf("Create a again = %+v, created %v, err %v", again, created, err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len after re-create = %d", s.Len())
	}
	if got := ids(mustList(t, s)); got != "c,b,a" {
		t.Fatalf("List = %s, want c,b,a (most recently updated first)", got)
	}
	mustAppend(t, s, "a", testutil.UserMsg("late", T0.Add(time.Hour).UnixMilli()))
	if got := ids(mustList(t, s)); got != "a,c,b" {
		t.Fatalf("List after append = %s, want a,c,b", got)
	}
	for ch, wantID := range map[string]string{"webchat": "a", "telegram": "b"} {
		if m, ok, err := s.Latest(ch); err != nil || !ok || m.SessionID != wantID {
			t.Errorf("Latest(%s) = %q, %v, %v; want %q", ch, m.SessionID, ok, err, wantID)
		}
	}
	if m, ok, _ := s.Latest("cli"); ok {
		t.Errorf("Latest(cli) = %+v, want none", m)
	}
	// Another store on the same storage sees the same.
	if got := ids(mustList(t, open(t))); got != "a,c,b" {
		t.Fatalf("List of another store = %s, want a,c,b", got)
	}
}

func testAppendLoadRoundTrip(t *testing.T, open Opener) {
	s := open(t)
	mustCreate(t, s, "rt", "webchat")
	msgs := []core.Message{
		testutil.UserMsg("hi", 1000),
		{Role: core.RoleAssistant, Timestamp: 2000, ToolCalls: []core.ToolCallRecord{
			{ID: "t1", Name: "bash", Input: json.RawMessage(`{"cmd":"ls"}`), Output: "a\nb", IsError: true},
		}},
		{Role: core.RoleAssistant, Content: "x<y & \"é\" 🙂\n", Timestamp: 3000, Status: core.StatusAborted, Error: "stopped"},
		{Role: core.RoleSystem, Content: "sys", Timestamp: 4000},
	}
	mustAppend(t, s, "rt", msgs[0])
	mustAppend(t, s, "rt", msgs[1:]...) // several messages in one append
	if _, err := s.Append("rt"); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	// A message without a role is refused, and so is the append it is in:
	// all or nothing.
	if _, err := s.Append("rt", testutil.UserMsg("fine", 5000), core.Message{Content: "no role"}); err == nil || !strings.Contains(err.Error(), "session rt: append: message 1 has no role") {
		t.Fatalf("append without a role: %v, want an error saying so", err)
	}

	want := `{"role":"user","content":"hi","timestamp":1000}` + "\n" +
		`{"role":"assistant","content":"","timestamp":2000,"toolCalls":[{"id":"t1","name":"bash","input":{"cmd":"ls"},"output":"a\nb","isError":true}]}` + "\n" +
		`{"role":"assistant","content":"x<y & \"é\" 🙂\n","timestamp":3000,"status":"aborted","error":"stopped"}` + "\n" +
		`{"role":"system","content":"sys","timestamp":4000}` + "\n"
	if got := string(export(t, s, "rt")); got != want {
		t.Fatalf("export:\n%s\nwant:\n%s", got, want)
	}
	got, corrupt, err := s.Load("rt")
	if err != nil || len(corrupt) != 0 {
		t.Fatalf("Load: %v, corrupt %v", err, corrupt)
	}
	testutil.EqualMsgs(t, "Load", got, msgs)

	// A second store on the same storage reads the same.
	got, _, err = open(t).Load("rt")
	if err != nil {
		t.Fatal(err)
	}
	testutil.EqualMsgs(t, "Load by another store", got, msgs)
}

func testMetaAfterAppends(t *testing.T, open Opener) {
	s := open(t)
	created := mustCreate(t, s, "m", "telegram")
	ts := T0.Add(time.Hour).UnixMilli() // later than the creation
	mustAppend(t, s, "m", core.Message{Role: core.RoleSystem, Content: "system first", Timestamp: ts + 5})
	mustAppend(t, s, "m", testutil.UserMsg("", ts+6)) // no text: no title
	mustAppend(t, s, "m", testutil.UserMsg("  **Hello** world  \nsecond line", ts+7), testutil.AsstMsg("reply", ts+9))
	last := mustAppend(t, s, "m", testutil.UserMsg("later question", ts+8)) // older timestamp: updatedAt keeps the max

	want := session.Meta{
		SessionID: "m", Channel: "telegram", CreatedAt: created.CreatedAt, UpdatedAt: ts + 9,
		MessageCount: 5, Title: "Hello world", Size: int64(len(export(t, s, "m"))),
	}
	if last != want {
		t.Fatalf("Append returned %+v, want %+v", last, want)
	}
	for _, b := range []session.Backend{s, open(t)} {
		if got, err := b.Get("m"); err != nil || got != want {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
		}
	}
	// Long titles are cut to 80 runes.
	mustCreate(t, s, "long", "webchat")
	m := mustAppend(t, s, "long", testutil.UserMsg(strings.Repeat("é", 100), 1))
	if wantTitle := strings.Repeat("é", 79) + "…"; m.Title != wantTitle {
		t.Fatalf("title = %q, want %q", m.Title, wantTitle)
	}
}

// testInvalidIDs: an ID that cannot name a session is ErrInvalidID for
// every method that takes one, and changes nothing.
func testInvalidIDs(t *testing.T, open Opener) {
	s := open(t)
	mustCreate(t, s, "good", "webchat")
	mustAppend(t, s, "good", testutil.UserMsg("x", 1))
	for _, id := range []string{"", "..", "../evil", ".hidden", "a/b", "a b", "é", "x\x00y", strings.Repeat("a", 1000)} {
		calls := map[string]error{}
		_, _, calls["Create"] = s.Create(id, "webchat")
		_, calls["Get"] = s.Get(id)
		_, calls["Resolve"] = s.Resolve(id)
		_, calls["Append"] = s.Append(id, testutil.UserMsg("x", 1))
		_, _, calls["Load"] = s.Load(id)
		_, _, calls["Tail"] = s.Tail(id, 5)
		_, calls["Page"] = s.Page(id, 0, 5)
		_, calls["Recent"] = s.Recent(id, 5)
		calls["Export"] = s.Export(&bytes.Buffer{}, id)
		_, calls["Rename"] = s.Rename(id, "title")
		_, calls["Archive"] = s.Archive(id)
		_, _, calls["Fork from"] = s.Fork(id, 0, "fork1")
		if id != "" { // "" asks Fork for a fresh UUID
			_, _, calls["Fork to"] = s.Fork("good", 0, id)
		}
		for name, err := range calls {
			if !errors.Is(err, session.ErrInvalidID) {
				t.Errorf("%s(%q): err %v, want ErrInvalidID", name, id, err)
			}
		}
	}
	if got := ids(mustList(t, s)); got != "good" {
		t.Errorf("sessions after invalid IDs: %s, want good", got)
	}
}

func testReadUnknownSession(t *testing.T, open Opener) {
	s := open(t)
	calls := map[string]error{}
	_, _, calls["Load"] = s.Load("nope")
	_, _, calls["Tail"] = s.Tail("nope", 3)
	_, calls["Page"] = s.Page("nope", 0, 3)
	_, calls["Recent"] = s.Recent("nope", 3)
	calls["Export"] = s.Export(&bytes.Buffer{}, "nope")
	_, calls["Append"] = s.Append("nope", testutil.UserMsg("x", 1))
	_, calls["Rename"] = s.Rename("nope", "x")
	_, calls["Archive"] = s.Archive("nope")
	_, _, calls["Fork"] = s.Fork("nope", 1, "x")
	_, _, calls["Unarchive"] = s.Unarchive("nope")
	_, calls["ResolveArchived"] = s.ResolveArchived("nope")
	for name, err := range calls {
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if got := ids(mustList(t, s)); got != "" {
		t.Errorf("sessions after calls on an unknown one: %s", got)
	}
}

// testResolve: an exact ID wins over being a prefix of others; a unique
// prefix names its session; no match and several matches are errors; LIKE
// wildcards in a prefix are plain characters.
func testResolve(t *testing.T, open Opener) {
	s := open(t)
	for _, id := range []string{"ab", "abc", "abd", "x1", "u_1", "uv1"} {
		mustCreate(t, s, id, "webchat")
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "ab", want: "ab"},
		{in: "abc", want: "abc"},
		{in: "x", want: "x1"},
		{in: "u_", want: "u_1"},
		{in: "a", err: "ambiguous session ID prefix: a starts ab, abc, abd"},
		{in: "zz", err: "session zz: session not found"},
		{in: "a b", err: "invalid session ID"},
	} {
		got, err := s.Resolve(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Resolve(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
	for _, id := range []string{"ab", "abc", "x1"} {
		if _, err := s.Archive(id); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, s, "x1", "webchat")
	if _, err := s.Archive("x1"); err != nil { // a second archived copy
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "ab", want: "ab"},
		{in: "abc", want: "abc"},
		{in: "x", want: "x1"},
		{in: "a", err: "ambiguous session ID prefix: a starts ab, abc"},
		{in: "abd", err: "archived session abd: session not found"},
	} {
		got, err := s.ResolveArchived(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("ResolveArchived(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ResolveArchived(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

func testPage(t *testing.T, open Opener) {
	s := open(t)
	mustCreate(t, s, "p", "webchat")
	msgs := testutil.Numbered("p", 10)
	mustAppend(t, s, "p", msgs...)
	cases := []struct {
		offset, limit  int
		from, to       int // msgs[from:to]
		wantOff, total int
	}{
		{0, 3, 0, 3, 0, 10},
		{4, 3, 4, 7, 4, 10},
		{8, 5, 8, 10, 8, 10},
		{10, 3, 10, 10, 10, 10},
		{25, 3, 10, 10, 25, 10},
		{3, 0, 3, 3, 3, 10},
		{-1, 3, 7, 10, 7, 10},
		{-5, 10, 0, 10, 0, 10},
		{-1, 20, 0, 10, 0, 10},
	}
	for _, tc := range cases {
		p, err := s.Page("p", tc.offset, tc.limit)
		if err != nil {
			t.Fatalf("Page(%d, %d): %v", tc.offset, tc.limit, err)
		}
		testutil.EqualMsgs(t, fmt.Sprintf("Page(%d, %d)", tc.offset, tc.limit), p.Messages, msgs[tc.from:tc.to])
		if p.Offset != tc.wantOff || p.Total != tc.total || len(p.Corrupt) != 0 {
			t.Errorf("Page(%d, %d): offset %d total %d corrupt %v; want offset %d total %d",
				tc.offset, tc.limit, p.Offset, p.Total, p.Corrupt, tc.wantOff, tc.total)
		}
	}

	// Another store appended: the last page must still say where it
	// starts, also when the transcript is longer than one read.
	more := sizedMsgs(20, 4<<10)
	mustAppend(t, open(t), "p", more...)
	p, err := s.Page("p", -1, 5)
	if err != nil {
		t.Fatal(err)
	}
	testutil.EqualMsgs(t, "Page(-1, 5) after another writer", p.Messages, more[15:])
	if p.Offset != 25 || p.Total != 30 {
		t.Fatalf("Page(-1, 5) after another writer: offset %d total %d, want 25 30", p.Offset, p.Total)
	}
}

func testTail(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		msgs []core.Message
	}{
		{"short lines", sizedMsgs(10, 100)},
		{"long lines", sizedMsgs(6, 40<<10)},
		{"mixed sizes", append(sizedMsgs(3, 70<<10), sizedMsgs(40, 900)...)},
		{"single line", sizedMsgs(1, 10)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			mustCreate(t, s, "t", "webchat")
			if len(tc.msgs) > 0 {
				mustAppend(t, s, "t", tc.msgs...)
			}
			total := len(tc.msgs)
			for _, n := range []int{-1, 0, 1, 2, total - 1, total, total + 1, 100} {
				got, corrupt, err := s.Tail("t", n)
				if err != nil || len(corrupt) != 0 {
					t.Fatalf("Tail(%d): err %v, corrupt %v", n, err, corrupt)
				}
				testutil.EqualMsgs(t, fmt.Sprintf("Tail(%d)", n), got, tc.msgs[total-min(max(n, 0), total):])
			}
		})
	}
}

// testRecentLoadsFromTheLatestSummary: a turn's history starts at the
// latest summary record and the line it covers up to, skips superseded
// summaries, and is bounded by n like Tail.
func testRecentLoadsFromTheLatestSummary(t *testing.T, open Opener) {
	msg := func(role, content string) core.Message {
		return core.Message{Role: role, Content: content, Timestamp: 1}
	}
	sum := func(content string, covers int) core.Message {
		return core.Message{Role: core.RoleSummary, Content: content, Covers: covers, Timestamp: 1}
	}
	cases := []struct {
		name      string
		lines     []core.Message
		n         int
		wantLines []int
		wantFirst string // content of the first message
	}{
		{"no summary", []core.Message{msg("user", "u0"), msg("assistant", "a1"), msg("user", "u2")}, 10, []int{0, 1, 2}, "u0"},
		{"no summary, bounded", []core.Message{msg("user", "u0"), msg("assistant", "a1"), msg("user", "u2")}, 2, []int{1, 2}, "a1"},
		{"summary mid-turn", []core.Message{msg("user", "u0"), msg("assistant", "a1"), msg("user", "u2"), sum("S1", 2), msg("assistant", "a4"), msg("user", "u5")}, 100, []int{3, 2, 4, 5}, "S1"},
		{"latest of two, the older inside what it keeps", []core.Message{msg("user", "u0"), msg("assistant", "a1"), msg("user", "u2"), msg("assistant", "a3"), msg("user", "u4"), sum("S1", 2), msg("assistant", "a6"), sum("S2", 4), msg("user", "u8")}, 100, []int{7, 4, 6, 8}, "S2"},
		{"summary beyond the bound", []core.Message{msg("user", "u0"), sum("S1", 1), msg("user", "u2"), msg("assistant", "a3"), msg("user", "u4")}, 2, []int{3, 4}, "a3"},
		{"summary covering more than there is", []core.Message{msg("user", "u0"), sum("S1", 99), msg("user", "u2")}, 10, []int{1}, "S1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			mustCreate(t, s, "r", "webchat")
			mustAppend(t, s, "r", tc.lines...)
			r, err := s.Recent("r", tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Lines, tc.wantLines) || len(r.Messages) != len(r.Lines) || r.Messages[0].Content != tc.wantFirst {
				t.Errorf("Recent = lines %v %v, want lines %v starting with %s", r.Lines, testutil.Contents(r.Messages), tc.wantLines, tc.wantFirst)
			}
			for i, l := range r.Lines {
				if r.Messages[i].Content != tc.lines[l].Content {
					t.Errorf("message %d is %q, but line %d is %q", i, r.Messages[i].Content, l, tc.lines[l].Content)
				}
			}
		})
	}
}

// testRecentFollowsAppends is RecentFollowsChanges through the interface
// alone (the summary falling out of the bound included).
func testRecentFollowsAppends(t *testing.T, open Opener) { RecentFollowsChanges(t, open, nil) }

// RecentFollowsChanges checks that Recent keeps what it read and extends it
// by what was appended since: whatever happened to the session in between
// (appends by this store and by another, summaries, an archive and a new
// session under the same ID), it returns what a store reading afresh
// returns. raw, when not nil, appends text to session id's storage as is,
// behind the stores' backs: the steps then add a corrupt line, blank lines,
// a torn tail and its repair (what only the files store can meet).
func RecentFollowsChanges(t *testing.T, open Opener, raw func(t *testing.T, id, text string)) {
	for _, n := range []int{5, 1000} {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			a, b := open(t), open(t)
			mustCreate(t, a, "r", "webchat")
			line := 0
			msg := func(s session.Backend, k int) {
				t.Helper()
				var msgs []core.Message
				for range k {
					msgs = append(msgs, core.Message{Role: []string{core.RoleUser, core.RoleAssistant}[line%2], Content: fmt.Sprintf("m%d", line), Timestamp: 1})
					line++
				}
				mustAppend(t, s, "r", msgs...)
			}
			summary := func(s session.Backend) {
				mustAppend(t, s, "r", core.Message{Role: core.RoleSummary, Content: fmt.Sprint("S", line), Covers: line - 2, Timestamp: 1})
				line++
			}
			type step struct {
				name string
				do   func()
			}
			steps := []step{
				{"append", func() { msg(a, 3) }},
				{"append one", func() { msg(a, 1) }},
				{"append by another store", func() { msg(b, 2) }},
			}
			if raw != nil {
				steps = append(steps,
					step{"corrupt line", func() { raw(t, "r", "not json\n"); line++ }},
					step{"blank line", func() { raw(t, "r", "\n  \n") }},
					step{"append after them", func() { msg(a, 4) }})
			}
			steps = append(steps,
				step{"summary", func() { summary(b) }},
				step{"append after the summary", func() { msg(a, 3) }})
			if raw != nil {
				steps = append(steps,
					step{"torn tail", func() { raw(t, "r", `{"role":"user","con`) }},
					step{"repaired by an append", func() { msg(b, 1) }})
			}
			steps = append(steps,
				step{"summary by this store", func() { summary(a) }},
				step{"many appends", func() { msg(a, 12) }},
				step{"archived by another store, created again", func() {
					if _, err := b.Archive("r"); err != nil {
						t.Fatal(err)
					}
					mustCreate(t, b, "r", "webchat")
					line = 0
					msg(b, 2)
				}},
				step{"append to the new one", func() { msg(a, 2) }})
			for _, st := range steps {
				st.do()
				got, err := a.Recent("r", n)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				want, err := open(t).Recent("r", n)
				if err != nil {
					t.Fatalf("%s: fresh: %v", st.name, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("after %s: Recent = %+v, a fresh read gives %+v", st.name, got, want)
				}
			}
		})
	}
}

// testRename: a title set by Rename is what lists show; appends and other
// stores keep it; a bad title is refused, naming the limit.
func testRename(t *testing.T, open Opener) {
	s := open(t)
	mustCreate(t, s, "r", "webchat")
	mustAppend(t, s, "r", testutil.Numbered("r", 2)...)
	m, err := s.Rename("r", "  My plan  ")
	if err != nil || m.Title != "My plan" || m.MessageCount != 2 {
		t.Fatalf("Rename: %+v, %v", m, err)
	}
	mustAppend(t, s, "r", testutil.UserMsg("more", 2000))
	if re, _ := open(t).Get("r"); re.Title != "My plan" || re.MessageCount != 3 {
		t.Fatalf("another store's Get: %+v", re)
	}
	if got := mustList(t, s); len(got) != 1 || got[0].Title != "My plan" {
		t.Fatalf("List after rename: %+v", got)
	}
	for _, tc := range []struct{ title, err string }{
		{" ", "title is empty"},
		{"two\nlines", `title has '\n' at byte 3`},
		{strings.Repeat("é", 81), "title is 81 characters, the limit is 80"},
	} {
		if _, err := s.Rename("r", tc.title); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Rename(%q): %v, want %q", tc.title, err, tc.err)
		}
	}
}

// archivedName is an archived copy's name, whatever directory the store
// puts before it.
var archivedName = regexp.MustCompile(`^(?:.*/)?([^/]+)\.(\d{8}T\d{6}\.\d{3}Z)(-\d+)?\.jsonl$`)

// testArchiveUnarchive: an archived session leaves the live ones with every
// message, under a name saying when; its ID is free again; unarchiving
// brings the newest copy back, never over a live session.
func testArchiveUnarchive(t *testing.T, open Opener) {
	s, other := open(t), open(t)
	mustCreate(t, s, "arc", "telegram")
	mustCreate(t, s, "keep", "telegram")
	mustAppend(t, s, "arc", testutil.Numbered("a", 3)...)
	before, err := s.Get("arc")
	if err != nil {
		t.Fatal(err)
	}
	want := export(t, s, "arc")

	name, err := s.Archive("arc")
	if err != nil {
		t.Fatal(err)
	}
	if p := archivedName.FindStringSubmatch(name); p == nil || p[1] != "arc" {
		t.Fatalf("Archive = %q, want a name <id>.<UTC time>.jsonl", name)
	}
	if got := ids(mustList(t, s)); got != "keep" || s.Len() != 1 {
		t.Fatalf("live sessions after archive: %s (Len %d), want keep", got, s.Len())
	}
	for _, st := range []session.Backend{s, other} {
		if _, err := st.Append("arc", testutil.UserMsg("too late", 1)); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Append after archive: %v, want ErrNotFound", err)
		}
		if _, err := st.Get("arc"); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after archive: %v, want ErrNotFound", err)
		}
	}
	if _, err := s.Archive("arc"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("second Archive: %v, want ErrNotFound", err)
	}
	all, err := s.ListArchived()
	if err != nil || len(all) != 1 {
		t.Fatalf("ListArchived = %+v, %v; want one copy", all, err)
	}
	a := all[0]
	if path.Base(a.File) != path.Base(name) || a.Meta != before || a.ArchivedAt <= before.CreatedAt {
		t.Fatalf("archived copy %+v, want file %s, meta %+v", a, name, before)
	}

	// Unarchived, it is what it was.
	got, copies, err := other.Unarchive("arc")
	if err != nil || copies != 1 || path.Base(got.File) != path.Base(name) || got.Meta != before {
		t.Fatalf("Unarchive = %+v, %d copies, %v; want %s, meta %+v", got, copies, err, name, before)
	}
	if got := export(t, s, "arc"); !bytes.Equal(got, want) {
		t.Fatalf("unarchived transcript:\n%s\nwant:\n%s", got, want)
	}
	if m, err := s.Get("arc"); err != nil || m != before {
		t.Fatalf("unarchived meta %+v, %v; want %+v", m, err, before)
	}
	if _, err := s.ListArchived(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Archive("arc"); err != nil {
		t.Fatal(err)
	}

	// The ID is free again. Archived copies of one ID are kept side by
	// side, the newest first, and only the newest comes back.
	mustCreate(t, s, "arc", "webchat")
	mustAppend(t, s, "arc", testutil.UserMsg("second life", 5))
	if _, _, err := s.Unarchive("arc"); !errors.Is(err, session.ErrLive) {
		t.Fatalf("Unarchive over a live session: %v, want ErrLive", err)
	}
	if got := export(t, s, "arc"); !bytes.Equal(got, lines(t, testutil.UserMsg("second life", 5))) {
		t.Fatalf("the live session after a refused Unarchive holds %q", got)
	}
	name2, err := s.Archive("arc")
	if err != nil {
		t.Fatal(err)
	}
	all, err = other.ListArchived()
	if err != nil || len(all) != 2 || path.Base(all[0].File) != path.Base(name2) || all[1].Meta != before {
		t.Fatalf("ListArchived = %+v, %v; want %s, then the first copy", all, err, name2)
	}
	got, copies, err = other.Unarchive("arc")
	if err != nil || copies != 2 || path.Base(got.File) != path.Base(name2) || got.MessageCount != 1 || got.Channel != "webchat" {
		t.Fatalf("Unarchive = %+v, %d copies, %v; want the newest of 2", got, copies, err)
	}
	if all, _ := s.ListArchived(); len(all) != 1 || all[0].Meta != before {
		t.Fatalf("archived copies left: %+v, want the first one", all)
	}
}

func testFork(t *testing.T, open Opener) {
	s := open(t)
	mustCreate(t, s, "src", "telegram")
	src := testutil.Numbered("s", 5)
	src[1] = core.Message{Role: core.RoleAssistant, Timestamp: 1001, ToolCalls: []core.ToolCallRecord{
		{ID: "tu1", Name: "read", Input: []byte(`{"path":"a"}`), Output: "data"},
	}}
	mustAppend(t, s, "src", src...)
	srcBytes := export(t, s, "src")

	for _, tc := range []struct{ n, want int }{{3, 3}, {1, 1}, {0, 5}, {-1, 5}, {5, 5}, {50, 5}} {
		id := fmt.Sprintf("fork%d", tc.n+10)
		m, corrupt, err := s.Fork("src", tc.n, id)
		if err != nil || len(corrupt) != 0 {
			t.Fatalf("Fork(%d): %v %v", tc.n, err, corrupt)
		}
		want := lines(t, src[:tc.want]...)
		if got := export(t, s, id); !bytes.Equal(got, want) {
			t.Fatalf("Fork(%d) transcript:\n%s\nwant:\n%s", tc.n, got, want)
		}
		if m.SessionID != id || m.ForkedFrom != "src" || m.Channel != "telegram" || m.MessageCount != tc.want || m.Size != int64(len(want)) || m.Title != "Fork of s-0" {
			t.Fatalf("Fork(%d) meta %+v", tc.n, m)
		}
		if got, err := open(t).Get(id); err != nil || got != m {
			t.Fatalf("Fork(%d): another store's Get %+v, %v; want %+v", tc.n, got, err, m)
		}
	}
	if got := export(t, s, "src"); !bytes.Equal(got, srcBytes) {
		t.Fatal("fork changed the source transcript")
	}
	m, _, err := s.Fork("src", 2, "")
	if err != nil || len(m.SessionID) != 36 || m.MessageCount != 2 {
		t.Fatalf("Fork to a fresh ID: %+v, %v", m, err)
	}
	// A fork of a session without a title names the session.
	mustCreate(t, s, "empty", "webchat")
	if m, _, err := s.Fork("empty", 0, "emptyfork"); err != nil || m.Title != "Fork of empty" {
		t.Fatalf("fork of an untitled session: %+v, %v", m, err)
	}
	// An existing target is refused and left alone.
	before := export(t, s, "fork13")
	if _, _, err := s.Fork("src", 1, "fork13"); err == nil || !strings.Contains(err.Error(), "session src: fork: target ID fork13 already exists") {
		t.Fatalf("Fork onto an existing session: %v", err)
	}
	if got := export(t, s, "fork13"); !bytes.Equal(got, before) {
		t.Fatal("Fork onto an existing session changed it")
	}
}

func prefixes(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// testConcurrentAppendsOneSession: writers on two stores (two gateways)
// append to one session while readers read it: no message is lost,
// duplicated or torn, each writer's are in its order, and the meta counts
// them all.
func testConcurrentAppendsOneSession(t *testing.T, open Opener) {
	const writersPerStore, perWriter = 8, 15
	stores := []session.Backend{open(t), open(t)}
	mustCreate(t, stores[0], "busy", "webchat")
	names := prefixes("w%d", 2*writersPerStore)

	var readers sync.WaitGroup
	var done atomic.Bool
	var readErr atomic.Value
	for _, s := range stores { // readers race the writers and must never see a bad line
		readers.Go(func() {
			for !done.Load() {
				_, corrupt, err := s.Tail("busy", 25)
				if err == nil && len(corrupt) > 0 {
					err = fmt.Errorf("Tail saw corrupt lines %v", corrupt)
				}
				if err == nil {
					_, err = s.Page("busy", -1, 10)
				}
				if err == nil {
					_, err = s.Recent("busy", 30)
				}
				if err == nil {
					_, err = s.List()
				}
				if err != nil {
					readErr.Store(err)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w, name := range names {
		s := stores[w%2]
		writers.Go(func() {
			for i := range perWriter {
				if _, err := s.Append("busy", testutil.UserMsg(fmt.Sprintf("%s-%d", name, i), int64(i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	done.Store(true)
	readers.Wait()
	if err := readErr.Load(); err != nil {
		t.Fatal(err)
	}
	msgs, corrupt, err := stores[1].Load("busy")
	if err != nil || len(corrupt) > 0 {
		t.Fatalf("Load: %v, corrupt %v", err, corrupt)
	}
	testutil.CheckWriters(t, msgs, names, perWriter)
	if got := export(t, stores[0], "busy"); !bytes.Equal(got, lines(t, msgs...)) {
		t.Fatal("the export is not the messages Load gives")
	}
	// A store that did not write last (the files store's index follows
	// other processes through Watch) is asked afresh.
	if m, _ := open(t).Get("busy"); m.MessageCount != len(names)*perWriter || m.Size != int64(len(export(t, stores[0], "busy"))) {
		t.Fatalf("meta %+v, want %d messages", m, len(names)*perWriter)
	}
}

func testConcurrentSessions(t *testing.T, open Opener) {
	const sessions, writers, perWriter = 10, 4, 10
	s := open(t)
	channelOf := func(k int) string { return []string{"webchat", "telegram", "cli"}[k%3] }
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
					if _, err := s.Append(id, testutil.UserMsg(fmt.Sprintf("w%d-%d", w, i), 1)); err != nil {
						t.Error(err)
						return
					}
				}
				if _, _, err := s.Latest("webchat"); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if created.Load() != sessions || s.Len() != sessions {
		t.Fatalf("created %d, Len %d, want %d", created.Load(), s.Len(), sessions)
	}
	for k := range sessions {
		id := fmt.Sprintf("s%02d", k)
		msgs, _, err := s.Load(id)
		if err != nil {
			t.Fatal(err)
		}
		testutil.CheckWriters(t, msgs, prefixes("w%d", writers), perWriter)
		if m, _ := s.Get(id); m.MessageCount != writers*perWriter || m.Channel != channelOf(k) {
			t.Fatalf("%s: meta %+v, want %d messages on %s", id, m, writers*perWriter, channelOf(k))
		}
	}
}

// testAppendRacingArchive: appends racing an Archive either land in the
// archived copy or fail with ErrNotFound; none is lost and none creates
// the session again.
func testAppendRacingArchive(t *testing.T, open Opener) {
	s := open(t)
	mustCreate(t, s, "race", "webchat")
	mustAppend(t, s, "race", testutil.UserMsg("first", 1))
	var ok atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			<-start
			for i := range 50 {
				_, err := s.Append("race", testutil.UserMsg(fmt.Sprintf("w%d-%d", w, i), 2))
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, session.ErrNotFound):
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		if _, err := s.Archive("race"); err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if _, err := open(t).Get("race"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after the archive: %v, want ErrNotFound (created again?)", err)
	}
	if _, _, err := s.Unarchive("race"); err != nil {
		t.Fatal(err)
	}
	msgs, _, err := s.Load("race")
	if err != nil || len(msgs) != int(ok.Load())+1 {
		t.Fatalf("archived copy has %d messages (%v), %d appends succeeded (+1)", len(msgs), err, ok.Load())
	}
}
