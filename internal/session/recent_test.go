package session

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestRecentReadsBackPastManyLines: the summary is found behind more lines
// than the first read takes, and the store reopened on the same directory
// (no index in memory) finds it too.
func TestRecentReadsBackPastManyLines(t *testing.T) {
	s, dir := newStore(t)
	mustCreate(t, s, "r", "webchat")
	var lines []core.Message
	for i := range 300 {
		role := core.RoleUser
		if i%2 == 1 {
			role = core.RoleAssistant
		}
		lines = append(lines, core.Message{Role: role, Content: fmt.Sprintf("m%d %s", i, strings.Repeat("x", 200)), Timestamp: 1})
		if i == 100 {
			lines = append(lines, core.Message{Role: core.RoleSummary, Content: "S", Covers: 50, Timestamp: 1})
		}
	}
	if _, err := s.Append("r", lines...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(dir + "/r" + metaExt); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, Options{})
	r, err := s2.Recent("r", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if r.Messages[0].Content != "S" || r.Lines[0] != 101 || r.Lines[1] != 50 || len(r.Lines) != 1+len(lines)-50-1 {
		t.Errorf("Recent = %d messages, lines %v…, want the summary (line 101), then lines 50 to 300 but 101", len(r.Lines), r.Lines[:3])
	}
}

// FuzzRecent feeds arbitrary transcripts, summary lines with any covers
// among them: Recent must not panic, must agree with Load on every line it
// returns, and must start from the latest summary it returns.
func FuzzRecent(f *testing.F) {
	f.Add([]byte(`{"role":"user","content":"a","timestamp":1}
{"role":"summary","content":"S","timestamp":1,"covers":-3}
{"role":"summary","content":"T","timestamp":1,"covers":99}
{"role":"assistant","content":"b","timestamp":1}
`), 3)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		n = (n%300+300)%300 + 1
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "fz.jsonl"), data)
		s := openStore(t, dir, Options{Now: fixedClock(t0)})
		r, err := s.Recent("fz", n)
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.scan("fz", nil)
		if err != nil {
			t.Fatal(err)
		}
		byLine := map[int]core.Message{}
		i := 0
		for line := 0; line < all.lines; line++ {
			if i < len(all.corrupt) && all.corrupt[i].Line == line+1 {
				i++
				continue
			}
			byLine[line] = all.messages[line-i]
		}
		if len(r.Messages) != len(r.Lines) || len(r.Messages) > n+1 {
			t.Fatalf("%d messages, %d lines, bound %d", len(r.Messages), len(r.Lines), n)
		}
		for k, l := range r.Lines {
			if !reflect.DeepEqual(byLine[l], r.Messages[k]) {
				t.Fatalf("message %d is not line %d", k, l)
			}
			if k > 0 && (r.Messages[k].Role == core.RoleSummary || k > 1 && l <= r.Lines[k-1]) {
				t.Fatalf("lines %v: a summary inside, or out of order", r.Lines)
			}
		}
	})
}

// TestRecentReadsOnlyWhatWasAppended: a turn's Recent on a long session
// decodes the lines appended since the previous one, not the whole
// history again (a 1000-line session decoded whole is thousands of
// allocations).
func TestRecentReadsOnlyWhatWasAppended(t *testing.T) {
	s, _ := newStore(t)
	mustCreate(t, s, "r", "webchat")
	var msgs []core.Message
	for i := range 1000 {
		msgs = append(msgs, core.Message{Role: []string{core.RoleUser, core.RoleAssistant}[i%2], Content: fmt.Sprintf("message %d", i), Timestamp: 1})
	}
	mustAppend(t, s, "r", msgs...)
	if _, err := s.Recent("r", 1000); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(10, func() {
		mustAppend(t, s, "r", testutil.UserMsg("one more", 1))
		r, err := s.Recent("r", 1000)
		if err != nil || len(r.Messages) != 1000 || r.Messages[999].Content != "one more" {
			t.Fatalf("Recent = %d messages, err %v", len(r.Messages), err)
		}
	})
	if allocs > 200 {
		t.Errorf("an append and a Recent of 1000 lines: %.0f allocations, want at most 200 (the history decoded again?)", allocs)
	}
}
