// Package gateway is miniclaw's front door: one HTTP server that serves the
// WebChat, the WebSocket protocol (README: Protocol), health probes, the sessions
// API and the OpenAI-compatible endpoint (/v1), and runs each session's
// turns in its own lane.
//
// Ownership: Server owns every goroutine it starts. Each WebSocket handler
// goroutine owns its connection's flush and ping goroutines; the hub owns the lane goroutines.
// Shutdown stops intake, lets turns finish until a deadline, interrupts the
// rest (they are persisted as interrupted) and closes every connection.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/mcp"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/turn"
)

// Options configure a Server.
type Options struct {
	Store   session.Backend
	Runtime *agent.Runtime
	Logger  *slog.Logger
	// Token, when set, is required on the WebSocket and /api.
	Token string
	// OriginPatterns are extra browser origins (host[:port] patterns, as
	// path.Match) allowed to open a WebSocket besides the gateway's own host.
	OriginPatterns []string
	// AllowedHosts are host names, besides 127.0.0.1, localhost and [::1],
	// that a request's Host may name (any port) when no Token is set.
	AllowedHosts []string
	// MaxContext bounds how many transcript lines a turn reads back (to
	// the session's latest summary) for the model; the runtime's token
	// budget decides what of them is sent.
	MaxContext int
	// ProviderWarning, when set, is shown by /readyz and the WebChat: the
	// gateway runs on a fallback provider and says what to set.
	ProviderWarning string
	// Sandbox says how bash is confined, for /readyz; SandboxWarning, when
	// set, says loudly that it is not although it was asked to be.
	Sandbox, SandboxWarning string
	// Page is the WebChat: it serves GET / and its assets under /static/.
	Page http.Handler
	// MaxQueuedBytes bounds the bytes of user messages waiting in lanes,
	// across every session and connection; past it a message is refused
	// with queue_full. 0 means DefaultMaxQueuedBytes.
	MaxQueuedBytes int
	// MinFreeDisk is the free space, in bytes, the session store's disk
	// must have for /readyz to answer ready. 0 means 64 MiB or 1% of the
	// disk, whichever is smaller.
	MinFreeDisk uint64
	// ShutdownGrace is how long Shutdown still waits, once its context is
	// done and the turns are interrupted, for turns and handlers to return
	// before it gives up on them. 0 means 2 s.
	ShutdownGrace time.Duration
	// Keepalive is how often an idle peer is pinged; one that does not
	// answer within half of it is dropped. 0 means 30 s.
	Keepalive time.Duration
	// OpenClawTick is the interval of the tick events sent to OpenClaw's
	// clients at /openclaw (hello-ok's policy.tickIntervalMs). 0 means
	// DefaultOpenClawTick.
	OpenClawTick time.Duration
	// TurnLockTimeout bounds how long a turn waits for a turn of the same
	// session run by another process on the data dir. 0 means
	// DefaultTurnLockTimeout.
	TurnLockTimeout time.Duration
	// CheckProviderKey makes the server check the provider's API key in
	// the background from New on, with one request (core.KeyChecker), when
	// the provider can: a refused key is logged as an error and makes /readyz not
	// ready; a check that could not tell is a warning. The check is
	// bounded by KeyCheckTimeout.
	CheckProviderKey bool
	// MCP, when set, reports the MCP servers' states for /readyz.
	MCP func() []mcp.Status
	// Relay, when set, carries every session's events to and from the
	// other gateways on the same session store (pgstore.Relay); nil: the
	// gateway is alone.
	Relay Relay
}

// KeyCheckTimeout bounds the startup check of the provider's key.
const KeyCheckTimeout = 5 * time.Second

// DefaultTurnLockTimeout is the default of Options.TurnLockTimeout: longer
// than any sane turn, so only a stuck process makes a turn give up.
const DefaultTurnLockTimeout = 10 * time.Minute

// DefaultMaxQueuedBytes is the default gateway-wide budget of queued user
// messages: 64 MiB, 64 full-size (1 MiB) messages, or thousands of usual ones.
const DefaultMaxQueuedBytes = 64 << 20

// Server is a gateway. Create it with New, serve it with Serve, stop it with
// Shutdown.
type Server struct {
	opt   Options
	log   *slog.Logger
	store session.Backend
	hub   *hub
	oc    *ocHub // OpenClaw's clients at /openclaw
	// ocRemoteRuns are the turns other gateways run, by session, as runs
	// of this gateway's OpenClaw clients; only the relay's listener uses it.
	ocRemoteRuns map[string]*ocRun
	turns        *turn.Player
	start        time.Time
	http         *http.Server

	interrupt context.CancelCauseFunc // cancels every turn's context

	connsMu  sync.Mutex
	conns    map[*conn]struct{}
	closing  bool // set by Shutdown: no new WebSocket handlers or connections
	nconns   atomic.Int64
	handlers sync.WaitGroup // WebSocket handlers and /v1 chat completions, which wait for turns

	// keyCheck is what the startup check of the provider's key found, for
	// /readyz; nil when there is none. The check and the relay's listener
	// run in the background, cancelled by stopBackground at Shutdown.
	keyCheck       atomic.Pointer[keyCheck]
	background     sync.WaitGroup
	stopBackground context.CancelFunc
}

// keyCheck is the state of the provider key's check: "checking", "ok",
// "rejected: …" (rejected is then set) or "unchecked: …".
type keyCheck struct {
	state    string
	rejected bool
}

