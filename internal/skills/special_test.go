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
		"zero": zero + " is a symbolic link leading out of " + f.ws,
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

// A SKILL.md linked to a file outside the workspace is not read: the skill
// is left out with a problem and a warning naming it, and nothing of the
// outside file reaches the prompt. A link inside the workspace is read.
func TestIndexLinkOutOfWorkspace(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(secret, []byte(skill("stolen", "SECRET-KEY-MATERIAL")), 0o600); err != nil {
		t.Fatal(err)
	}
	f.write(t, "shared/real.md", skill("inside", "Read PDF forms"))
	for rel, target := range map[string]string{"out/" + FileName: secret, "in/" + FileName: "../shared/real.md"} {
		link := filepath.Join(f.dir, rel)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(f.dir, "out", FileName)
	section := f.x.SkillsSection()
	if strings.Contains(section, "SECRET") || !strings.Contains(section, "<name>inside</name>") {
		t.Errorf("section = %q, want the inside skill and nothing of the outside file", section)
	}
	problems := map[string]string{}
	for _, s := range f.x.Skills() {
		problems[s.Name] = s.Problem
	}
	if want := out + " is a symbolic link leading out of " + f.ws; problems["out"] != want {
		t.Errorf("problems = %q, want out: %q", problems, want)
	}
	if !strings.Contains(f.log.String(), "symbolic link leading out of") {
		t.Errorf("log = %q, want a warning naming %s", f.log.String(), out)
	}
}
