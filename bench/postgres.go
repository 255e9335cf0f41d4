package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is the PostgreSQL server the gateways measurement makes its
// databases on: the one -database-url names, or a throwaway cluster the
// bench runs itself (initdb in a folder of its own, then postgres in the
// foreground as one of the bench's children, so that every way the bench
// ends kills it).
type pgServer struct {
	admin string // URL of a role that may CREATE DATABASE
	proc  *child // the throwaway server; nil on -database-url
	dir   string // its folder
	made  []string
}

// pgServerOptions: no fsync (as the files store's FSYNC=never the bench
// runs), no Unix socket, room for three gateways' pools.
var pgServerOptions = []string{"-c", "listen_addresses=127.0.0.1", "-k", "", "-c", "fsync=off", "-c", "max_connections=200"}

// startPostgres returns the server at admin, or starts a throwaway one
// when admin is "".
func startPostgres(ctx context.Context, admin string) (*pgServer, error) {
	if admin != "" {
		return &pgServer{admin: admin}, nil
	}
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCred()
	if err != nil {
		return nil, err
	}
	// PostgreSQL refuses to run as root: as root it runs as the postgres
	// OS user, who may not enter the scratch folder (mode 0700): /tmp then.
	parent := ""
	if cred != nil {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "mcbench-pg-")
	if err != nil {
		return nil, err
	}
	p := &pgServer{dir: dir}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			p.close()
			return nil, err
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N").CombinedOutput(); err != nil {
		p.close()
		return nil, fmt.Errorf("initdb %s: %w\n%s", data, err, out)
	}
	port, err := freePort()
	if err != nil {
		p.close()
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		p.close()
		return nil, err
	}
	defer log.Close()
	cmd := run("postgres", append([]string{"-D", data, "-p", strconv.Itoa(port)}, pgServerOptions...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	p.proc = &child{cmd: cmd, exited: make(chan struct{})}
	p.proc.track()
	go func() {
		p.proc.err = cmd.Wait()
		close(p.proc.exited)
	}()
	p.admin = "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
	if err := p.waitUp(ctx, 30*time.Second); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// waitUp returns once the server accepts connections.
func (p *pgServer) waitUp(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, p.admin)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
			return fmt.Errorf("postgres not accepting connections within %s: %w\nserver log:\n%s", limit, err, log)
		}
		select {
		case <-p.proc.exited:
			log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
			return fmt.Errorf("postgres exited (%v)\nserver log:\n%s", p.proc.err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// where names the server for the notes.
func (p *pgServer) where() string {
	u, err := url.Parse(p.admin)
	if err != nil {
		return "?"
	}
	if p.proc != nil {
		return "a throwaway cluster the bench started on " + u.Host + " (fsync=off, as the files store runs with FSYNC=never here)"
	}
	return "-database-url " + u.Redacted()
}

// cpuFunc returns what the server's processes have used of the CPU so far
// (the postmaster and its children, the backends), or nil when the server
// is not the bench's own.
func (p *pgServer) cpuFunc() func() time.Duration {
	if p.proc == nil {
		return nil
	}
	return func() time.Duration { return treeCPU(p.proc.pid) }
}

// treeCPU is the user+system CPU time of process pid and its live
// children, from /proc. (PostgreSQL's backends each start a session of
// their own: the postmaster's process group does not hold them.)
func treeCPU(parent int) time.Duration {
	entries, _ := os.ReadDir("/proc")
	var d time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the parenthesised command: state, ppid.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if pid == parent || len(f) > 1 && f[1] == strconv.Itoa(parent) {
			d += cpuTime(pid)
		}
	}
	return d
}

// newDatabase creates an empty database for one run and returns its URL.
func (p *pgServer) newDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("mcbench_%d_%d", os.Getpid(), len(p.made))
	if err := p.exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	p.made = append(p.made, name)
	u, err := url.Parse(p.admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (p *pgServer) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// close drops the databases made on a -database-url server, or kills the
// throwaway one and removes its folder.
func (p *pgServer) close() {
	if p.proc == nil && p.dir == "" {
		for _, name := range p.made {
			if err := p.exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
				logf("drop database %s: %v", name, err)
			}
		}
		return
	}
	if p.proc != nil {
		p.proc.kill()
	}
	os.RemoveAll(p.dir)
}

// postgresBin is the folder of PostgreSQL's server programs: the newest
// /usr/lib/postgresql/N/bin (Debian's layout, off PATH), else initdb's on
// PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server programs (apt-get install postgresql), and no -database-url")
}

// postgresCred is who the server runs as: the bench's user, or the
// postgres OS user when the bench runs as root.
func postgresCred() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: no postgres OS user to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres OS user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort is a loopback TCP port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
