package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// A FIFO as SOUL.md (an open for reading waits for a writer, forever) and
// TOOLS.md linked to /dev/zero (read whole, it never ends: out of memory;
// it lies out of the workspace, which refuses it first) are left out of the
// prompt with a note saying why; the turn goes on.
func TestSystemPromptSpecialBootstrap(t *testing.T) {
	rt := promptRuntime(t, nil, nil, false)
	dir := filepath.Join(rt.Workspace, ".openclaw")
	testutil.Mkfifo(t, filepath.Join(dir, "SOUL.md"))
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "TOOLS.md")); err != nil {
		t.Fatal(err)
	}
	var got string
	testutil.Within(t, 5*time.Second, "the prompt", func() { got = promptOf(t, rt) })
	wantInOrder(t, got,
		"## Identity & Personality\n[SOUL.md left out: "+filepath.Join(dir, "SOUL.md")+" is a named pipe, not a regular file]\n",
		"## Tool Usage Guidelines\n[TOOLS.md left out: "+filepath.Join(dir, "TOOLS.md")+" is a symbolic link leading out of "+rt.Workspace+"]\n")
}

// A 1 GiB (sparse) SOUL.md costs the 20,000-byte cut, not its size.
func TestSystemPromptHugeBootstrapCostsTheCut(t *testing.T) {
	rt := promptRuntime(t, map[string]string{"SOUL.md": "Be brief.\n"}, nil, false)
	if err := os.Truncate(filepath.Join(rt.Workspace, ".openclaw", "SOUL.md"), 1<<30); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := promptOf(t, rt)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Errorf("a prompt with a 1 GiB SOUL.md allocated %d bytes", n)
	}
	if !strings.Contains(got, "## Identity & Personality\nBe brief.\n") || !strings.Contains(got, "[SOUL.md cut at 20000 bytes]") {
		t.Errorf("prompt does not hold the head of SOUL.md and the cut note:\n%.300s", got)
	}
}

// SOUL.md and TOOLS.md linked to a file outside the workspace (~/.ssh/id_rsa,
// ~/.aws/credentials) are left out of the prompt with a note naming them:
// the gateway reads for the model only what the model's own tools may read.
// A link that stays inside the workspace is read.
func TestSystemPromptBootstrapLinkOutOfWorkspace(t *testing.T) {
	rt := promptRuntime(t, map[string]string{"notes/tools.md": "Use rg.\n"}, nil, false)
	secret := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(secret, []byte("SECRET-KEY-MATERIAL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(rt.Workspace, ".openclaw")
	for link, target := range map[string]string{"SOUL.md": secret, "TOOLS.md": "notes/tools.md"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	got := promptOf(t, rt)
	if strings.Contains(got, "SECRET-KEY-MATERIAL") {
		t.Fatalf("the prompt holds the outside file's content:\n%s", got)
	}
	wantInOrder(t, got,
		"## Identity & Personality\n[SOUL.md left out: "+filepath.Join(dir, "SOUL.md")+" is a symbolic link leading out of "+rt.Workspace+"]\n",
		"## Tool Usage Guidelines\nUse rg.\n")
}
