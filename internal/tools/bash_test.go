package tools

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/sandbox"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

func runBash(t *testing.T, b Bash, ctx context.Context, command string) (string, error) {
	t.Helper()
	in, err := json.Marshal(map[string]string{"command": command})
	if err != nil {
		t.Fatal(err)
	}
	return b.Run(ctx, in)
}

// BenchmarkBashTrue is the cost of one `true` through the bash tool: run
// directly (no sandbox, as a nil Sandbox does), through the helper with the
// sandbox off (the helper, its reaping and the cgroup where there is one), and
// confined (Landlock and the capability drop as well).
func BenchmarkBashTrue(b *testing.B) {
	dir := b.TempDir()
	for _, bc := range []struct {
		name string
		sb   *sandbox.Sandbox
	}{
		{"direct", nil},
		{"helper-off", newSandbox(b, sandbox.Off, dir)},
		{"helper-workspace", newSandbox(b, sandbox.Workspace, dir)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bash := Bash{Dir: dir, Sandbox: bc.sb}
			in := json.RawMessage(`{"command":"true"}`)
			cpu := childrenCPU(b)
			for b.Loop() {
				if _, err := bash.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			// CPU time says more than wall time on a loaded machine.
			b.ReportMetric(float64((childrenCPU(b)-cpu).Microseconds())/1000/float64(b.N), "child-cpu-ms/op")
		})
	}
}

