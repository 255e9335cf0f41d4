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
// TOOLS.md linked to /dev/zero (read whole, it never ends: out of memory)
// are left out of the prompt with a note saying why; the turn goes on.
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
		"## Tool Usage Guidelines\n[TOOLS.md left out: "+filepath.Join(dir, "TOOLS.md")+" is a character device, not a regular file]\n")
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