// New builds a Server.
func New(opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.MaxContext <= 0 {
		opt.MaxContext = 1000
	}
	if opt.TurnLockTimeout <= 0 {
		opt.TurnLockTimeout = DefaultTurnLockTimeout
	}
	base, interrupt := context.WithCancelCause(context.Background())
	s := &Server{
		opt:          opt,
		log:          opt.Logger,
		store:        opt.Store,
		start:        time.Now(),
		interrupt:    interrupt,
		conns:        map[*conn]struct{}{},
		oc:           newOCHub(),
		ocRemoteRuns: map[string]*ocRun{},
		turns:        &turn.Player{Store: opt.Store, Runtime: opt.Runtime, Log: opt.Logger, MaxContext: opt.MaxContext, LockTimeout: opt.TurnLockTimeout},
	}
	s.hub = newHub(base, s.runTurn, cmp.Or(opt.MaxQueuedBytes, DefaultMaxQueuedBytes), opt.Relay)
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opt.Logger.Handler(), slog.LevelWarn),
	}
	var bg context.Context
	bg, s.stopBackground = context.WithCancel(context.Background())
	if kc, ok := s.keyChecker(); ok {
		s.keyCheck.Store(&keyCheck{state: "checking"})
		s.background.Go(func() { s.checkKey(bg, kc) })
	}
	if opt.Relay != nil {
		s.background.Go(func() { opt.Relay.Listen(bg, s.deliverRemote) })
	}
	return s
}

// keyChecker is the provider as a core.KeyChecker, when its key is to be
// checked.
func (s *Server) keyChecker() (core.KeyChecker, bool) {
	if !s.opt.CheckProviderKey || s.opt.Runtime == nil {
		return nil, false
	}
	kc, ok := s.opt.Runtime.Provider.(core.KeyChecker)
	return kc, ok
}

// checkKey checks the provider's key once, at startup, and records what it
// found for /readyz: a key the provider refuses is found now, not on the
// first message.
func (s *Server) checkKey(ctx context.Context, kc core.KeyChecker) {
	ctx, cancel := context.WithTimeout(ctx, KeyCheckTimeout)
	defer cancel()
	err := kc.CheckKey(ctx)
	name := s.opt.Runtime.Provider.Name()
	switch {
	case err == nil:
		s.keyCheck.Store(&keyCheck{state: "ok"})
		s.log.Info("the model provider accepted the API key", "provider", name)
	case errors.Is(err, core.ErrKeyRejected):
		s.keyCheck.Store(&keyCheck{state: "rejected: " + err.Error(), rejected: true})
		s.log.Error("the model provider refused the API key: every message will fail until it is fixed", "provider", name, "err", err)
	default:
		s.keyCheck.Store(&keyCheck{state: "unchecked: could not check the key: " + err.Error()})
		s.log.Warn("could not check the API key at startup", "provider", name, "err", err)
	}
}

// Handler is the gateway's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve accepts connections on ln until Shutdown. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the gateway: no new connections or turns; running and
// queued turns get until ctx is done to finish, then they are interrupted
// and persisted as such; finally every connection is closed with 1001.
//
// Shutdown is bounded: a turn or handler still running ShutdownGrace after
// ctx is done (one that ignores its interruption, such as a tool stuck in
// a system call) is abandoned, its goroutine left to die with the process,
// and Shutdown returns an error saying what it left running.
func (s *Server) Shutdown(ctx context.Context) error {
	s.connsMu.Lock()
	s.closing = true
	s.connsMu.Unlock()
	s.hub.close()
	s.stopBackground()

	// hard is done ShutdownGrace after ctx: the end of every wait below.
	hard, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	grace := cmp.Or(s.opt.ShutdownGrace, defaultShutdownGrace)
	defer context.AfterFunc(ctx, func() {
		s.log.Warn("shutdown deadline reached: interrupting running turns")
		s.interrupt(core.ErrInterrupted)
		time.AfterFunc(grace, giveUp)
	})()

	// Stops the listener and idle HTTP connections, and waits for active
	// ones (not WebSockets, which are hijacked) until ctx is done.
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // the deadline only bounded the wait; handlers left are abandoned
	}
	var stuck []error
	if !waitOrGiveUp(hard, &s.hub.turns) {
		stuck = append(stuck, fmt.Errorf("%d turn(s) did not stop within %s of being interrupted", s.hub.running(), grace))
	}
	s.interrupt(core.ErrInterrupted)
	s.connsMu.Lock()
	for c := range s.conns {
		c.shutdown()
	}
	s.connsMu.Unlock()
	if !waitOrGiveUp(hard, &s.handlers) {
		stuck = append(stuck, fmt.Errorf("WebSocket and /v1 handlers did not return within %s", grace))
	}
	if !waitOrGiveUp(hard, &s.background) {
		stuck = append(stuck, fmt.Errorf("the provider key's check or the relay's listener did not return within %s", grace))
	}
	if len(stuck) > 0 {
		return fmt.Errorf("shutdown incomplete: %w", errors.Join(append(stuck, err)...))
	}
	return err
}

// defaultShutdownGrace is Options.ShutdownGrace when not set.
const defaultShutdownGrace = 2 * time.Second

// waitOrGiveUp waits for wg until ctx is done; false means it gave up, and
// leaves behind a goroutine that ends when wg does (or with the process).
func waitOrGiveUp(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Connections is the number of open WebSocket connections.
func (s *Server) Connections() int64 { return s.nconns.Load() }

// enter counts a WebSocket handler or a chat completion in, for Shutdown to
// wait for; false once Shutdown has begun.
func (s *Server) enter() bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// addConn registers an upgraded connection for Shutdown to close; false once
// Shutdown has begun, when the caller must close it itself.
func (s *Server) addConn(c *conn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.nconns.Add(1)
	return true
}

func (s *Server) removeConn(c *conn) {
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
	s.nconns.Add(-1)
}
