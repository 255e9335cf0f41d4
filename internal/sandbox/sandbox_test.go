package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/sandbox"
	"github.com/miniclaw/miniclaw/internal/testutil"
)

// TestMain lets the test binary act as the sandbox helper.
func TestMain(m *testing.M) {
	sandbox.RunHelperIfAsked()
	os.Exit(m.Run())
}

// env is a sandbox with a workspace, a temp dir and a fake home outside
// both that holds a secret.
type env struct {
	sb        *sandbox.Sandbox
	workspace string
	tmp       string
	home      string // the "user's" home: outside the sandbox
}

func newEnv(t *testing.T, mode sandbox.Mode, edit func(*sandbox.Config)) env {
	t.Helper()
	e := env{workspace: t.TempDir(), tmp: t.TempDir(), home: t.TempDir()}
	if err := os.WriteFile(filepath.Join(e.home, "secret"), []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{
		Mode: mode, Workspace: e.workspace, TempDir: e.tmp,
		Environ: append(os.Environ(), "HOME="+e.home),
	}
	if edit != nil {
		edit(&cfg)
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Error(err)
		}
	})
	if mode == sandbox.Workspace && !sb.Status().Confined() {
		t.Skipf("no Landlock on this kernel: %s", sb.Status())
	}
	e.sb = sb
	return e
}

// run runs a bash command in the workspace and returns its merged output
// and exit code.
func (e env) run(t *testing.T, command string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.sb.Command(ctx, e.workspace, "bash", "-c", command)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%q: %v", command, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// ok runs a command that must succeed.
func (e env) ok(t *testing.T, command string) string {
	t.Helper()
	out, code := e.run(t, command)
	if code != 0 {
		t.Fatalf("%q: exit %d:\n%s", command, code, out)
	}
	return out
}

// denied runs a command that the sandbox must refuse.
func (e env) denied(t *testing.T, command string) {
	t.Helper()
	out, code := e.run(t, command)
	if code == 0 || !strings.Contains(out, "Permission denied") {
		t.Errorf("%q: exit %d, output %q; want a failure with \"Permission denied\"", command, code, out)
	}
}

func TestConfinedCannotReadOrWriteOutside(t *testing.T) {
	e := newEnv(t, sandbox.Workspace, nil)
	other := t.TempDir()
	e.denied(t, "cat "+filepath.Join(e.home, "secret"))
	e.denied(t, "ls "+e.home)
	e.denied(t, "echo pwned > "+filepath.Join(other, "x"))
	e.denied(t, "echo pwned > "+filepath.Join(e.home, "secret"))
	e.denied(t, "ls /tmp")
	e.denied(t, "touch /etc/pwned")
	// No terminal: not the gateway's, not the user's other ones.
	e.denied(t, "echo pwned > /dev/tty")
	if _, err := os.Stat("/dev/pts/0"); err == nil {
		e.denied(t, "echo pwned > /dev/pts/0")
	}
	// The gateway's own environment and memory, where its API keys are,
	// belong to a process outside the sandbox: Landlock refuses the
	// ptrace-class access that reading them needs, and a gateway run as root
	// gives the tool no CAP_SYS_PTRACE to get past that.
	for _, f := range []string{"environ", "mem", "maps"} {
		e.denied(t, "head -c 100 /proc/"+strconv.Itoa(os.Getpid())+"/"+f)
	}
	if got, _ := os.ReadFile(filepath.Join(e.home, "secret")); string(got) != "hunter2\n" {
		t.Errorf("the secret now reads %q", got)
	}
	if _, err := os.Stat(filepath.Join(other, "x")); err == nil {
		t.Error("a file was written outside the workspace")
	}
	// Signals to processes outside the sandbox are refused (Landlock ABI 6+).
	if e.sb.Status().Landlock >= 6 {
		out, code := e.run(t, "kill -0 "+strconv.Itoa(os.Getpid()))
		if code == 0 || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("kill -0 of the gateway: exit %d, %q", code, out)
		}
	}
}

