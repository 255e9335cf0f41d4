// Package pgcluster runs throwaway PostgreSQL clusters (initdb in a
// temporary folder, the server on a loopback port) for the tests and the
// bench, neither of which may leave a server running behind it.
package pgcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a throwaway PostgreSQL cluster in a temporary folder (data/
// and the server log), served on a loopback port by the PostgreSQL server
// binaries installed on the machine.
//
// No server may outlive the process that made it, even one killed with
// SIGKILL: a keeper shell holds the read end of a pipe whose only write end
// is hold. When hold closes (Remove does it, or the kernel when the process
// dies), the keeper stops the server and deletes the folder.
type Cluster struct {
	bin    string              // the folder holding initdb, pg_ctl and postgres
	dir    string              // the cluster's folder: data/ and log
	port   int                 // the loopback TCP port it listens on
	cred   *syscall.Credential // the postgres OS user's, when we run as root
	opts   string              // pgOptions and the caller's settings
	keeper *exec.Cmd
	hold   *os.File
}

// pgOptions are the server settings of every throwaway cluster. fsync=off:
// a cluster that an OS crash loses is simply made again; with fsync on,
// every commit waits for the disk. No Unix socket (an empty -k): clients
// connect over TCP, and a long TMPDIR would overflow the socket path.
// max_connections: a test binary's parallel tests each hold a pool or
// more, and the bench runs three gateways' pools.
const pgOptions = "-c listen_addresses=127.0.0.1 -k '' -c fsync=off -c max_connections=200"

// ErrNoPostgres is why no throwaway cluster can run here: tests skip for
// it (or fail when PostgreSQL is required); any other error fails them.
var ErrNoPostgres = errors.New("PostgreSQL cannot run here")

// Bin returns the folder of the PostgreSQL server binaries: the
// newest /usr/lib/postgresql/N/bin (Debian's layout, not on PATH), else the
// folder pg_ctl on PATH lives in.
func Bin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	for _, d := range dirs {
		if hasPostgresBinaries(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: neither /usr/lib/postgresql/*/bin nor PATH holds initdb, pg_ctl and postgres (apt-get install postgresql)", ErrNoPostgres)
}

func hasPostgresBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// postgresUser returns the credential the server runs under: nil (ours)
// unless we are root, which PostgreSQL refuses to run as; then the postgres
// OS user's, which Debian's postgresql package creates.
func postgresUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: it refuses to run as root and there is no postgres OS user to run it as (%v)", ErrNoPostgres, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// New makes a cluster (initdb) and its keeper; Start serves it with
// pgOptions followed by settings (more server options, such as
// "-c shared_buffers=16MB", or ""). The error wraps ErrNoPostgres when
// PostgreSQL cannot run here.
func New(settings string) (*Cluster, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	cred, err := postgresUser()
	if err != nil {
		return nil, err
	}
	parent := os.TempDir()
	if cred != nil {
		parent = "/tmp" // TMPDIR may be a folder only root may enter
	}
	dir, err := os.MkdirTemp(parent, "miniclaw-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgres test cluster: %w", err)
	}
	// The real path: Processes compares it with /proc/PID/cwd.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	c := &Cluster{bin: bin, dir: dir, cred: cred, opts: strings.TrimSpace(pgOptions + " " + settings)}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres test cluster: %w", err)
		}
	}
	if err := c.startKeeper(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// -N: a throwaway cluster needs no fsync of its files either.
	if out, err := c.pg("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N").CombinedOutput(); err != nil {
		c.Remove()
		return nil, fmt.Errorf("initdb %s: %w\n%s", c.data(), err, out)
	}
	return c, nil
}

// startKeeper starts the shell that tears the cluster down when hold
// closes. It runs in its own process group, so a ^C in the terminal reaches
// only the test process, whose death then closes the pipe.
func (c *Cluster) startKeeper() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("postgres test cluster: keeper pipe: %w", err)
	}
	defer r.Close()
	c.keeper = c.command("/bin/sh", "-c", `read _; "$0" stop -D "$1/data" -m immediate -w >/dev/null 2>&1; rm -rf "$1"`,
		filepath.Join(c.bin, "pg_ctl"), c.dir)
	c.keeper.Stdin = r
	c.keeper.SysProcAttr.Setpgid = true
	if err := c.keeper.Start(); err != nil {
		w.Close()
		return fmt.Errorf("postgres test cluster: keeper: %w", err)
	}
	c.hold = w
	return nil
}

// pg runs PostgreSQL's program name with args.
func (c *Cluster) pg(name string, args ...string) *exec.Cmd {
	return c.command(filepath.Join(c.bin, name), args...)
}

// command runs a program in the cluster's folder as the user the server
// runs under.
func (c *Cluster) command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// Log is the server log's path.
func (c *Cluster) Log() string { return filepath.Join(c.dir, "log") }

// Dir is the cluster's folder, where every server process works (in its
// data/ subfolder).
func (c *Cluster) Dir() string { return c.dir }

// Port is the loopback TCP port the server listens on (0 before the first
// Start).
func (c *Cluster) Port() int { return c.port }

// Start serves the cluster, on a free loopback port the first time and on
// the same one after a stop or a kill, and returns when it accepts
// connections.
func (c *Cluster) Start() error {
	if c.port == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.port = port
	}
	// -l: the server's output goes to the log, so that it holds no pipe of
	// ours open (CombinedOutput would wait for the server to end).
	out, err := c.pg("pg_ctl", "start", "-w", "-t", "60", "-D", c.data(), "-l", c.Log(),
		"-o", "-p "+strconv.Itoa(c.port)+" "+c.opts).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start on port %d: %w\n%s%s", c.port, err, out, c.logTail())
	}
	return nil
}

// Stop shuts the server down cleanly (fast mode: sessions are ended) and
// returns when every server process has ended.
func (c *Cluster) Stop() error {
	out, err := c.pg("pg_ctl", "stop", "-w", "-t", "60", "-D", c.data(), "-m", "fast").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s%s", err, out, c.logTail())
	}
	return nil
}

// Kill crashes the server: SIGKILL to the postmaster, as the OOM killer
// would. It returns when every server process has ended (backends notice
// the postmaster's death on their own), so that start may follow.
func (c *Cluster) Kill() error {
	pid, err := c.PID()
	if err != nil {
		return fmt.Errorf("kill the postgres test server: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill the postgres test server (pid %d): %w", pid, err)
	}
	// Nothing signals the end of processes that are not our children:
	// poll, within a bound.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := Processes(c.dir)
		if len(pids) == 0 {
			// The dead postmaster may stay a zombie until init reaps it,
			// and the next one would take the lock file naming it for a
			// live server's. Nothing of this cluster runs: drop the file.
			if err := os.Remove(c.lockFile()); err != nil {
				return fmt.Errorf("kill the postgres test server: %w", err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres processes %v still run 30 s after SIGKILL to the postmaster %d%s", pids, pid, c.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockFile is the running postmaster's lock file, which names its pid.
func (c *Cluster) lockFile() string { return filepath.Join(c.data(), "postmaster.pid") }

// PID is the running server's postmaster's process ID (its backends are its
// children), from its lock file.
func (c *Cluster) PID() (int, error) {
	b, err := os.ReadFile(c.lockFile())
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %q is no pid", first)
	}
	return pid, nil
}

// Remove stops the server if it runs and deletes the cluster's folder, by
// closing the keeper's pipe and waiting for the keeper.
func (c *Cluster) Remove() error {
	c.hold.Close()
	if err := c.keeper.Wait(); err != nil {
		return fmt.Errorf("remove the postgres test cluster %s: %w", c.dir, err)
	}
	return nil
}

// URL is the address of database db on the cluster, as its superuser
// postgres.
func (c *Cluster) URL(db string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.port) + "/" + db + "?sslmode=disable"
}

// logTail returns the last lines of the server log, to explain a failure.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.Log())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "\nserver log " + c.Log() + ", last lines:\n" + strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("postgres test cluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Processes returns the pids of the server processes of the cluster
// in folder dir: every PostgreSQL process works in its data folder (which
// /proc shows with " (deleted)" once the folder is gone). A zombie has no
// working folder, and counts as ended.
func Processes(dir string) []int {
	data := filepath.Join(dir, "data")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && (cwd == data || cwd == data+" (deleted)") {
			pids = append(pids, pid)
		}
	}
	return pids
}
