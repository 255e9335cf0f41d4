// Command bench is miniclaw's load and benchmark harness. It builds (or is
// given with -bin) the real miniclaw binary, starts it as a child process on
// loopback with the scripted echo provider, drives it over HTTP and
// WebSocket, and prints a Markdown table of results beside their targets.
//
//	go run ./bench            # full run, a few minutes on 2 cores
//	go run ./bench -quick     # about a minute
//	go run ./bench -only=load,tail
//
// Every child process is killed when its measurement ends, when the bench is
// interrupted, and when the -timeout watchdog fires; every loop is bounded
// in count and in time; the bench talks only to 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// config holds every knob of the bench. Sizes are scalable by flags; -quick
// lowers the ones the user did not set explicitly.
type config struct {
	bin   string
	quick bool
	only  map[string]bool
	dir   string
	keep  bool

	startupSessions int
	startupRuns     int

	connCounts   []int
	connSessions int
	connSettle   time.Duration

	loadSessions []int
	loadDuration time.Duration
	loadWarmup   time.Duration
	fsyncModes   []string
	think        time.Duration
	pacedSession int
	pacedThink   time.Duration
	pacedUtil    float64
	turnTimeout  time.Duration

	tailMessages int
	tailRequests int
	tailLoad     int
	tailFsync    string

	agentSessions []int
	agentRounds   int
	agentDuration time.Duration
	agentWarmup   time.Duration
	agentFsync    string

	longTurns     int
	longWindow    int
	longFiles     int
	longFileKB    int
	longSetWindow bool

	appendWorkers  []int
	appendDuration time.Duration
	appendMax      int

	databaseURL string
	gwSessions  int
	fanoutTurns int

	timeout time.Duration
}

// measurements in the order they run.
var measurements = []struct {
	name string
	run  func(context.Context, *bench) error
}{
	{"startup", measureStartup},
	{"idle", measureIdleMemory},
	{"conns", measureConnMemory},
	{"load", measureLoad},
	{"tail", measureTail},
	{"agent", measureAgent},
	{"longsession", measureLongSession},
	{"appends", measureAppends},
	{"gateways", measureGateways},
}

// row is one line of the results table.
type row struct {
	measurement, result, target, status string
}

// bench is the state shared by the measurements.
type bench struct {
	cfg  config
	tmp  string // scratch directory, removed at the end unless -keep
	bin  string // the miniclaw binary under test
	mu   sync.Mutex
	rows []row
	// notes are printed under the table: anomalies and explanations.
	notes     []string
	loadNotes []string // machine load during each measurement
	fixtures  map[int]childOpts
}

func (b *bench) add(measurement, result, target, status string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows = append(b.rows, row{measurement, result, target, status})
	logf("  %s: %s (target %s) %s", measurement, result, target, status)
}

