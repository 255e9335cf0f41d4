// Package sandbox runs tool processes (bash) confined and accounted for.
//
// Every run goes through a helper: the miniclaw binary re-executed with
// HelperArg (RunHelperIfAsked). The helper
//
//   - confines itself with Landlock (github.com/landlock-lsm/go-landlock)
//     before it starts the program, which inherits the confinement: write
//     only the workspace, the per-gateway temp dir and a few character
//     devices; read and execute only the system directories, the workspace
//     and the temp dir (Mode Workspace). The network is not restricted.
//   - then drops every capability and sets no_new_privs (Mode Workspace):
//     a gateway run as root gives its tools uid 0 but no CAP_SYS_PTRACE
//     to read its own environment past Landlock, no CAP_DAC_OVERRIDE, and
//     no way to gain either back.
//   - is a child subreaper, and kills every process the program left behind
//     (setsid'd, double-forked, anything) when the program exits or when the
//     helper is told to stop (SIGTERM on abort or timeout), then exits.
//   - gets SIGTERM as its parent-death signal, so a gateway that dies, even
//     by SIGKILL, leaves no tool running.
//
// Where the machine delegates cgroup v2 to the gateway's user, each run also
// gets its own cgroup, which the gateway kills and removes after the run (so
// even a helper killed by someone else leaves nothing behind).
//
// The environment of a tool is built from an allowlist (FilterEnv), never
// inherited whole, so the gateway's API keys and token do not reach it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Mode is how tool processes are confined.
type Mode string

const (
	// Workspace confines tools with Landlock to the workspace and temp dir.
	Workspace Mode = "workspace"
	// Off runs tools unconfined, with all the rights of the gateway's user
	// (root's capabilities too), still with the filtered environment, the
	// temp dir as TMPDIR, and the cleanup of every process they start.
	Off Mode = "off"
)

// Config is what New needs.
type Config struct {
	Mode      Mode
	Workspace string   // read and write; tools run here
	TempDir   string   // per-gateway temp dir: read and write, TMPDIR
	Read      []string // extra paths to read and execute (absolute, existing)
	Write     []string // extra paths to read and write (absolute, existing)
	Environ   []string // the gateway's environment, as os.Environ returns it
	PassEnv   []string // more variables of Environ to pass to tools, by name
	// Exe is the binary to re-execute as the helper; "" means this one
	// (/proc/self/exe), which must call RunHelperIfAsked first thing.
	Exe string
}

// systemRead are the directories every confined tool may read and execute.
// Missing ones are skipped.
var systemRead = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys", "/dev"}

// devices are the character devices a confined tool may write (without
// ioctl rights, Landlock ABI 5+). Not /dev/tty: a tool has no controlling
// terminal (the helper starts a new session). Not /dev/pts: those are the
// user's terminals, where a tool could type commands (TIOCSTI) or write
// escape sequences. Missing ones are skipped.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// Sandbox starts tool processes. A nil *Sandbox runs them directly (see
// Command). Safe for concurrent use.
type Sandbox struct {
	exe       string
	policyArg string // the helper's policy, JSON
	env       []string
	status    Status
	cgroups   *cgroups // nil where cgroup v2 is not delegated to us
}

// Status says how tools are confined, for the log and /readyz.
type Status struct {
	Mode     Mode
	Landlock int  // the kernel's Landlock ABI version; 0: none
	Cgroup   bool // each run gets its own cgroup
}

// Confined reports whether Landlock confines the tools.
func (s Status) Confined() bool { return s.Mode == Workspace && s.Landlock > 0 }

// String describes the status in a few words.
func (s Status) String() string {
	var b strings.Builder
	switch {
	case s.Mode == Off:
		b.WriteString("off (MINI_OPENCLAW_SANDBOX=off): tools are not confined")
	case s.Landlock == 0:
		b.WriteString("none: the kernel has no Landlock, tools are not confined")
	default:
		fmt.Fprintf(&b, "workspace (Landlock ABI %d)", s.Landlock)
	}
	if s.Cgroup {
		b.WriteString(", a cgroup per run")
	}
	return b.String()
}

