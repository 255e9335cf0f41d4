package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// HelperArg is the hidden first argument that makes the miniclaw binary (or
// a test binary) act as the sandbox helper instead of its usual self:
//
//	<binary> __miniclaw_sandbox <policy JSON> <program> <args>...
const HelperArg = "__miniclaw_sandbox"

// helperFailed is the helper's exit code when it could not set up the
// sandbox or start the program (as env(1) and timeout(1) use 125).
const helperFailed = 125

// RunHelperIfAsked turns this process into the sandbox helper when it was
// started as one (os.Args[1] is HelperArg) and exits with the program's exit
// code; otherwise it returns at once. miniclaw's main and the TestMain of
// every package that runs tools in a sandbox call it first thing, before
// flags are parsed or any goroutine is started.
func RunHelperIfAsked() {
	if len(os.Args) < 4 || os.Args[1] != HelperArg {
		return
	}
	// Not os.Exit: the helper has nothing to flush, and a -race build would
	// sleep a second at a clean exit (GORACE atexit_sleep_ms) after every
	// tool run. A race is still reported when it happens.
	syscall.Exit(helperMain(os.Args[2], os.Args[3:]))
}

// policy is what the gateway tells the helper to enforce.
type policy struct {
	Confine bool     `json:"confine"` // apply Landlock; false: only reap and kill
	Read    []string `json:"read,omitempty"`
	Write   []string `json:"write,omitempty"`
}

// helperMain confines itself, starts the program, and when the program
// exits or the helper is told to stop (SIGTERM from an abort, or as the
// parent-death signal of a dead gateway), kills every process the program
// left behind before it exits itself.
func helperMain(policyJSON string, argv []string) int {
	// Catch the stop signals first: one that arrives before the program
	// starts must still end in the cleanup below, not kill the helper alone.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// The program's parent-death signal fires when the thread that started
	// it exits, not the process: keep this goroutine on one thread for good.
	runtime.LockOSThread()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "miniclaw sandbox: %v\n", err)
		return helperFailed
	}
	// Orphans anywhere below us are re-parented to us, not to init, so
	// killDescendants finds every one, however often it forked or setsid'd.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err))
	}
	var p policy
	if err := json.Unmarshal([]byte(policyJSON), &p); err != nil {
		return fail(fmt.Errorf("policy: %w", err))
	}
	if p.Confine {
		if err := p.restrict(); err != nil {
			return fail(err)
		}
		// After Landlock: its rules are paths opened with the helper's
		// rights, which for root include passing file permissions.
		if err := dropCapabilities(); err != nil {
			return fail(err)
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fail(err)
	}
	child, err := os.StartProcess(path, argv, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		// If the helper is SIGKILLed, the program dies with it at least.
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		return fail(err)
	}
	reaped := make(chan reapedChild)
	go reapChildren(reaped)
	code := 128 + int(syscall.SIGTERM)
	for running := true; running; {
		select {
		case r, ok := <-reaped:
			switch {
			case !ok: // wait4 failed: the program's status is lost
				code, running = helperFailed, false
			case r.pid == child.Pid:
				code, running = r.code(), false
			}
		case <-stop:
			running = false
		}
	}
	// Kill everything that is left, again after every reap: a process
	// forked between a scan and its parent's death is re-parented to us
	// and shows up in the next scan. No children left means no
	// descendants left.
	for {
		killDescendants(os.Getpid())
		if _, ok := <-reaped; !ok {
			return code
		}
	}
}

