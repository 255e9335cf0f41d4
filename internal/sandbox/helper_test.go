package sandbox

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// The helper alone (no cgroup), as a subreaper, has killed and reaped every
// process the program left by the time it exits, whether the program ended
// or the helper was told to stop.
func TestHelperLeavesNoProcess(t *testing.T) {
	for _, tc := range []struct {
		name, command string
		stop          bool
	}{
		{"program exits", "setsid sleep 300 & echo $! > pid", false},
		{"double fork", "(setsid sh -c 'sleep 300 & echo $! > pid' &); until [ -s pid ]; do sleep 0.01; done", false},
		{"SIGTERM", "setsid sleep 300 & echo $! > pid; wait", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("/proc/self/exe", HelperArg, `{"confine":false}`, "bash", "-c", tc.command)
			cmd.Dir = dir
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := testutil.WaitPidFile(t, filepath.Join(dir, "pid"))
			if tc.stop {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			if err != nil && !(tc.stop && errors.As(err, &exit) && exit.ExitCode() == 128+int(syscall.SIGTERM)) {
				t.Fatalf("helper: %v\n%s", err, out.String())
			}
			// Not "eventually": the helper reaped it before exiting.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("process %d outlived the helper (kill 0: %v)", pid, err)
			}
		})
	}
}

func TestHelperReportsSetupErrors(t *testing.T) {
	out, err := exec.Command("/proc/self/exe", HelperArg, `{not json`, "true").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != helperFailed || !strings.HasPrefix(string(out), "miniclaw sandbox: policy: ") {
		t.Errorf("bad policy: %v, %q", err, out)
	}
	out, err = exec.Command("/proc/self/exe", HelperArg, `{}`, "no-such-program-xyz").CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != helperFailed || !strings.Contains(string(out), "no-such-program-xyz") {
		t.Errorf("missing program: %v, %q", err, out)
	}
}
