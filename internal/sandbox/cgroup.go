package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroups is the gateway's own cgroup v2 directory,
// <our cgroup>/miniclaw-<pid>-<random>, under which each run gets a cgroup
// of its own (run-<n>).
type cgroups struct {
	dir  string
	runs atomic.Uint64
}

// cgroupPrefix names the gateway's cgroup; the pid and a dash follow.
const cgroupPrefix = "miniclaw-"

// openCgroups creates the gateway's cgroup where cgroup v2 is mounted
// (alone, or beside v1 in hybrid mode) and delegated to us: we may create a
// cgroup below our own and move processes into it (write access to our
// cgroup's cgroup.procs), and the kernel has cgroup.kill (5.14+). It returns
// nil otherwise, and the helper's subreaper does the cleanup alone. Cgroups
// left by a gateway that died are killed and removed first.
func openCgroups() *cgroups {
	base, err := ownCgroup()
	if err != nil || unix.Access(filepath.Join(base, "cgroup.procs"), unix.W_OK) != nil {
		return nil
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, cgroupPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		os.Remove(dir)
		return nil
	}
	return &cgroups{dir: dir}
}

// ownCgroup finds this process's cgroup v2 directory: the cgroup2 mount in
// /proc/self/mountinfo joined with the "0::" line of /proc/self/cgroup.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var path string
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			path = p
		}
	}
	if path == "" {
		return "", errors.New("no cgroup v2 membership")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		root, mnt := fields[3], fields[4]
		rel, ok := strings.CutPrefix(path, root)
		if root == "/" {
			rel, ok = path, true
		}
		if ok {
			return filepath.Join(mnt, rel), nil
		}
	}
	return "", errors.New("no cgroup2 mount holds our cgroup")
}

// removeStale kills and removes the cgroups of gateways that are gone.
func removeStale(base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !e.IsDir() || !ok || err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		dir := filepath.Join(base, e.Name())
		runs, _ := os.ReadDir(dir)
		for _, r := range runs {
			if r.IsDir() {
				killCgroup(filepath.Join(dir, r.Name()))
			}
		}
		os.Remove(dir)
	}
}

// newRun creates the cgroup of one run.
func (c *cgroups) newRun() (*runCgroup, error) {
	dir := filepath.Join(c.dir, "run-"+strconv.FormatUint(c.runs.Add(1), 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: cgroup: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("sandbox: cgroup: %w", err)
	}
	return &runCgroup{dir: dir, f: f}, nil
}

// close removes the gateway's cgroup (every run's is gone by then).
func (c *cgroups) close() error {
	if err := os.Remove(c.dir); err != nil {
		return fmt.Errorf("sandbox: cgroup: %w", err)
	}
	return nil
}

// runCgroup is the cgroup of one run; the helper is started into it
// (CLONE_INTO_CGROUP), and every process below it stays in it.
type runCgroup struct {
	dir string
	f   *os.File // the directory, for SysProcAttr.CgroupFD
}

func (r *runCgroup) fd() int { return int(r.f.Fd()) }

// kill kills every process in the run's cgroup.
func (r *runCgroup) kill() error {
	return os.WriteFile(filepath.Join(r.dir, "cgroup.kill"), []byte("1"), 0)
}

// remove kills whatever is still in the cgroup and removes it.
func (r *runCgroup) remove() error {
	r.f.Close()
	if err := killCgroup(r.dir); err != nil {
		return fmt.Errorf("sandbox: cgroup: %w", err)
	}
	return nil
}

// killCgroup kills every process in the cgroup dir and removes it. The
// kill is asynchronous: rmdir fails with EBUSY until the last process is
// gone, which takes a moment for processes stuck in the kernel.
func killCgroup(dir string) error {
	r := runCgroup{dir: dir}
	if err := r.kill(); err != nil {
		return err
	}
	deadline := time.Now().Add(stopGrace)
	for {
		err := os.Remove(dir)
		if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
