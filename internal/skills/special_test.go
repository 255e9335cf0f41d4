package skills

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// A FIFO as SKILL.md (opening it for reading would wait for a writer,
// forever, and stop startup) or a link to /dev/zero leaves that skill out
// with a problem and a warning naming it; the other skills still load.
func TestIndexSpecialFiles(t *testing.T) {
	f := newFixture(t)
	f.write(t, "pdf/SKILL.md", skill("pdf", "Read PDF forms"))
	fifo := filepath.Join(f.dir, "fifo", FileName)
	testutil.Mkfifo(t, fifo)
	zero := filepath.Join(f.dir, "zero", FileName)
	if err := os.MkdirAll(filepath.Dir(zero), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	var list []Skill
	var section string
	testutil.Within(t, 5*time.Second, "Skills", func() { list, section = f.x.Skills(), f.x.SkillsSection() })
	problems := map[string]string{}
	for _, s := range list {
		problems[s.Name] = s.Problem
	}
	want := map[string]string{
		"pdf":  "",
		"fifo": fifo + " is a named pipe, not a regular file",
		"zero": zero + " is a character device, not a regular file",
	}
	for name, p := range want {
		if got, ok := problems[name]; !ok || got != p {
			t.Errorf("skill %s: problem %q, want %q (all: %+v)", name, got, p, list)
		}
	}
	if !strings.Contains(section, "<name>pdf</name>") || strings.Contains(section, "fifo") {
		t.Errorf("section = %q", section)
	}
	if !strings.Contains(f.log.String(), "is a named pipe") {
		t.Errorf("log = %q, want a warning about the FIFO", f.log.String())
	}
}

// A FIFO in place of the skills directory is logged, not waited on.
func TestIndexDirIsAFIFO(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "skills")
	testutil.Mkfifo(t, dir)
	log := &testutil.Buffer{}
	x := New(dir, t.TempDir(), slog.New(slog.NewTextHandler(log, nil)))
	var section string
	testutil.Within(t, 5*time.Second, "SkillsSection", func() { section = x.SkillsSection() })
	if section != "" || !strings.Contains(log.String(), dir+" is a named pipe, not a directory") {
		t.Errorf("section %q, log %q", section, log.String())
	}
}
