package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one running miniclaw gateway.
type child struct {
	cmd     *exec.Cmd
	pid     int
	port    int
	base    string    // http://127.0.0.1:PORT
	started time.Time // just before fork/exec
	listen  time.Duration

	mu    sync.Mutex
	tail  []string // last lines of its stderr
	warns int      // WARN/ERROR log lines seen
	first []string // the first WARN/ERROR lines, for the report

	exited chan struct{}
	err    error // exit status, valid after exited is closed
	once   sync.Once
}

// childOpts says how to run a gateway.
type childOpts struct {
	workspace string
	dataDir   string
	fsync     string   // always | never
	env       []string // extra KEY=VALUE settings, applied last (they win)
}

var (
	childrenMu sync.Mutex
	children   = map[*child]struct{}{}
)

// killAllChildren kills every gateway this bench started and still runs.
func killAllChildren() {
	childrenMu.Lock()
	list := make([]*child, 0, len(children))
	for c := range children {
		list = append(list, c)
	}
	childrenMu.Unlock()
	for _, c := range list {
		c.kill()
	}
}

var listenRE = regexp.MustCompile(`url=http://127\.0\.0\.1:(\d+)`)

// startChild starts the gateway and waits for its "listening" log line. The
// child runs in its own process group, gets SIGKILL if the bench dies
// (Pdeathsig), and is tracked for killAllChildren.
func startChild(bin string, o childOpts) (*child, error) {
	if o.fsync == "" {
		o.fsync = "never"
	}
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MINI_OPENCLAW_") || strings.HasPrefix(k, "ANTHROPIC_") || strings.HasPrefix(k, "OPENAI_") {
			continue // the bench decides the whole configuration; no keys reach the child
		}
		env = append(env, kv)
	}
	env = append(env,
		"MINI_OPENCLAW_HOST=127.0.0.1",
		"MINI_OPENCLAW_PORT=0",
		"MINI_OPENCLAW_WORKSPACE="+o.workspace,
		"MINI_OPENCLAW_DATA_DIR="+o.dataDir,
		"MINI_OPENCLAW_PROVIDER=scripted",
		"MINI_OPENCLAW_FSYNC="+o.fsync,
		"MINI_OPENCLAW_SHUTDOWN_TIMEOUT=1s",
	)
	env = append(env, o.env...)
	if err := os.MkdirAll(o.workspace, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "gateway")
	cmd.Env = env
	cmd.Dir = o.workspace
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c.track()

	portCh := make(chan int, 1)
	go func() {
		// Drain stderr for the child's whole life: a full pipe would block it.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent && strings.Contains(line, "miniclaw gateway listening") {
				if m := listenRE.FindStringSubmatch(line); m != nil {
					if p, err := strconv.Atoi(m[1]); err == nil {
						c.listen = time.Since(c.started)
						portCh <- p
						sent = true
					}
				}
			}
			c.mu.Lock()
			c.tail = append(c.tail, line)
			if len(c.tail) > 40 {
				c.tail = c.tail[len(c.tail)-40:]
			}
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				c.warns++
				if len(c.first) < 3 {
					c.first = append(c.first, line)
				}
			}
			c.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		c.err = cmd.Wait()
		close(c.exited)
	}()

	select {
	case p := <-portCh:
		c.port = p
		c.base = "http://127.0.0.1:" + strconv.Itoa(p)
		return c, nil
	case <-c.exited:
		c.kill()
		return nil, fmt.Errorf("gateway exited before listening (%v): %s", c.err, c.stderrTail())
	case <-time.After(30 * time.Second):
		c.kill()
		return nil, fmt.Errorf("gateway did not log its address within 30s: %s", c.stderrTail())
	}
}

// track records the started child for killAllChildren.
func (c *child) track() {
	c.pid = c.cmd.Process.Pid
	childrenMu.Lock()
	children[c] = struct{}{}
	childrenMu.Unlock()
}

// kill ends the child's process group with SIGKILL and waits (bounded) for
// it to be reaped. Safe to call more than once.
func (c *child) kill() {
	c.once.Do(func() {
		// The child leads its own process group (Setpgid), so -pid is exactly
		// the processes it started.
		syscall.Kill(-c.pid, syscall.SIGKILL)
		c.cmd.Process.Kill()
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			logf("child %d not reaped within 10s", c.pid)
		}
		childrenMu.Lock()
		delete(children, c)
		childrenMu.Unlock()
	})
}