func (b *bench) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// verdict is PASS when ok, else MISS.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	raiseNofile()

	tmp, err := os.MkdirTemp(cfg.dir, "mcbench-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	cleanup := func() {
		killAllChildren()
		if !cfg.keep {
			os.RemoveAll(tmp)
		}
	}
	defer cleanup()

	// Interrupts and the watchdog both kill the children before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		logf("bench: %v: killing child processes", s)
		cleanup()
		os.Exit(130)
	}()
	watchdog := time.AfterFunc(cfg.timeout, func() {
		logf("bench: -timeout %s reached: killing child processes", cfg.timeout)
		cleanup()
		os.Exit(3)
	})
	defer watchdog.Stop()

	b := &bench{cfg: cfg, tmp: tmp}
	if b.bin, err = buildBinary(cfg.bin, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	logf("binary: %s; scratch: %s", b.bin, tmp)

	ctx := context.Background()
	start := time.Now()
	failed := false
	for _, m := range measurements {
		if len(cfg.only) > 0 && !cfg.only[m.name] {
			continue
		}
		logf("== %s", m.name)
		t0 := time.Now()
		la0, sys0 := loadAvg(), readSysCPU()
		if err := m.run(ctx, b); err != nil {
			failed = true
			b.add(m.name, "error: "+oneLine(err.Error()), "—", "ERROR")
		}
		sys1 := readSysCPU()
		busy := 0.0
		if d := sys1.total - sys0.total; d > 0 {
			busy = 100 * float64(sys1.busy-sys0.busy) / float64(d)
		}
		b.loadNotes = append(b.loadNotes, fmt.Sprintf("%s: load average %s → %s, all-core CPU busy %.0f%% (bench and gateway included)", m.name, la0, loadAvg(), busy))
		logf("== %s done in %s", m.name, time.Since(t0).Round(time.Millisecond))
	}
	b.print(os.Stdout, time.Since(start))
	if failed {
		return 1
	}
	return 0
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.bin, "bin", "", "miniclaw binary to test (default: go build ./cmd/miniclaw into the scratch dir)")
	fs.BoolVar(&c.quick, "quick", false, "smaller sizes and shorter runs (about a minute); explicit flags still win")
	only := fs.String("only", "", "comma-separated measurements to run: startup,idle,conns,load,tail,agent,longsession,appends,gateways (default all)")
	fs.StringVar(&c.dir, "dir", "", "parent of the scratch directory (default $TMPDIR); its file system decides what fsync costs")
	fs.BoolVar(&c.keep, "keep", false, "keep the scratch directory (data dirs, child logs)")

	fs.IntVar(&c.startupSessions, "startup-sessions", 10000, "sessions on disk for the startup and idle-memory measurements")
	fs.IntVar(&c.startupRuns, "startup-runs", 5, "gateway starts per startup figure (the median is reported)")

	conns := fs.String("conns", "1000,10000", "idle WebSocket connection counts, ascending")
	fs.IntVar(&c.connSessions, "conn-sessions", 200, "sessions the idle connections are spread over (round robin)")
	fs.DurationVar(&c.connSettle, "conn-settle", time.Second, "wait before reading RSS after connecting")

	loads := fs.String("load-sessions", "100,1000", "concurrent sessions for the closed-loop load")
	fs.DurationVar(&c.loadDuration, "load-duration", 15*time.Second, "measured duration of each load run")
	fs.DurationVar(&c.loadWarmup, "load-warmup", 3*time.Second, "unmeasured warm-up before each load run")
	fsyncs := fs.String("fsync", "never,always", "MINI_OPENCLAW_FSYNC modes to run the load under")
	fs.DurationVar(&c.think, "think", 0, "closed-loop think time between a message_done and the next message (0 = saturate)")
	fs.IntVar(&c.pacedSession, "paced-sessions", 1000, "sessions of the paced (non-saturating) load run; 0 disables it")
	fs.DurationVar(&c.pacedThink, "paced-think", 0, "mean think time of the paced run (uniform 0.5x-1.5x); 0 = auto, from -paced-utilization")
	fs.Float64Var(&c.pacedUtil, "paced-utilization", 0.5, "auto think time: offer this fraction of the throughput the closed loop measured")
	fs.DurationVar(&c.turnTimeout, "turn-timeout", 30*time.Second, "longest a single turn may take before it counts as failed")

	fs.IntVar(&c.tailMessages, "tail-messages", 100000, "messages in the transcript the tail read measurement pages")
	fs.IntVar(&c.tailRequests, "tail-requests", 200, "GET /api/sessions/ID?limit=50 requests per tail figure")
	fs.IntVar(&c.tailLoad, "tail-load", 100, "closed-loop sessions running during the loaded tail read (0 = idle only)")
	fs.StringVar(&c.tailFsync, "tail-fsync", "never", "MINI_OPENCLAW_FSYNC of the tail read gateway")

	agents := fs.String("agent-sessions", "1,100", "concurrent sessions of the agent-runtime measurement")
	fs.IntVar(&c.agentRounds, "agent-tool-rounds", 3, "read_file rounds per tool turn of the agent measurement (1 to 9)")
	fs.DurationVar(&c.agentDuration, "agent-duration", 10*time.Second, "measured duration of each agent run (one per turn shape and session count)")
	fs.DurationVar(&c.agentWarmup, "agent-warmup", 2*time.Second, "unmeasured warm-up before each agent run")
	fs.StringVar(&c.agentFsync, "agent-fsync", "never", "MINI_OPENCLAW_FSYNC of the agent measurement's gateway")

	fs.IntVar(&c.longTurns, "long-turns", 200, "turns of the long session: a read of a -long-file-kb file on odd turns, a short question on even ones")
	fs.IntVar(&c.longWindow, "long-window", 100_000, "context window, in tokens, that the long session's fake Messages API enforces")
	fs.IntVar(&c.longFiles, "long-files", 5, "workspace files the long session reads in turn")
	fs.IntVar(&c.longFileKB, "long-file-kb", 100, "size of each of them, in KiB")
	fs.BoolVar(&c.longSetWindow, "long-set-window", true, "pass -long-window to the gateway as MINI_OPENCLAW_CONTEXT_WINDOW (false: the gateway keeps its default and must recover from the fake's 400s)")

	workers := fs.String("append-workers", "1,8", "goroutine counts of the in-process append measurement")
	fs.DurationVar(&c.appendDuration, "append-duration", 4*time.Second, "duration of each append run")
	fs.IntVar(&c.appendMax, "append-max", 2_000_000, "cap on appends per run")

	fs.StringVar(&c.databaseURL, "database-url", os.Getenv("MINICLAW_TEST_DATABASE_URL"), "gateways: PostgreSQL server (URL of a role that may CREATE DATABASE) to make the runs' databases on; default $MINICLAW_TEST_DATABASE_URL, else a throwaway cluster the bench starts (initdb, postgres)")
	fs.IntVar(&c.gwSessions, "gateway-sessions", 30, "gateways: closed-loop sessions of each store and gateway count (its duration and warm-up are -load-duration and -load-warmup)")
	fs.IntVar(&c.fanoutTurns, "fanout-turns", 500, "gateways: turns of the fan-out run")

	fs.DurationVar(&c.timeout, "timeout", 20*time.Minute, "hard limit on the whole bench; children are killed when it fires")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("startup-runs", func() { c.startupRuns = 3 })
		def("conns", func() { *conns = "1000,3000" })
		def("conn-settle", func() { c.connSettle = 500 * time.Millisecond })
		def("load-duration", func() { c.loadDuration = 3 * time.Second })
		def("load-warmup", func() { c.loadWarmup = time.Second })
		def("tail-requests", func() { c.tailRequests = 200 })
		def("agent-duration", func() { c.agentDuration = 3 * time.Second })
		def("agent-warmup", func() { c.agentWarmup = time.Second })
		def("append-duration", func() { c.appendDuration = time.Second })
		def("long-turns", func() { c.longTurns = 60 })
		def("fanout-turns", func() { c.fanoutTurns = 100 })
		def("timeout", func() { c.timeout = 5 * time.Minute })
	}

	var err error
	if c.connCounts, err = intList(*conns, "conns"); err != nil {
		return c, err
	}
	for i := 1; i < len(c.connCounts); i++ {
		if c.connCounts[i] <= c.connCounts[i-1] {
			return c, fmt.Errorf("-conns must be ascending: %v", c.connCounts)
		}
	}
	if c.loadSessions, err = intList(*loads, "load-sessions"); err != nil {
		return c, err
	}
	if c.agentSessions, err = intList(*agents, "agent-sessions"); err != nil {
		return c, err
	}
	if c.appendWorkers, err = intList(*workers, "append-workers"); err != nil {
		return c, err
	}
	for _, m := range strings.Split(*fsyncs, ",") {
		m = strings.TrimSpace(m)
		if m != "never" && m != "always" {
			return c, fmt.Errorf("-fsync: %q is not never or always", m)
		}
		c.fsyncModes = append(c.fsyncModes, m)
	}
	if c.tailFsync != "never" && c.tailFsync != "always" {
		return c, fmt.Errorf("-tail-fsync: %q is not never or always", c.tailFsync)
	}
	if c.agentFsync != "never" && c.agentFsync != "always" {
		return c, fmt.Errorf("-agent-fsync: %q is not never or always", c.agentFsync)
	}
	c.only = map[string]bool{}
	if *only != "" {
		known := map[string]bool{}
		for _, m := range measurements {
			known[m.name] = true
		}
		for _, n := range strings.Split(*only, ",") {
			n = strings.TrimSpace(n)
			if !known[n] {
				return c, fmt.Errorf("-only: unknown measurement %q", n)
			}
			c.only[n] = true
		}
	}
	// Every check runs; the first failure, in flag order, is the error.
	for _, err := range []error{
		countIn("startup-runs", c.startupRuns, 1, 100, ""),
		countIn("startup-sessions", c.startupSessions, 0, 1_000_000, ""),
		countIn("conn-sessions", c.connSessions, 1, 100_000, ""),
		countIn("tail-messages", c.tailMessages, 50, 10_000_000, ""),
		countIn("tail-requests", c.tailRequests, 1, 100_000, ""),
		aboveZero("load-duration", c.loadDuration, time.Hour, "1h"),
		aboveZero("paced-utilization", c.pacedUtil, 1, "1"),
		// The runtime's default MAX_TOOL_ROUNDS is 10: more rounds would
		// hit its cap instead of ending on the fake's answer.
		countIn("agent-tool-rounds", c.agentRounds, 1, 9, ""),
		aboveZero("agent-duration", c.agentDuration, time.Hour, "1h"),
		aboveZero("append-duration", c.appendDuration, time.Hour, "1h"),
		countIn("long-turns", c.longTurns, 1, 100_000, ""),
		countIn("long-window", c.longWindow, 1000, 10_000_000, " tokens"),
		countIn("long-files", c.longFiles, 1, 100, ""),
		countIn("long-file-kb", c.longFileKB, 1, 10_000, " (read_file refuses files over 10 MiB)"),
		countIn("gateway-sessions", c.gwSessions, 1, 10_000, ""),
		countIn("fanout-turns", c.fanoutTurns, fanoutWarm+1, 100_000, ""),
	} {
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

// countIn is the error of flag when v is not a count from lo to hi; unit
// follows the range in the message.
func countIn(flag string, v, lo, hi int, unit string) error {
	if v < lo || v > hi {
		return fmt.Errorf("-%s: %d to %d%s", flag, lo, hi, unit)
	}
	return nil
}

// aboveZero is the error of flag when v is not above 0 and at most hi,
// which the message says as hiText.
func aboveZero[T float64 | time.Duration](flag string, v, hi T, hiText string) error {
	if v <= 0 || v > hi {
		return fmt.Errorf("-%s: above 0, at most %s", flag, hiText)
	}
	return nil
}

func intList(s, name string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 100_000 {
			return nil, fmt.Errorf("-%s: %q is not a count from 1 to 100000", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// raiseNofile lifts the soft RLIMIT_NOFILE to the hard limit. Calling
// Setrlimit explicitly also makes children inherit the raised limit (the Go
// runtime otherwise restores the original soft limit in exec'd children).
func raiseNofile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		logf("getrlimit: %v", err)
		return
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		logf("setrlimit: %v", err)
	}
}

func nofileLimit() uint64 {
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// buildBinary returns bin when given, else builds ./cmd/miniclaw of the
// module the bench belongs to into dir.
func buildBinary(bin, dir string) (string, error) {
	if bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("-bin: %w", err)
		}
		return abs, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench from inside the miniclaw module, or pass -bin")
	}
	root := filepath.Dir(gomod)
	bin = filepath.Join(dir, "miniclaw")
	logf("building %s/cmd/miniclaw", root)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/miniclaw")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/miniclaw: %w", err)
	}
	return bin, nil
}

