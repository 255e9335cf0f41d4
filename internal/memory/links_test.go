package memory

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// outsideFile writes a file outside the workspace (a stand-in for
// ~/.bashrc or ~/.aws/credentials) and returns its path and content.
func outsideFile(t *testing.T) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials")
	const content = "aws_secret_access_key = SECRET-deploy-KEY\n"
	writeFile(t, p, content)
	return p, content
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Memory files linked to a file outside the workspace (the model's shell
// can plant such links, the gateway is not confined) are neither read into
// the prompt or a search nor appended to: the outside file is unchanged and
// each refusal names the file.
func TestMemoryLinksOutOfWorkspace(t *testing.T) {
	s := newStore(t)
	log := &testutil.Buffer{}
	s.Log = slog.New(slog.NewTextHandler(log, nil))
	secret, content := outsideFile(t)
	for _, link := range []string{s.WorkspaceFile(), s.File(), s.DayFile(day(0)), s.DayFile(day(-1))} {
		symlink(t, secret, link)
	}

	if got := s.MemorySection(); strings.Contains(got, "SECRET") {
		t.Errorf("section holds the outside file: %q", got)
	}
	for _, p := range []string{s.WorkspaceFile(), s.File(), s.DayFile(day(-1))} {
		if !strings.Contains(log.String(), p+" is a symbolic link leading out of") {
			t.Errorf("log = %q, want a warning naming %s", log.String(), p)
		}
	}
	if hits, err := s.Search("deploy", 10); err != nil || len(hits) != 0 {
		t.Errorf("Search = %q, %v; want no hits", FormatHits(hits), err)
	}
	if _, err := s.Remember("deploy on Fridays"); err == nil || !strings.Contains(err.Error(), s.File()+" is a symbolic link leading out of") {
		t.Errorf("Remember: err = %v, want a refusal naming %s", err, s.File())
	}
	err := s.RecordTurn(core.Message{Role: core.RoleUser, Content: "deploy"}, nil)
	if err == nil || !strings.Contains(err.Error(), s.DayFile(day(0))+" is a symbolic link leading out of") {
		t.Errorf("RecordTurn: err = %v, want a refusal naming %s", err, s.DayFile(day(0)))
	}
	if b, _ := os.ReadFile(secret); string(b) != content {
		t.Errorf("the outside file now holds %q", b)
	}
}

// A memory directory that is itself a link out of the workspace is not
// written through: no file appears in the outside directory.
func TestMemoryDirLinkOutOfWorkspace(t *testing.T) {
	s := newStore(t)
	outside := t.TempDir()
	symlink(t, outside, s.Dir)
	if _, err := s.Remember("a fact"); err == nil || !strings.Contains(err.Error(), "a symbolic link leading out of") {
		t.Errorf("Remember: err = %v, want a refusal", err)
	}
	if err := s.RecordTurn(core.Message{Role: core.RoleUser, Content: "hi"}, nil); err == nil {
		t.Error("RecordTurn through a linked memory directory succeeded")
	}
	if names, _ := filepath.Glob(filepath.Join(outside, "*")); len(names) != 0 {
		t.Errorf("files appeared outside the workspace: %v", names)
	}
}

// Links that stay inside the workspace are followed as before.
func TestMemoryLinkInsideWorkspace(t *testing.T) {
	s := newStore(t)
	writeFile(t, filepath.Join(s.Workspace, "notes.md"), "- deploy from main\n")
	symlink(t, "notes.md", s.WorkspaceFile())
	if got := s.MemorySection(); !strings.Contains(got, "- deploy from main") {
		t.Errorf("section = %q, want the linked notes", got)
	}
	if hits, err := s.Search("deploy", 10); err != nil || len(hits) != 1 {
		t.Errorf("Search = %q, %v; want the linked line", FormatHits(hits), err)
	}
}
