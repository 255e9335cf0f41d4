package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// history is n messages, user and assistant in turn.
func history(n int) []core.Message {
	out := make([]core.Message, n)
	for i := range out {
		out[i] = core.Message{Role: []string{core.RoleUser, core.RoleAssistant}[i%2], Content: fmt.Sprint("message ", i), Timestamp: 1}
	}
	return out
}

// TestRecentReadsOnlyWhatWasAppended: once a session's Recent is cached,
// the next one reads only the rows appended since (by any store), not the
// history again: a row changed behind the store's back (which nothing but
// this test does: rows are append-only) is not seen by it, while a store
// without the cache sees it.
func TestRecentReadsOnlyWhatWasAppended(t *testing.T) {
	url := testutil.NeedPostgres(t)
	s, other := openTest(t, url, Options{}), openTest(t, url, Options{})
	mustCreate(t, s, "r")
	if _, err := s.Append("r", history(1000)...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recent("r", 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(context.Background(), `UPDATE messages SET line = '{"role":"user","content":"changed","timestamp":1}'
		WHERE seq = 500 AND sid = (SELECT sid FROM sessions WHERE id = 'r')`); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append("r", core.Message{Role: core.RoleUser, Content: "one more", Timestamp: 2}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Recent("r", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Messages) != 1000 || r.Lines[0] != 1 || r.Messages[999].Content != "one more" || r.Messages[499].Content != "message 500" {
		t.Fatalf("cached Recent: %d messages from line %d, last %q, line 500 %q; want lines 1-1000 as read, and the new one",
			len(r.Messages), r.Lines[0], r.Messages[len(r.Messages)-1].Content, r.Messages[499].Content)
	}
	if fresh, err := other.Recent("r", 1000); err != nil || fresh.Messages[499].Content != "changed" {
		t.Fatalf("a store without the cache: %v; line 500 is %q, want the changed row", err, fresh.Messages[499].Content)
	}
}

// TestRecentCacheBound: the caches of all sessions hold at most the
// store's bound of lines; the least recently used go first, and a session
// whose recent lines alone are over it is not kept.
func TestRecentCacheBound(t *testing.T) {
	s := openTest(t, testutil.NeedPostgres(t), Options{})
	s.recent.limit = 10 << 10
	msgs := make([]core.Message, 4)
	for i := range msgs {
		msgs[i] = core.Message{Role: core.RoleUser, Content: strings.Repeat("x", 1000), Timestamp: 1} // 4 KiB a session: 2 fit
	}
	sid := map[string]int64{}
	for _, id := range []string{"s0", "s1", "s2", "huge"} {
		mustCreate(t, s, id)
		if id == "huge" {
			msgs = append(msgs, msgs...)
			msgs = append(msgs, msgs...) // 16 KiB
		}
		m, err := s.Append(id, msgs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recent(id, 1000); err != nil {
			t.Fatal(err)
		}
		if sid[id], err = s.sidOf(context.Background(), s.pool, m.SessionID); err != nil {
			t.Fatal(err)
		}
	}
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	if s.recent.bytes > s.recent.limit || s.recent.order.Len() != 2 || s.recent.bySID[sid["s1"]] == nil || s.recent.bySID[sid["s2"]] == nil {
		t.Fatalf("caches: %d bytes in %d sessions %v; want s1 and s2 (%v) within %d", s.recent.bytes, s.recent.order.Len(), s.recent.bySID, sid, s.recent.limit)
	}
}
