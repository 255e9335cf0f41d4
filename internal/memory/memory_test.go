package memory

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// fixedNow is the clock of the test stores: a Friday afternoon.
var fixedNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func newStore(t testing.TB) *Store {
	t.Helper()
	ws := t.TempDir()
	return &Store{Workspace: ws, Dir: filepath.Join(ws, ".mini-openclaw", "memory"), Now: func() time.Time { return fixedNow }}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func day(d int) time.Time { return fixedNow.AddDate(0, 0, d) }

func TestMemorySection(t *testing.T) {
	s := newStore(t)
	if got := s.MemorySection(); got != "" {
		t.Fatalf("no memory: section %q, want empty", got)
	}
	writeFile(t, s.WorkspaceFile(), "# Notes\n- The user is Ada.\n")
	writeFile(t, s.File(), "- prefers tea\n")
	writeFile(t, s.DayFile(day(-3)), "- [10:00:00] too old for the prompt\n")
	writeFile(t, s.DayFile(day(-2)), "- [09:00:00] asked \"a\"\n")
	writeFile(t, s.DayFile(day(-1)), "\n\n") // blank: left out
	writeFile(t, s.DayFile(day(0)), "- [15:00:00] asked \"b\"; tools: bash\n")
	want := `### Long-term memory (MEMORY.md)
# Notes
- The user is Ada.

### Long-term memory (.mini-openclaw/memory/MEMORY.md)
- prefers tea

### Daily log 2025-03-12
- [09:00:00] asked "a"

### Daily log 2025-03-14 (today)
- [15:00:00] asked "b"; tools: bash
`
	if got := s.MemorySection(); got != want {
		t.Errorf("section:\n%s\nwant:\n%s", got, want)
	}
}

func TestMemorySectionCaps(t *testing.T) {
	s := newStore(t)
	var mem, log strings.Builder
	for i := 0; mem.Len() < 3*MaxMemoryBytes; i++ {
		fmt.Fprintf(&mem, "- fact %d: ünïcödé\n", i)
	}
	for i := 0; log.Len() < 3*MaxDayBytes; i++ {
		fmt.Fprintf(&log, "- [00:00:%02d] entry %d\n", i%60, i)
	}
	writeFile(t, s.File(), mem.String())
	writeFile(t, s.DayFile(fixedNow), log.String())
	got := s.MemorySection()

	memPart, logPart, ok := strings.Cut(got, "### Daily log")
	if !ok {
		t.Fatalf("no daily log in:\n%s", got)
	}
	body := strings.TrimPrefix(memPart, "### Long-term memory (.mini-openclaw/memory/MEMORY.md)\n")
	shown, note, _ := strings.Cut(body, "[MEMORY.md cut: ")
	if len(shown) > MaxMemoryBytes || len(shown) < MaxMemoryBytes-100 || !strings.HasPrefix(mem.String(), shown) || !strings.HasSuffix(shown, "\n") {
		t.Errorf("MEMORY.md head: %d bytes, not a whole-line prefix within %d", len(shown), MaxMemoryBytes)
	}
	if wantNote := fmt.Sprintf("the first %d of %d bytes are shown; memory_search finds the rest]", len(shown), mem.Len()); !strings.HasPrefix(note, wantNote) {
		t.Errorf("note %q, want %q", note, wantNote)
	}

	_, logBody, _ := strings.Cut(logPart, "\n")
	note, kept, _ := strings.Cut(logBody, "\n")
	if !strings.HasPrefix(note, "[earlier entries cut: the last ") || !strings.Contains(note, fmt.Sprintf("of %d bytes are shown", log.Len())) {
		t.Errorf("log note = %q", note)
	}
	if len(kept) > MaxDayBytes || len(kept) < MaxDayBytes-100 || !strings.HasSuffix(log.String(), kept) || !strings.HasPrefix(kept, "- [") {
		t.Errorf("log tail: %d bytes, not a whole-line suffix within %d: %q...", len(kept), MaxDayBytes, kept[:40])
	}
}

func TestRecordTurn(t *testing.T) {
	s := newStore(t)
	user := core.Message{Role: core.RoleUser, Content: "what is\nin   here? " + strings.Repeat("x", 200)}
	produced := []core.Message{
		{Role: core.RoleAssistant, ToolCalls: []core.ToolCallRecord{{Name: "list_files"}, {Name: "read_file"}}},
		{Role: core.RoleAssistant, ToolCalls: []core.ToolCallRecord{{Name: "read_file"}}},
		{Role: core.RoleAssistant, Content: "partial", Status: core.StatusAborted},
	}
	if err := s.RecordTurn(user, produced); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordTurn(core.Message{Content: "hi"}, []core.Message{{Content: "hello"}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Dir, "daily-logs", "2025-03-14.md"))
	if err != nil {
		t.Fatal(err)
	}
	asked := "what is in here? " + strings.Repeat("x", maxAskedChars-len("what is in here? ")-1) + "…"
	want := fmt.Sprintf("- [15:09:26] asked %q; tools: list_files, read_file×2; aborted\n- [15:09:26] asked \"hi\"\n", asked)
	if string(got) != want {
		t.Errorf("daily log:\n%s\nwant:\n%s", got, want)
	}
}

func TestRemember(t *testing.T) {
	s := newStore(t)
	writeFile(t, s.File(), "# Facts\n- old fact without newline") // a hand edit
	line, err := s.Remember("  - The deploy\nkey is in vault  ")
	if err != nil || line != "- The deploy key is in vault" {
		t.Fatalf("Remember = %q, %v", line, err)
	}
	if _, err := s.Remember("second"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(s.File())
	if want := "# Facts\n- old fact without newline\n- The deploy key is in vault\n- second\n"; string(got) != want {
		t.Errorf("MEMORY.md = %q, want %q", got, want)
	}
	if _, err := s.Remember(" \n "); err == nil {
		t.Error("an empty fact was stored")
	}
	if _, err := s.Remember(strings.Repeat("a", MaxFactChars+1)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("too long a fact: err = %v", err)
	}
}

func TestSearch(t *testing.T) {
	s := newStore(t)
	writeFile(t, s.WorkspaceFile(), "# Notes\nThe deploy script lives in ops/.\n")
	writeFile(t, s.File(), "- prefers tea\n- deploy on Fridays is forbidden\n")
	writeFile(t, s.DayFile(day(-40)), "- [10:00:00] asked \"deploy staging\"\n- [10:05:00] asked \"lunch\"\n")
	writeFile(t, s.DayFile(day(0)), "- [11:00:00] asked \"Deploy the deployment to staging\"; tools: bash\n")

	hits, err := s.Search("deploy staging", 10)
	if err != nil {
		t.Fatal(err)
	}
	got := FormatHits(hits)
	// Both words beat one word; among equals the newer source wins, and
	// the phrase "deploy staging" gets its bonus.
	want := `.mini-openclaw/memory/daily-logs/2025-02-02.md:1: - [10:00:00] asked "deploy staging"
.mini-openclaw/memory/daily-logs/2025-03-14.md:1: - [11:00:00] asked "Deploy the deployment to staging"; tools: bash
MEMORY.md:2: The deploy script lives in ops/.
.mini-openclaw/memory/MEMORY.md:2: - deploy on Fridays is forbidden
`
	if got != want {
		t.Errorf("hits:\n%s\nwant:\n%s", got, want)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Errorf("hits not sorted by score: %+v", hits)
		}
	}
	if hits, _ := s.Search("TEA", 10); len(hits) != 1 || hits[0].Line != 1 {
		t.Errorf("case-insensitive search: %+v", hits)
	}
	if hits, _ := s.Search("deploy", 2); len(hits) != 2 {
		t.Errorf("limit 2: %d hits", len(hits))
	}
	if hits, err := s.Search("nothing-like-this", 10); err != nil || len(hits) != 0 {
		t.Errorf("no match: %v, %v", hits, err)
	}
	if _, err := s.Search(" ?! ", 10); err == nil {
		t.Error("a query without keywords was accepted")
	}
}

func TestTools(t *testing.T) {
	s := newStore(t)
	ts := s.Tools()
	write, search := ts[0], ts[1]
	if write.Spec().Name != "memory_write" || write.ReadOnly() || search.Spec().Name != "memory_search" || !search.ReadOnly() {
		t.Fatalf("tools = %s (read-only %v), %s (read-only %v)", write.Spec().Name, write.ReadOnly(), search.Spec().Name, search.ReadOnly())
	}
	if !strings.Contains(write.Spec().Description, ".mini-openclaw/memory/MEMORY.md") {
		t.Errorf("memory_write does not say which file it writes: %s", write.Spec().Description)
	}
	for _, tool := range ts {
		var schema map[string]any
		if err := json.Unmarshal(tool.Spec().InputSchema, &schema); err != nil || schema["type"] != "object" {
			t.Errorf("%s: bad schema %s: %v", tool.Spec().Name, tool.Spec().InputSchema, err)
		}
	}
	out, err := write.Run(t.Context(), json.RawMessage(`{"fact":"The cat is called Mo."}`))
	if err != nil || out != "remembered in .mini-openclaw/memory/MEMORY.md: - The cat is called Mo." {
		t.Fatalf("memory_write = %q, %v", out, err)
	}
	out, err = search.Run(t.Context(), json.RawMessage(`{"query":"cat"}`))
	if err != nil || out != ".mini-openclaw/memory/MEMORY.md:1: - The cat is called Mo.\n" {
		t.Fatalf("memory_search = %q, %v", out, err)
	}
	out, err = search.Run(t.Context(), json.RawMessage(`{"query":"dog","limit":3}`))
	if err != nil || !strings.Contains(out, `no results for "dog"`) {
		t.Errorf("memory_search without hits = %q, %v", out, err)
	}
	for _, tc := range []struct {
		tool  int
		input string
		err   string
	}{
		{0, `{"facts":"x"}`, `unknown field "facts"`},
		{0, `{"fact":3}`, `field "fact" must be a string`},
		{0, `{}`, `"fact" is required`},
		{0, `{"fact":"  "}`, `empty`},
		{1, `{"query":["a"]}`, `field "query" must be a string`},
		{1, `{"query":"a","limit":"5"}`, `field "limit" must be a whole number`},
		{1, `{"query":"a","limit":0}`, `"limit" must be from 1 to 50`},
		{1, `{"query":"a","max":2}`, `unknown field "max"`},
		{1, `{}`, `no keywords`},
		{1, `not json`, `invalid arguments`},
	} {
		_, err := ts[tc.tool].Run(t.Context(), json.RawMessage(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), ts[tc.tool].Spec().Name+": ") {
			t.Errorf("%s %s: err = %v, want one naming the tool and containing %q", ts[tc.tool].Spec().Name, tc.input, err, tc.err)
		}
	}
}

// A memory file that cannot be read is left out of the prompt and logged;
// the rest of the section is still there.
func TestMemorySectionUnreadable(t *testing.T) {
	s := newStore(t)
	var log strings.Builder
	s.Log = slog.New(slog.NewTextHandler(&log, nil))
	if err := os.MkdirAll(s.WorkspaceFile(), 0o755); err != nil { // a directory, not a file
		t.Fatal(err)
	}
	writeFile(t, s.File(), "- still here\n")
	got := s.MemorySection()
	if got != "### Long-term memory (.mini-openclaw/memory/MEMORY.md)\n- still here\n" {
		t.Errorf("section = %q", got)
	}
	if !strings.Contains(log.String(), "memory file left out of the prompt") || !strings.Contains(log.String(), s.WorkspaceFile()) {
		t.Errorf("log = %q, want a warning naming %s", log.String(), s.WorkspaceFile())
	}
}

// Memory files the store creates are private, like the transcripts.
func TestAppendCreatesPrivateFiles(t *testing.T) {
	s := newStore(t)
	if _, err := s.Remember("secret"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordTurn(core.Message{Content: "hi"}, nil); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{s.Dir: 0o700, s.LogDir(): 0o700, s.File(): 0o600, s.DayFile(fixedNow): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}