// restrict applies the Landlock ruleset to this process (all threads); the
// program inherits it. Best effort: on a kernel without Landlock, or with an
// older ABI, it enforces what the kernel offers (the gateway reports that).
// The network is not restricted; IPC scoping (ABI 6+) stops signals to and
// abstract Unix sockets of processes outside the sandbox.
func (p policy) restrict() error {
	var rules []landlock.Rule
	// A rule on a file takes file rights only, so files and directories
	// are told apart here.
	add := func(paths []string, dir, file func(...string) landlock.FSRule) {
		for _, path := range paths {
			fi, err := os.Stat(path)
			if err != nil {
				continue // the gateway checked; gone since
			}
			if fi.IsDir() {
				rules = append(rules, dir(path))
			} else {
				rules = append(rules, file(path))
			}
		}
	}
	add(p.Read, landlock.RODirs, landlock.ROFiles)
	writeDirs := landlock.RWDirs
	// Renames and links across directories need "refer", from ABI 2 on. On
	// ABI 1 they are always refused, and asking for it would make the best
	// effort give up on Landlock altogether.
	if abi, _ := ll.LandlockGetABIVersion(); abi >= 2 {
		writeDirs = func(paths ...string) landlock.FSRule { return landlock.RWDirs(paths...).WithRefer() }
	}
	add(p.Write, writeDirs, landlock.RWFiles)
	cfg := landlock.Config{
		HandledAccessFS: landlock.V11.HandledAccessFS,
		Scoped:          landlock.V11.Scoped,
	}
	if err := cfg.BestEffort().Restrict(rules...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}

// dropCapabilities leaves the helper, and so the program and everything it
// starts, with no capability and no way to gain one. A gateway run as root
// (or with file capabilities) would otherwise hand its tools
// CAP_SYS_PTRACE, which gets past Landlock's ptrace scoping to the
// gateway's memory and environment (its API keys), and CAP_DAC_OVERRIDE and
// the rest, which pass file permissions. uid 0 stays: root's own files stay
// root's, within the Landlock rules.
//
// Capabilities and no_new_privs are per thread. Every thread of the helper
// drops them: the program may ptrace the helper (same uid, same Landlock
// domain) and act through a thread that kept some. The bounding set is
// emptied on this thread only, the one that starts the program (locked to
// it in helperMain), which inherits it: the other threads hold nothing, and
// with no_new_privs no exec can give them anything back. (An all-threads
// call per capability cost ~20 ms of CPU per run.)
func dropCapabilities() error {
	// No exec gains anything: setuid bits and file capabilities are
	// ignored. Landlock has set it on every thread, unless the kernel
	// lacks Landlock.
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || nnp != 1 {
		if err := ll.AllThreadsPrctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData // capabilities 0-31 and 32-63
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if caps == [2]unix.CapUserData{} {
		return nil // an ordinary user holds none
	}
	// The bounding set caps what an exec can grant root; emptying it needs
	// CAP_SETPCAP. Without it, no_new_privs alone keeps exec from granting
	// anything.
	if caps[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := 0; ; c++ {
			in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
			if err != nil {
				break // EINVAL: past the kernel's last capability
			}
			if in == 1 {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
					return fmt.Errorf("PR_CAPBSET_DROP %d: %w", c, err)
				}
			}
		}
	}
	// Ambient capabilities are always inheritable ones too.
	if caps[0].Inheritable != 0 || caps[1].Inheritable != 0 {
		if err := ll.AllThreadsPrctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
			return fmt.Errorf("PR_CAP_AMBIENT_CLEAR_ALL: %w", err)
		}
	}
	caps = [2]unix.CapUserData{}
	if _, _, e := psx.Syscall3(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&caps[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	return nil
}

// reapedChild is one child collected by wait4.
type reapedChild struct {
	pid    int
	status syscall.WaitStatus
}

// code is the exit code a shell would report for the child.
func (r reapedChild) code() int {
	if r.status.Signaled() {
		return 128 + int(r.status.Signal())
	}
	return r.status.ExitStatus()
}

// reapChildren waits for every child of the helper, its own and the orphans
// re-parented to it, and closes out when none is left.
func reapChildren(out chan<- reapedChild) {
	defer close(out)
	for {
		var st syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &st, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil: // ECHILD: nothing left to wait for
			return
		}
		out <- reapedChild{pid, st}
	}
}

// killDescendants sends SIGKILL to every process below pid, found by parent
// links in /proc.
func killDescendants(pid int) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentOf(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// parentOf reads the parent pid from /proc/<pid>/stat.
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}