// stop ends the child as a service manager would, with SIGTERM, and waits
// up to limit for it to exit (then kills it). It reports whether the child
// exited by itself with status 0.
func (c *child) stop(limit time.Duration) bool {
	syscall.Kill(c.pid, syscall.SIGTERM)
	select {
	case <-c.exited:
		ok := c.err == nil
		c.kill() // reaps the group and untracks the child
		return ok
	case <-time.After(limit):
		c.kill()
		return false
	}
}

func (c *child) stderrTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// warnings returns how many WARN/ERROR lines the child logged, and the
// first few of them.
func (c *child) warnings() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warns, append([]string(nil), c.first...)
}

// noteWarnings adds a note when the child logged warnings or errors.
func (b *bench) noteWarnings(c *child, what string) {
	if n, first := c.warnings(); n > 0 {
		b.note("%s: the gateway logged %d WARN/ERROR lines, first: %s", what, n, oneLine(strings.Join(first, " || ")))
	}
}

var pollClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true},
}

// waitReady polls /readyz every millisecond until it answers 200 and returns
// the time since the process was started.
func (c *child) waitReady(timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for i := 0; time.Now().Before(deadline); i++ {
		resp, err := pollClient.Get(c.base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(c.started), nil
			}
			last = fmt.Errorf("readyz: %s", resp.Status)
		} else {
			last = err
		}
		select {
		case <-c.exited:
			return 0, fmt.Errorf("gateway exited (%v): %s", c.err, c.stderrTail())
		case <-time.After(time.Millisecond):
		}
	}
	return 0, fmt.Errorf("not ready within %s: %v", timeout, last)
}

// launch starts a gateway and waits until it is ready.
func (b *bench) launch(o childOpts) (*child, error) {
	c, err := startChild(b.bin, o)
	if err != nil {
		return nil, err
	}
	if _, err := c.waitReady(30 * time.Second); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// procMem is a process's memory from /proc, in KiB.
type procMem struct {
	VmRSS, RssAnon, RssFile, VmHWM, Anonymous int64
	// AnonymousErr is why smaps_rollup could not be read: the gateway is
	// not dumpable, so only root may read it.
	AnonymousErr error
}

func readProcMem(pid int) (procMem, error) {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	fields := map[string]*int64{"VmRSS": &m.VmRSS, "RssAnon": &m.RssAnon, "RssFile": &m.RssFile, "VmHWM": &m.VmHWM}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if p, known := fields[k]; ok && known {
			*p = parseKB(v)
		}
	}
	b, m.AnonymousErr = os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == "Anonymous" {
			m.Anonymous = parseKB(v)
		}
	}
	if m.VmRSS == 0 {
		return m, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

func parseKB(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// cpuTime is the user+system CPU time a process has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the line.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// childNofile is the open-files limit the child runs with.
func childNofile(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(l)
			if len(f) >= 5 {
				return f[3]
			}
		}
	}
	return "?"
}

// getJSON GETs a URL on the child; for health checks.
func getBody(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := pollClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// dataDirs makes a fresh workspace and data dir under the scratch dir.
func (b *bench) dataDirs(name string) (childOpts, error) {
	root := filepath.Join(b.tmp, name)
	if err := os.MkdirAll(filepath.Join(root, "data", "sessions"), 0o700); err != nil {
		return childOpts{}, err
	}
	if err := os.MkdirAll(filepath.Join(root, "ws"), 0o700); err != nil {
		return childOpts{}, err
	}
	return childOpts{workspace: filepath.Join(root, "ws"), dataDir: filepath.Join(root, "data")}, nil
}

func (o childOpts) sessionsDir() string { return filepath.Join(o.dataDir, "sessions") }

// sysCPU is the machine's CPU time from /proc/stat, all cores summed.
type sysCPU struct{ busy, steal, total time.Duration }

func readSysCPU() sysCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sysCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return sysCPU{}
	}
	var v [10]int64
	for i := 1; i < len(f) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseInt(f[i], 10, 64)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / 100 }
	busy := v[0] + v[1] + v[2] + v[5] + v[6]
	return sysCPU{busy: tick(busy), steal: tick(v[7]), total: tick(busy + v[3] + v[4] + v[7])}
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