// Warning is the loud message for the log and /readyz when the sandbox was
// asked for and the kernel cannot give it; "" otherwise.
func (s Status) Warning() string {
	if s.Mode != Workspace || s.Landlock > 0 {
		return ""
	}
	return "The kernel does not offer Landlock (Linux 5.13+ with landlock in the lsm= boot list): bash runs UNCONFINED and can read and write everything the gateway's user can. " +
		"The environment filter, the cleanup of tool processes and, for a gateway run as root, the drop of every capability still apply. Set MINI_OPENCLAW_SANDBOX=off to say this is intended."
}

// New prepares the sandbox: it checks the paths, creates TempDir/home (the
// tools' HOME when confined) and builds the tools' environment.
func New(cfg Config) (*Sandbox, error) {
	if cfg.Mode != Workspace && cfg.Mode != Off {
		return nil, fmt.Errorf("sandbox: unknown mode %q (want %s or %s)", cfg.Mode, Workspace, Off)
	}
	for _, d := range []struct{ name, path string }{{"workspace", cfg.Workspace}, {"temp dir", cfg.TempDir}} {
		if fi, err := os.Stat(d.path); err != nil || !fi.IsDir() || !filepath.IsAbs(d.path) {
			return nil, fmt.Errorf("sandbox: %s %q is not an existing absolute directory", d.name, d.path)
		}
	}
	s := &Sandbox{exe: cfg.Exe, status: Status{Mode: cfg.Mode}}
	if s.exe == "" {
		s.exe = "/proc/self/exe"
	}
	if v, err := ll.LandlockGetABIVersion(); err == nil {
		s.status.Landlock = v
	}
	p := policy{Confine: cfg.Mode == Workspace}
	set := []string{"TMPDIR=" + cfg.TempDir}
	if p.Confine {
		p.Read = append(existing(slices.Concat(systemRead, []string{resolverDir()})), cfg.Read...)
		p.Write = slices.Concat([]string{cfg.Workspace, cfg.TempDir}, cfg.Write, existing(devices))
		// The user's home is out of reach, so tools get their own, kept
		// for the gateway's life: caches (GOCACHE, pip, npm) and dotfiles
		// land there instead of failing.
		home := filepath.Join(cfg.TempDir, "home")
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		set = append(set, "HOME="+home, "PATH="+readablePath(getenv(cfg.Environ, "PATH"), slices.Concat(p.Read, p.Write)))
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s.policyArg = string(b)
	s.env = FilterEnv(cfg.Environ, cfg.PassEnv, set)
	s.cgroups = openCgroups()
	s.status.Cgroup = s.cgroups != nil
	return s, nil
}

// Status says how tools are confined.
func (s *Sandbox) Status() Status { return s.status }

// Close removes what New set up outside the temp dir (the gateway's cgroup).
func (s *Sandbox) Close() error {
	if s == nil || s.cgroups == nil {
		return nil
	}
	return s.cgroups.close()
}

// Cmd is a command that runs in the sandbox. Set its Stdin, Stdout and
// Stderr as for exec.Cmd, then call Run, or Start and Wait.
type Cmd struct {
	*exec.Cmd
	cgroups *cgroups
	run     *runCgroup // this run's cgroup, after Start
	group   bool       // run directly (nil Sandbox): kill the process group after
}

// stopGrace is how long a helper has to clean up after SIGTERM before it
// is killed (and where there are cgroups, everything in its cgroup too).
const stopGrace = 2 * time.Second

// Command prepares argv to run in dir inside the sandbox, stopped when ctx
// is done. A nil Sandbox runs argv directly, unconfined, with the caller's
// environment, in its own process group killed as a whole on cancel and
// when it exits: for tests of packages whose binary cannot act as the
// helper; miniclaw itself always has a Sandbox.
func (s *Sandbox) Command(ctx context.Context, dir string, argv ...string) *Cmd {
	if s == nil {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = stopGrace
		return &Cmd{Cmd: cmd, group: true}
	}
	cmd := exec.CommandContext(ctx, s.exe, append([]string{HelperArg, s.policyArg}, argv...)...)
	cmd.Dir = dir
	cmd.Env = s.env
	// A new session: no controlling terminal, so a tool cannot read or
	// write the terminal the gateway runs in, and a Ctrl-C there goes to
	// the gateway, which stops its turns, not straight to the tools.
	//
	// Pdeathsig is tied to the thread that starts the helper, not to the
	// process: it would fire early if that thread exited. Go ends a thread
	// only when a goroutine locked to it returns without unlocking, which
	// nothing in the gateway does, so the signal comes when the gateway dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	return &Cmd{Cmd: cmd, cgroups: s.cgroups}
}

// Start starts the helper (in a new cgroup where there are cgroups).
func (c *Cmd) Start() error {
	if c.cgroups != nil {
		run, err := c.cgroups.newRun()
		if err != nil {
			return err
		}
		c.run = run
		c.SysProcAttr.UseCgroupFD, c.SysProcAttr.CgroupFD = true, run.fd()
	}
	err := c.Cmd.Start()
	if err != nil && c.run != nil {
		c.run.remove()
	}
	return err
}

// Wait waits for the helper to exit, which it does after every process it
// started is gone. With a cgroup, it then kills whatever is left in it (all
// of the run's processes, if the helper itself was killed) before waiting
// for the output pipes a left-behind process could hold open, and removes
// the cgroup.
func (c *Cmd) Wait() error {
	if c.run != nil {
		// Block until the helper exits, without reaping it: Cmd.Wait does.
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, c.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == syscall.EINTR {
		}
		c.run.kill()
	}
	err := c.Cmd.Wait()
	if c.group {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	if c.run != nil {
		err = errors.Join(err, c.run.remove())
	}
	return err
}

// Run is Start and Wait.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// existing returns the paths that exist.
func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// resolverDir is the directory of the file /etc/resolv.conf links to
// (/run/systemd/resolve on systemd-resolved machines), so DNS works; "" when
// it is a plain file.
func resolverDir() string {
	target, err := filepath.EvalSymlinks("/etc/resolv.conf")
	if err != nil || strings.HasPrefix(target, "/etc/") {
		return ""
	}
	return filepath.Dir(target)
}

// readablePath keeps the entries of a PATH value that lie inside roots: a
// command found in any other directory (~/.pyenv/shims, ~/go/bin) could not
// be run in the sandbox anyway, and would shadow the system's copy with
// "Permission denied".
func readablePath(path string, roots []string) string {
	var keep []string
	for _, dir := range filepath.SplitList(path) {
		for _, root := range roots {
			if filepath.IsAbs(dir) && within(filepath.Clean(dir), root) {
				keep = append(keep, dir)
				break
			}
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// within reports whether path is root or lies below it.
func within(path, root string) bool {
	return path == root || strings.HasPrefix(path, strings.TrimSuffix(root, "/")+"/")
}

// getenv looks name up in environ.
func getenv(environ []string, name string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// Writable reports whether a tool run under cfg may write path: with the
// sandbox off, any path; confined, one in the workspace, the temp dir or
// a Write path. Symlinks are resolved as far as path exists, as Landlock
// sees them, so a link out of the workspace does not hide a path inside.
func (cfg Config) Writable(path string) bool {
	if cfg.Mode == Off {
		return true
	}
	path = realPath(path)
	for _, root := range slices.Concat([]string{cfg.Workspace, cfg.TempDir}, cfg.Write) {
		if root != "" && within(path, realPath(root)) {
			return true
		}
	}
	return false
}

// realPath is the absolute path with the symlinks of its longest existing
// prefix resolved.
func realPath(path string) string {
	path = filepath.Clean(path)
	var rest []string
	for dir := path; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(append([]string{real}, rest...)...)
		}
		if dir == filepath.Dir(dir) {
			return path
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
	}
}