// A gateway run as root (or with file capabilities) gives its tools none:
// uid 0 still owns root's files, within Landlock's rules, but no capability
// bypasses a permission or ptrace check, and none can be regained. Every
// thread of the helper (bash's parent) holds none either: bash could ptrace
// one that did and act through it.
func TestConfinedHoldsNoCapabilities(t *testing.T) {
	e := newEnv(t, sandbox.Workspace, nil)
	zero := []string{"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1"}
	got := e.ok(t, "for f in /proc/self/status /proc/$PPID/task/*/status; do echo \"$f\"; grep -E '^(Cap|NoNewPrivs)' \"$f\"; done")
	files := strings.Split(got, "/proc/")[1:]
	if len(files) < 2 {
		t.Fatalf("no status of the helper's threads:\n%s", got)
	}
	for _, f := range files {
		for _, want := range zero {
			if !strings.Contains(f, want+"\n") {
				t.Errorf("/proc/%s lacks %q", f, want)
			}
		}
	}
	// Emptying the bounding set needs CAP_SETPCAP; for an ordinary user
	// no_new_privs alone keeps exec from granting anything.
	if want := "CapBnd:\t0000000000000000\n"; os.Geteuid() == 0 && !strings.Contains(files[0], want) {
		t.Errorf("/proc/%s lacks %q", files[0], want)
	}
}

func TestConfinedOrdinaryWork(t *testing.T) {
	e := newEnv(t, sandbox.Workspace, nil)
	e.ok(t, "ls -la /usr/bin | grep -c bash > count.txt && cat count.txt | wc -l")
	if got, _ := os.ReadFile(filepath.Join(e.workspace, "count.txt")); strings.TrimSpace(string(got)) == "" {
		t.Error("the redirection into the workspace wrote nothing")
	}
	// TMPDIR is the temp dir, writable; HOME is a fresh one inside it.
	if got := e.ok(t, `echo "$TMPDIR $HOME"; mktemp; touch ~/.dotfile`); !strings.HasPrefix(got, e.tmp+" "+filepath.Join(e.tmp, "home")+"\n"+e.tmp+"/") {
		t.Errorf("TMPDIR, HOME and mktemp: %q", got)
	}
	e.ok(t, "mkdir -p sub && cd sub && git init -q . && echo hi > a.txt && git add a.txt && git -c user.name=t -c user.email=t@example.com commit -qm first && git log --oneline | grep -q first")
	e.ok(t, "mv sub/a.txt b.txt && ln -s b.txt c.txt && cat c.txt")
	if got := e.ok(t, `python3 -c 'import sys, tempfile; print(sum(range(10))); tempfile.NamedTemporaryFile()'`); got != "45\n" {
		t.Errorf("python3: %q", got)
	}
	// Go's build cache follows HOME into the temp dir, so it is writable.
	if got := e.ok(t, `go env GOCACHE`); !strings.HasPrefix(got, e.tmp+"/") {
		t.Errorf("GOCACHE is %q, want it under the temp dir %s", got, e.tmp)
	}
	e.ok(t, "echo ok > /dev/null && head -c 4 /dev/urandom | wc -c")
}

// go build works in the sandbox. A cold build cache costs ~25 s, so the test
// passes a cache of its own (kept between runs) by name, which also shows
// MINI_OPENCLAW_SANDBOX_WRITE and MINI_OPENCLAW_TOOL_ENV at work.
func TestConfinedGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("go build in the sandbox: slow with a cold cache")
	}
	userCache, err := os.UserCacheDir()
	if err != nil {
		t.Skip(err)
	}
	cache := filepath.Join(userCache, "miniclaw-sandbox-test-gocache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sandbox.Workspace, func(c *sandbox.Config) {
		c.Write = []string{cache}
		c.Environ = append(c.Environ, "GOCACHE="+cache)
		c.PassEnv = []string{"GOCACHE"}
	})
	e.ok(t, `printf 'module hello\n\ngo 1.21\n' > go.mod && printf 'package main\n\nfunc main() { println("built") }\n' > main.go`)
	if got := e.ok(t, "go build -o hello . && ./hello"); got != "built\n" {
		t.Errorf("./hello printed %q", got)
	}
}

func TestOffIsNotConfinedButFiltersTheEnvironment(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
	e := newEnv(t, sandbox.Off, nil)
	if got := e.ok(t, "cat "+filepath.Join(e.home, "secret")+"; echo $HOME; env | grep -c ANTHROPIC || true"); got != "hunter2\n"+e.home+"\n0\n" {
		t.Errorf("off: %q", got)
	}
	if s := e.sb.Status(); s.Confined() || !strings.Contains(s.String(), "not confined") {
		t.Errorf("status %q", s)
	}
}

