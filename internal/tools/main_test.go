package tools

import (
	"os"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/sandbox"
)

// TestMain lets the test binary act as the sandbox helper that Bash re-runs.
func TestMain(m *testing.M) {
	sandbox.RunHelperIfAsked()
	os.Exit(m.Run())
}

// newBash is a Bash on dir in a confined sandbox with its own temp dir,
// passing the named variables of the test's environment.
func newBash(t testing.TB, dir string, timeout time.Duration, passEnv ...string) Bash {
	t.Helper()
	return Bash{Dir: dir, Timeout: timeout, Sandbox: newSandbox(t, sandbox.Workspace, dir, passEnv...)}
}

// newSandbox is a sandbox on the workspace dir with its own temp dir.
func newSandbox(t testing.TB, mode sandbox.Mode, dir string, passEnv ...string) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.New(sandbox.Config{
		Mode: mode, Workspace: dir, TempDir: t.TempDir(),
		Environ: os.Environ(), PassEnv: passEnv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Error(err)
		}
	})
	return sb
}
