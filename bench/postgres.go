package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/miniclaw/miniclaw/internal/pgcluster"
)

// pgServer is the PostgreSQL server the gateways measurement makes its
// databases on: the one -database-url names, or a throwaway cluster the
// bench runs itself (pgcluster's: no server outlives the bench, however it
// ends).
type pgServer struct {
	admin string             // URL of a role that may CREATE DATABASE
	c     *pgcluster.Cluster // the throwaway server; nil on -database-url
	pid   int                // its postmaster's
	made  []string
}

// startPostgres returns the server at admin, or starts a throwaway one
// when admin is "".
func startPostgres(admin string) (*pgServer, error) {
	if admin != "" {
		return &pgServer{admin: admin}, nil
	}
	c, err := pgcluster.New("")
	if err != nil {
		return nil, fmt.Errorf("%w; and no -database-url", err)
	}
	p := &pgServer{c: c}
	err = c.Start()
	if err == nil {
		p.pid, err = c.PID()
	}
	if err != nil {
		p.close()
		return nil, err
	}
	p.admin = c.URL("postgres") // the port is chosen by the first Start
	return p, nil
}

// where names the server for the notes.
func (p *pgServer) where() string {
	u, err := url.Parse(p.admin)
	if err != nil {
		return "?"
	}
	if p.c != nil {
		return "a throwaway cluster the bench started on " + u.Host + " (fsync=off, as the files store runs with FSYNC=never here)"
	}
	return "-database-url " + u.Redacted()
}

// cpuFunc returns what the server's processes have used of the CPU so far
// (the postmaster and its children, the backends), or nil when the server
// is not the bench's own.
func (p *pgServer) cpuFunc() func() time.Duration {
	if p.c == nil {
		return nil
	}
	return func() time.Duration { return treeCPU(p.pid) }
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

// close drops the databases made on a -database-url server, or stops the
// throwaway one and removes its folder.
func (p *pgServer) close() {
	if p.c != nil {
		if err := p.c.Remove(); err != nil {
			logf("%v", err)
		}
		return
	}
	for _, name := range p.made {
		if err := p.exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			logf("drop database %s: %v", name, err)
		}
	}
}