// Extra read and write paths are honoured, files as well as directories.
func TestExtraPaths(t *testing.T) {
	ro, rw := t.TempDir(), t.TempDir()
	roFile, rwFile := filepath.Join(t.TempDir(), "conf"), filepath.Join(t.TempDir(), "log")
	for _, p := range []string{filepath.Join(ro, "f"), roFile, rwFile} {
		if err := os.WriteFile(p, []byte("readable\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, sandbox.Workspace, func(c *sandbox.Config) {
		c.Read = []string{ro, roFile}
		c.Write = []string{rw, rwFile}
	})
	e.ok(t, "cat "+filepath.Join(ro, "f")+" "+roFile+" && echo w > "+filepath.Join(rw, "w")+" && echo w >> "+rwFile)
	e.denied(t, "echo pwned > "+filepath.Join(ro, "f"))
	e.denied(t, "echo pwned > "+roFile)
}

func TestFilterEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/home/u", "ANTHROPIC_API_KEY=k", "OPENAI_API_KEY=k",
		"MINI_OPENCLAW_TOKEN=t", "LC_ALL=C", "LANG=C.UTF-8", "AWS_SECRET_ACCESS_KEY=s",
		"SSH_AUTH_SOCK=/run/agent", "EXTRA=1", "TMPDIR=/tmp", "noequals",
	}
	got := sandbox.FilterEnv(environ, []string{"EXTRA", "MISSING"}, []string{"TMPDIR=/gw/tmp", "NEW=n"})
	want := []string{"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C", "LANG=C.UTF-8", "EXTRA=1", "TMPDIR=/gw/tmp", "NEW=n"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("FilterEnv = %q\nwant       %q", got, want)
	}
}

// Each run is in a cgroup of its own, removed after it; a helper killed by
// someone else (so it cannot clean up) still leaves nothing running.
func TestCgroupPerRun(t *testing.T) {
	e := newEnv(t, sandbox.Off, nil)
	if !e.sb.Status().Cgroup {
		t.Skip("cgroup v2 is not delegated to this user here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pidfile := filepath.Join(e.workspace, "pid")
	cmd := e.sb.Command(ctx, e.workspace, "bash", "-c", "cat /proc/self/cgroup; setsid sleep 300 & echo $! > "+pidfile+"; wait")
	var out testutil.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := testutil.WaitPidFile(t, pidfile)
	self, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	wantCg := "/miniclaw-" + strconv.Itoa(os.Getpid()) + "-"
	if !strings.Contains(string(self), wantCg) {
		t.Errorf("the grandchild's cgroup is %q, want one under %s", self, wantCg)
	}
	cmd.Process.Kill() // the helper, with no chance to clean up
	cmd.Wait()
	testutil.WaitGone(t, pid)
	if got := out.String(); !strings.Contains(got, wantCg) {
		t.Errorf("bash's cgroup is %q, want one under %s", got, wantCg)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []sandbox.Config{
		{Mode: "strict", Workspace: dir, TempDir: dir},
		{Mode: sandbox.Workspace, Workspace: filepath.Join(dir, "gone"), TempDir: dir},
		{Mode: sandbox.Workspace, Workspace: dir, TempDir: "relative"},
	} {
		if _, err := sandbox.New(c); err == nil {
			t.Errorf("New(%+v) accepted it", c)
		}
	}
}

// Writable says which paths bash may write: the workspace, the temp dir
// and the Write paths, through symlinks, down to files not yet created;
// with the sandbox off, every path.
func TestWritable(t *testing.T) {
	ws, tmp, extra, outside := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	link := filepath.Join(outside, "link")
	if err := os.Symlink(ws, link); err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{Mode: sandbox.Workspace, Workspace: ws, TempDir: tmp, Write: []string{extra}}
	for path, want := range map[string]bool{
		ws:                                       true,
		filepath.Join(ws, ".mini-openclaw", "x"): true,
		filepath.Join(tmp, "a"):                  true,
		filepath.Join(extra, "b", "c"):           true,
		filepath.Join(link, "data", "mcp.json"):  true,
		outside:                                  false,
		filepath.Join(outside, "d"):              false,
		ws + "x":                                 false,
		"/":                                      false,
	} {
		if got := cfg.Writable(path); got != want {
			t.Errorf("Writable(%s) = %v, want %v", path, got, want)
		}
	}
	noTmp := sandbox.Config{Mode: sandbox.Workspace, Workspace: ws}
	if noTmp.Writable(outside) {
		t.Errorf("with no temp dir, Writable(%s) = true", outside)
	}
	off := sandbox.Config{Mode: sandbox.Off, Workspace: ws}
	if !off.Writable(outside) {
		t.Errorf("sandbox off: Writable(%s) = false", outside)
	}
}