// childrenCPU is the user and system time of this process's reaped
// descendants (the helpers and the shells they reaped).
func childrenCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestBashOutput(t *testing.T) {
	dir := t.TempDir()
	real, _ := filepath.EvalSymlinks(dir)
	b := newBash(t, dir, 10*time.Second)
	cases := []struct{ command, want string }{
		{"echo hi; echo err >&2", "hi\nerr"},
		{"echo err >&2; echo hi", "err\nhi"},
		{"pwd -P", real},
		{"true", "(no output)"},
		{"printf 'a\\n\\n\\n'", "a"},
		{"printf '  x  '", "  x  "},
		{"echo héllo", "héllo"},
	}
	for _, tc := range cases {
		got, err := runBash(t, b, context.Background(), tc.command)
		if err != nil {
			t.Errorf("%q: %v", tc.command, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q = %q, want %q", tc.command, got, tc.want)
		}
	}
	// The files a command writes land in the workspace.
	if _, err := runBash(t, b, context.Background(), "echo made > made.txt"); err != nil {
		t.Fatal(err)
	}
	if got := getFile(t, filepath.Join(dir, "made.txt")); got != "made\n" {
		t.Errorf("made.txt = %q", got)
	}
}

func TestBashExitCode(t *testing.T) {
	b := newBash(t, t.TempDir(), 10*time.Second)
	out, err := runBash(t, b, context.Background(), "echo before; echo oops >&2; exit 3")
	if out != "" {
		t.Errorf("output with an error: %q", out)
	}
	if err == nil || err.Error() != "before\noops\n[exit code 3]" {
		t.Fatalf("error %q, want %q", err, "before\noops\n[exit code 3]")
	}
	_, err = runBash(t, b, context.Background(), "false")
	if err == nil || !strings.HasSuffix(err.Error(), "[exit code 1]") {
		t.Errorf("false: error %q", err)
	}
	_, err = runBash(t, b, context.Background(), "no-such-command-xyz")
	wantErr(t, "missing command", err, "no-such-command-xyz", "[exit code 127]")
}

func TestBashTruncation(t *testing.T) {
	b := newBash(t, t.TempDir(), 10*time.Second)
	note := "\n[output truncated: showing the first 10000 characters]"
	cases := []struct {
		name, command, want string
	}{
		{"exactly the limit", "head -c 10000 /dev/zero | tr '\\0' a", strings.Repeat("a", 10000)},
		{"one over", "head -c 10001 /dev/zero | tr '\\0' a", strings.Repeat("a", 10000) + note},
		{"far over", "head -c 1000000 /dev/zero | tr '\\0' b", strings.Repeat("b", 10000) + note},
		// Characters, not bytes: 10,001 two-byte characters are cut at 10,000.
		{"multibyte", "for i in $(seq 10001); do printf é; done", strings.Repeat("é", 10000) + note},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runBash(t, b, context.Background(), tc.command)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("output (%d chars) ends %q, want (%d chars) ending %q", len([]rune(got)), tail(got), len([]rune(tc.want)), tail(tc.want))
			}
		})
	}
	// A failing command's output is cut the same way.
	_, err := runBash(t, b, context.Background(), "head -c 20000 /dev/zero | tr '\\0' c; exit 2")
	if want := strings.Repeat("c", 10000) + note + "\n[exit code 2]"; err == nil || err.Error() != want {
		t.Errorf("error ends %q", tail(errString(err)))
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestBashTimeout(t *testing.T) {
	dir := t.TempDir()
	b := newBash(t, dir, time.Second)
	start := time.Now()
	out, err := runBash(t, b, context.Background(), "echo started; sleep 5")
	elapsed := time.Since(start)
	if out != "" {
		t.Errorf("output with an error: %q", out)
	}
	if err == nil || err.Error() != "started\n[command timed out after 1s and was killed]" {
		t.Errorf("error %q", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("took %v with a 1s timeout", elapsed)
	}

	// A background child holding the output pipe dies with the group, and
	// does not delay the return (the 2 s WaitDelay is not needed).
	start = time.Now()
	_, err = runBash(t, b, context.Background(), "sleep 30 & echo $! > pidfile; sleep 5")
	elapsed = time.Since(start)
	wantErr(t, "background child", err, "timed out")
	if elapsed > 2500*time.Millisecond {
		t.Errorf("took %v with a 1s timeout", elapsed)
	}
	testutil.WaitGone(t, testutil.WaitPidFile(t, filepath.Join(dir, "pidfile")))
}

func TestBashZeroTimeoutDefaults(t *testing.T) {
	// A zero Timeout means the default (30 s), not "time out at once".
	b := newBash(t, t.TempDir(), 0)
	got, err := runBash(t, b, context.Background(), "echo ok")
	if err != nil || got != "ok" {
		t.Fatalf("Bash{} ran %q, %v", got, err)
	}
	if !strings.Contains(b.Spec().Description, "30s") {
		t.Errorf("description %q does not state the default timeout", b.Spec().Description)
	}
}

func TestBashAbortKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	b := newBash(t, dir, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pidfile := filepath.Join(dir, "pidfile")
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runBash(t, b, ctx, "echo going; sleep 30 & echo $! > pidfile; wait")
		done <- result{out, err}
	}()
	pid := testutil.WaitPidFile(t, pidfile)
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second): // a safety net only: a hang fails here
		t.Fatal("Run did not return within 20 s of the abort")
	}
	// The helper killed and reaped the background child before it exited,
	// and Run returned after the helper: had the helper been killed after
	// the stop grace instead (the child left running, the output pipe
	// closed on the child), the child would still run here.
	if !testutil.Gone(pid) {
		t.Errorf("the background child %d still runs when Run returns after the abort", pid)
	}
	if r.out != "" || r.err == nil || r.err.Error() != "going\n[command aborted]" {
		t.Errorf("Run = %q, %v", r.out, r.err)
	}
}

func TestBashInputErrors(t *testing.T) {
	b := newBash(t, t.TempDir(), time.Second)
	cases := []struct{ input, part string }{
		{`{}`, `bash: "command" is required`},
		{`{"command":"   "}`, `"command" is required`},
		{`{"command":["ls"]}`, `bash: field "command" must be a string`},
		{`{"command":"ls","cwd":"/"}`, `unknown field "cwd"`},
	}
	for _, tc := range cases {
		_, err := b.Run(context.Background(), json.RawMessage(tc.input))
		wantErr(t, tc.input, err, tc.part)
	}
	missing := newBash(t, t.TempDir(), time.Second)
	missing.Dir = filepath.Join(t.TempDir(), "gone")
	_, err := runBash(t, missing, context.Background(), "true")
	wantErr(t, "missing dir", err, "bash:")
}