// goVersionOf is the output of "miniclaw version".
func goVersionOf(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func (b *bench) print(w *os.File, took time.Duration) {
	fmt.Fprintf(w, "\n## miniclaw bench results\n\n")
	fmt.Fprintf(w, "| measurement | result | target | status |\n|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.measurement, r.result, r.target, r.status)
	}
	kernel, _ := os.ReadFile("/proc/version")
	fmt.Fprintf(w, "\n### Notes\n\n")
	fmt.Fprintf(w, "- Machine: runtime.NumCPU=%d, GOMAXPROCS=%d, CPU %q, RLIMIT_NOFILE=%d\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), nofileLimit())
	fmt.Fprintf(w, "- Kernel: %s\n", strings.TrimSpace(string(kernel)))
	fmt.Fprintf(w, "- Go: bench built with %s; binary: %s\n", runtime.Version(), goVersionOf(b.bin))
	fmt.Fprintf(w, "- Scratch file system: %s (fsync cost depends on it)\n", fsType(b.tmp))
	mode := "full"
	if b.cfg.quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "- Mode: %s; whole run %s\n", mode, took.Round(time.Second))
	fmt.Fprintf(w, "- The WebSocket clients run in the bench process on the same cores as the gateway: under load they compete for CPU with it, so latencies are upper bounds of what the gateway alone would give.\n")
	fmt.Fprintf(w, "- Source: %s\n", gitState())
	fmt.Fprintf(w, "- Machine load while measuring (other work on the machine disturbs every figure): %s\n", strings.Join(b.loadNotes, "; "))
	for _, n := range b.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

// fsType names the file system holding dir.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{0xEF53: "ext4/ext3", 0x01021994: "tmpfs", 0x9123683E: "btrfs", 0x58465342: "xfs", 0x794c7630: "overlayfs", 0x6969: "nfs"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("magic 0x%x", st.Type)
}

// gitState describes the source the binary was built from.
func gitState() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	head, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	st, _ := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", "cmd", "internal", "web").Output()
	dirty := ""
	if n := strings.Count(string(st), "\n"); n > 0 {
		dirty = fmt.Sprintf(" with %d modified product files (uncommitted work was built)", n)
	}
	return "git " + strings.TrimSpace(string(head)) + dirty
}
