// Package mcp makes the tools of MCP servers (Model Context Protocol) the
// agent's tools. The servers are configured in the mcpServers JSON that
// Claude Desktop, Claude Code and Cursor use (LoadConfig); those of the
// workspace run only once the operator approved them (Trust). A Manager
// starts them in parallel, in the background, keeps their tool lists
// current (tools/list_changed), restarts one that dies with backoff, and
// stops them all. Each server tool reaches the model as
// mcp__<server>__<tool>.
//
// The client side is the official Go SDK (github.com/modelcontextprotocol/go-sdk).
//
// An MCP server is the operator's trusted code: it is NOT confined like
// bash. A stdio server runs with the tools' filtered environment (the
// allowlist of sandbox.FilterEnv, plus its own "env") and, through the
// sandbox helper in mode off, with the same process-tree care: every
// process it starts is killed when it stops or when the gateway dies.
package mcp

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/miniclaw/miniclaw/internal/sandbox"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// States of a server, as /readyz and `miniclaw mcp list` show them.
const (
	StateStarting   = "starting"   // the first start is under way
	StateReady      = "ready"      // its tools are the agent's
	StateFailed     = "failed"     // a start failed (the gateway retries it with backoff)
	StateRestarting = "restarting" // it was ready and died; it is being restarted
	StateDisabled   = "disabled"   // "disabled": true in the config
	StateUntrusted  = "untrusted"  // a workspace server the operator has not approved (Trust)
)

// Defaults of Options.
const (
	DefaultStartTimeout = 10 * time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 30 * time.Second
)

// Options configure a Manager.
type Options struct {
	Log *slog.Logger
	// Environ is the gateway's environment, as os.Environ returns it, and
	// PassEnv the variables of it passed to stdio servers besides the
	// tools' allowlist (MINI_OPENCLAW_TOOL_ENV), as for bash.
	Environ, PassEnv []string
	// Helper starts stdio servers through the sandbox helper, which kills
	// every process a server started when it stops; it must be a sandbox
	// of mode off (MCP servers are not confined). nil runs them directly
	// in a process group of their own, killed as a whole when they stop.
	Helper *sandbox.Sandbox
	// Workspace is where stdio servers run when they name no cwd.
	Workspace string
	// StartTimeout bounds one start: spawn or connect, initialize and
	// the first tools/list. 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// Restart restarts a server that failed to start or died, after a
	// backoff from MinBackoff doubling to MaxBackoff (0: 1 s and 30 s).
	// Without it a server stays failed (`miniclaw mcp list`).
	Restart                bool
	MinBackoff, MaxBackoff time.Duration
	// Version is miniclaw's, sent in initialize.
	Version string
	// Transport, when set, replaces the transport a server's config
	// describes; tests connect servers in memory with it.
	Transport func(s Server) (sdk.Transport, error)
}

func (o Options) startTimeout() time.Duration {
	if o.StartTimeout > 0 {
		return o.StartTimeout
	}
	return DefaultStartTimeout
}

func (o Options) backoff() (lo, hi time.Duration) {
	lo, hi = o.MinBackoff, o.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	return lo, max(lo, hi)
}

// Status is a server's state for /readyz and `miniclaw mcp list`.
type Status struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	State     string `json:"state"`
	Tools     int    `json:"tools"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"lastError,omitempty"`
}

// Manager runs the configured servers and lists their tools. Its methods
// are safe for concurrent use.
type Manager struct {
	opts    Options
	log     *slog.Logger
	servers []*server
	stop    context.CancelFunc
	wg      sync.WaitGroup // the servers' supervisors

	mu      sync.Mutex
	tools   []tools.Tool  // every ready server's tools, by name
	changed chan struct{} // closed and replaced when a state or tool list changes
}

// Start starts every server whose Status is "" (not disabled, not
// untrusted), each in its own
// goroutine, and returns at once: a server is "starting" until its first
// start ends, and its tools are offered from when it is ready (WaitStarted
// waits for that). A server that fails is logged and shown in Status; it
// never stops the others. Close stops them.
func Start(servers []Server, opts Options) *Manager {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	m := &Manager{opts: opts, log: log, stop: stop, changed: make(chan struct{})}
	for _, cfg := range servers {
		s := &server{m: m, cfg: cfg, state: cmp.Or(cfg.Status, StateStarting)}
		m.servers = append(m.servers, s)
	}
	for _, s := range m.servers {
		if s.cfg.Status == "" {
			m.wg.Go(func() { s.supervise(ctx) })
		}
	}
	return m
}

// WaitStarted returns once every server is ready or failed its first
// start (each start is bounded by StartTimeout), or ctx is done.
func (m *Manager) WaitStarted(ctx context.Context) error {
	return m.waitFor(ctx, func() bool {
		for _, s := range m.servers {
			if s.state == StateStarting {
				return false
			}
		}
		return true
	})
}

// Close stops every server (stdio ones get their stdin closed, then
// SIGTERM, then SIGKILL, and nothing they started survives) and returns
// when they are gone.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

// Tools returns the tools of the servers that are ready now. It
// implements tools.Source.
func (m *Manager) Tools() []tools.Tool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tools
}

// Status returns each configured server's state, by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.servers))
	for _, s := range m.servers {
		out = append(out, Status{Name: s.cfg.Name, Transport: s.cfg.Type, State: s.state, Tools: len(s.tools), Restarts: s.restarts, LastError: s.lastErr})
	}
	return out
}

// ServerTools returns the tools a server offers now (none unless ready).
func (m *Manager) ServerTools(name string) []Tool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.servers {
		if s.cfg.Name == name {
			return append([]Tool(nil), s.tools...)
		}
	}
	return nil
}

// update changes a server's state under the lock, rebuilds the tool list
// and wakes whoever waits for a change.
func (m *Manager) update(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
	m.tools = m.tools[:0:0]
	seen := map[string]string{}
	for _, s := range m.servers {
		for _, t := range s.tools {
			name := t.spec.Name
			if other, dup := seen[name]; dup {
				m.log.Warn("MCP tool left out: another server's tool has the same name", "tool", name, "server", s.cfg.Name, "kept", other)
				continue
			}
			seen[name] = s.cfg.Name
			m.tools = append(m.tools, t)
		}
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// waitFor returns once cond, checked under the lock after every change,
// holds, or ctx is done.
func (m *Manager) waitFor(ctx context.Context, cond func() bool) error {
	for {
		m.mu.Lock()
		ok, ch := cond(), m.changed
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("MCP: waiting for a server: %w", context.Cause(ctx))
		}
	}
}
