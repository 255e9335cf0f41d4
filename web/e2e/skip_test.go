package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSaysWhenTheBrowserTestsSkip runs this test binary as `go test ./...`
// does, on a machine without Chromium: the package passes, its output says
// why nothing ran, and it carries the line on which go test marks the
// package "[no tests to run]" — the only note of a passing package that
// go test shows without -v.
func TestSaysWhenTheBrowserTestsSkip(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=TestStreamsMarkdownAndKeepsHistoryOverReload")
	cmd.Env = append(withoutEnv(os.Environ(), "MINICLAW_REQUIRE_BROWSER"), "MINICLAW_CHROMIUM=/nonexistent/chromium")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test binary without Chromium: %v\n%s", err, out)
	}
	for _, want := range []string{
		"web/e2e: the browser tests were skipped: no Chromium",
		"apt-get install chromium",
		"\ntesting: warning: no tests to run\n",
	} {
		if !strings.Contains("\n"+string(out), want) {
			t.Errorf("output without Chromium lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "--- SKIP") || strings.Contains(string(out), "--- PASS") {
		t.Errorf("a browser test ran without Chromium:\n%s", out)
	}
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			kept = append(kept, kv)
		}
	}
	return kept
}
