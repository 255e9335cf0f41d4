package tools

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The gateway's secrets are not in a command's environment; a variable the
// operator names is.
func TestBashEnvHidesSecrets(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
	t.Setenv("OPENAI_API_KEY", "sk-openai-secret")
	t.Setenv("MINI_OPENCLAW_TOKEN", "gateway-token-secret")
	t.Setenv("MINICLAW_TEST_PASSED", "passed-by-name")
	b := newBash(t, t.TempDir(), 10*time.Second, "MINICLAW_TEST_PASSED")
	out, err := runBash(t, b, context.Background(), "env")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sk-ant-secret", "sk-openai-secret", "gateway-token-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("bash env shows %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "MINICLAW_TEST_PASSED=passed-by-name\n") {
		t.Errorf("bash env lacks the variable passed by name:\n%s", out)
	}
}

// A grandchild that left the process group (setsid) is killed with the
// command, whether the command is aborted, times out or just exits.
func TestBashKillsSetsidGrandchild(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		command string
		abort   bool
		want    string
	}{
		{"abort", time.Minute, "setsid sleep 300 & echo $! > pidfile; wait", true, "[command aborted]"},
		{"timeout", time.Second, "setsid sleep 300 & echo $! > pidfile; wait", false, "[command timed out after 1s and was killed]"},
		{"exit", time.Minute, "setsid sleep 300 & echo $! > pidfile", false, ""},
		{"double fork", time.Minute, "(setsid sh -c 'sleep 300 & echo $! > pidfile' &); until [ -s pidfile ]; do sleep 0.01; done", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := newBash(t, dir, tc.timeout)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := runBash(t, b, ctx, tc.command)
				done <- err
			}()
			pid := testutil.WaitPidFile(t, filepath.Join(dir, "pidfile"))
			if tc.abort {
				cancel()
			}
			err := <-done
			if tc.want != "" {
				wantErr(t, tc.name, err, tc.want)
			} else if err != nil {
				t.Fatal(err)
			}
			testutil.WaitGone(t, pid)
		})
	}
}
