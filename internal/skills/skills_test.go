package skills

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// fixture is a workspace with a skills directory.
type fixture struct {
	ws, dir string
	log     *testutil.Buffer
	x       *Index
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ws := t.TempDir()
	f := &fixture{ws: ws, dir: filepath.Join(ws, ".openclaw", "skills"), log: &testutil.Buffer{}}
	f.x = New(f.dir, ws, slog.New(slog.NewTextHandler(f.log, nil)))
	return f
}

// write creates (or replaces) <dir>/<rel>, then moves its mtime one second
// on from its last value so a rewrite of the same size is seen as a change
// even on a file system with a coarse clock.
func (f *fixture) write(t *testing.T, rel, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	old, statErr := os.Stat(p)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if statErr == nil {
		mt := old.ModTime().Add(time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func skill(name, desc string) string {
	return fmt.Sprintf("---\nname: %s\ndescription: %s\n---\n# %s\n", name, desc, name)
}

func TestIndex(t *testing.T) {
	f := newFixture(t)
	f.write(t, "pdf/SKILL.md", skill("pdf", "Read & fill <PDF> forms"))
	f.write(t, "multi/SKILL.md", "---\ndescription: |\n  First line.\n  Second   line.\n---\n") // name from the directory
	noFM := f.write(t, "plain/SKILL.md", "# no frontmatter\n")
	badYAML := f.write(t, "broken/SKILL.md", "---\nname: [x\n---\n")
	noDesc := f.write(t, "nodesc/SKILL.md", "---\nname: nodesc\n---\n")
	f.write(t, "empty-dir/README.md", "not a skill")
	f.write(t, ".hidden/SKILL.md", skill("hidden", "never listed"))
	f.write(t, "loose.md", "a file, not a skill directory")

	got := f.x.Skills()
	want := []struct{ name, loc, problem string }{
		{"broken", ".openclaw/skills/broken/SKILL.md", "frontmatter"},
		{"multi", ".openclaw/skills/multi/SKILL.md", ""},
		{"nodesc", ".openclaw/skills/nodesc/SKILL.md", "missing description"},
		{"pdf", ".openclaw/skills/pdf/SKILL.md", ""},
		{"plain", ".openclaw/skills/plain/SKILL.md", "no YAML frontmatter"},
	}
	if len(got) != len(want) {
		t.Fatalf("skills = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Location != w.loc || (w.problem == "") != (g.Problem == "") || !strings.Contains(g.Problem, w.problem) {
			t.Errorf("skill %d = %+v, want name %s, location %s, problem %q", i, g, w.name, w.loc, w.problem)
		}
		if g.Path != filepath.Join(f.ws, filepath.FromSlash(w.loc)) {
			t.Errorf("skill %s: path %s", g.Name, g.Path)
		}
	}
	if got[1].Description != "First line. Second line." {
		t.Errorf("multi-line description = %q, want it collapsed to one line", got[1].Description)
	}

	wantSection := loadHint + `
<available_skills>
<skill>
<name>multi</name>
<description>First line. Second line.</description>
<location>.openclaw/skills/multi/SKILL.md</location>
</skill>
<skill>
<name>pdf</name>
<description>Read &amp; fill &lt;PDF&gt; forms</description>
<location>.openclaw/skills/pdf/SKILL.md</location>
</skill>
</available_skills>`
	if s := f.x.SkillsSection(); s != wantSection {
		t.Errorf("section:\n%s\nwant:\n%s", s, wantSection)
	}

	// Each malformed skill was logged once, naming its file.
	log := f.log.Take()
	for _, p := range []string{noFM, badYAML, noDesc} {
		if strings.Count(log, "file="+p) != 1 {
			t.Errorf("log names %s %d times, want once:\n%s", p, strings.Count(log, "file="+p), log)
		}
	}
	// Nothing changed: no new warnings.
	f.x.SkillsSection()
	if log := f.log.Take(); log != "" {
		t.Errorf("an unchanged index logged again:\n%s", log)
	}
}

func TestIndexNoSkills(t *testing.T) {
	f := newFixture(t)
	if s := f.x.SkillsSection(); s != "" {
		t.Errorf("no skills directory: section %q, want none", s)
	}
	f.write(t, "bad/SKILL.md", "no frontmatter")
	if s := f.x.SkillsSection(); s != "" {
		t.Errorf("only malformed skills: section %q, want none", s)
	}
}

// Added, edited and removed skills show on the next call, without a new
// Index.
func TestIndexPicksUpChanges(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a/SKILL.md", skill("a", "first version"))
	if s := f.x.SkillsSection(); !strings.Contains(s, "first version") {
		t.Fatalf("section lacks skill a:\n%s", s)
	}

	f.write(t, "b/SKILL.md", skill("b", "added later"))
	if s := f.x.SkillsSection(); !strings.Contains(s, "<name>b</name>") {
		t.Errorf("added skill not picked up:\n%s", s)
	}

	f.write(t, "a/SKILL.md", skill("a", "other version")) // same size, new mtime
	if s := f.x.SkillsSection(); !strings.Contains(s, "other version") || strings.Contains(s, "first version") {
		t.Errorf("edited skill not picked up:\n%s", s)
	}

	// A SKILL.md appears in a directory that already existed.
	f.write(t, "c/notes.txt", "x")
	f.x.SkillsSection()
	f.write(t, "c/SKILL.md", skill("c", "late file"))
	if s := f.x.SkillsSection(); !strings.Contains(s, "late file") {
		t.Errorf("SKILL.md added to an existing directory not picked up:\n%s", s)
	}

	if err := os.RemoveAll(filepath.Join(f.dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.dir, "c", "SKILL.md")); err != nil {
		t.Fatal(err)
	}
	s := f.x.SkillsSection()
	if strings.Contains(s, "<name>b</name>") || strings.Contains(s, "<name>c</name>") || !strings.Contains(s, "<name>a</name>") {
		t.Errorf("removed skills still listed:\n%s", s)
	}

	// A skill that gets fixed is listed; one that breaks is dropped.
	f.write(t, "a/SKILL.md", "broken now")
	if s := f.x.SkillsSection(); s != "" {
		t.Errorf("broken skill still listed:\n%s", s)
	}
	f.write(t, "a/SKILL.md", skill("a", "fixed"))
	if s := f.x.SkillsSection(); !strings.Contains(s, "fixed") {
		t.Errorf("fixed skill not listed:\n%s", s)
	}
}

func TestIndexBudget(t *testing.T) {
	f := newFixture(t)
	for i := range 10 {
		f.write(t, fmt.Sprintf("s%02d/SKILL.md", i), skill(fmt.Sprintf("s%02d", i), "does thing "+fmt.Sprint(i)))
	}
	f.x.MaxSkills = 3
	s := f.x.SkillsSection()
	if n := strings.Count(s, "<skill>"); n != 3 {
		t.Errorf("%d skills listed, want 3", n)
	}
	if !strings.Contains(s, "<name>s00</name>") || !strings.Contains(s, "<name>s02</name>") || strings.Contains(s, "<name>s03</name>") {
		t.Errorf("not the first 3 by name:\n%s", s)
	}
	if !strings.Contains(s, "[7 more skills left out of this list (prompt budget: 3 skills, 20000 characters)") {
		t.Errorf("no note on the left-out skills:\n%s", s)
	}

	// A character budget that holds two entries.
	g := newFixture(t)
	for i := range 10 {
		g.write(t, fmt.Sprintf("s%02d/SKILL.md", i), skill(fmt.Sprintf("s%02d", i), "does thing "+fmt.Sprint(i)))
	}
	entry := len("<skill>\n<name>s00</name>\n<description>does thing 0</description>\n<location>.openclaw/skills/s00/SKILL.md</location>\n</skill>\n")
	g.x.MaxChars = 2*entry + entry/2
	s = g.x.SkillsSection()
	if n := strings.Count(s, "<skill>"); n != 2 || !strings.Contains(s, "[8 more skills left out") {
		t.Errorf("char budget of 2.5 entries: %d listed:\n%s", n, s)
	}
}

func TestIndexDescriptionCut(t *testing.T) {
	f := newFixture(t)
	f.write(t, "long/SKILL.md", skill("long", strings.Repeat("é", MaxDescription+10)))
	s := f.x.SkillsSection()
	want := "<description>" + strings.Repeat("é", MaxDescription-1) + "…</description>"
	if !strings.Contains(s, want) {
		t.Errorf("long description not cut to %d characters", MaxDescription)
	}
}

func TestIndexDuplicateNames(t *testing.T) {
	f := newFixture(t)
	f.write(t, "one/SKILL.md", skill("same", "first"))
	f.write(t, "two/SKILL.md", skill("same", "second"))
	list := f.x.Skills()
	if len(list) != 2 || list[0].Problem != "" || !strings.Contains(list[1].Problem, `duplicate name "same" (also .openclaw/skills/one/SKILL.md)`) {
		t.Errorf("skills = %+v, want the second flagged as a duplicate", list)
	}
}

func TestIndexOutsideWorkspaceAndSymlinks(t *testing.T) {
	ws, dir := t.TempDir(), t.TempDir()
	real := filepath.Join(t.TempDir(), "linked")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, FileName), []byte(skill("linked", "via a symlink")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(real, FileName), filepath.Join(dir, "file-link")); err != nil {
		t.Fatal(err)
	}
	list := New(dir, ws, nil).Skills()
	if len(list) != 1 || list[0].Problem != "" || list[0].Location != filepath.Join(dir, "linked", FileName) {
		t.Errorf("skills = %+v, want the linked skill with an absolute location", list)
	}
}

// Concurrent turns share one index.
func TestIndexConcurrent(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a/SKILL.md", skill("a", "x"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				if i == 0 && j%5 == 0 {
					f.write(t, fmt.Sprintf("n%d/SKILL.md", j), skill(fmt.Sprintf("n%d", j), "y"))
				}
				if !strings.Contains(f.x.SkillsSection(), "<name>a</name>") {
					t.Error("skill a missing")
				}
			}
		})
	}
	wg.Wait()
	if n := len(f.x.Skills()); n != 5 {
		t.Errorf("%d skills, want 5", n)
	}
}
