package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miniclaw/miniclaw/internal/chatclient"
	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/gateway"
	"github.com/miniclaw/miniclaw/internal/memory"
	"github.com/miniclaw/miniclaw/internal/pgstore"
	"github.com/miniclaw/miniclaw/internal/provider/anthropic"
	"github.com/miniclaw/miniclaw/internal/provider/openai"
	"github.com/miniclaw/miniclaw/internal/provider/scripted"
	"github.com/miniclaw/miniclaw/internal/sandbox"
	"github.com/miniclaw/miniclaw/internal/skills"
	"github.com/miniclaw/miniclaw/web"
	"golang.org/x/sys/unix"
)

// providerHint tells what to set when no provider was chosen and no key was
// found.
const providerHint = "Set ANTHROPIC_API_KEY to talk to Claude, or MINI_OPENCLAW_PROVIDER=openai with OPENAI_BASE_URL (and OPENAI_API_KEY) for an OpenAI-compatible server such as Ollama."

// providerNotice is what the log, /readyz and the WebChat say about the
// offline scripted provider: which script it plays, or that it echoes when
// it was fallen back to; "" for a provider that calls a model, and for the
// echo chosen on purpose.
func providerNotice(cfg config.Config, p core.Provider) string {
	sp, ok := p.(*scripted.Provider)
	if !ok {
		return ""
	}
	what := "which echoes your messages"
	if cfg.Script != "" {
		what = fmt.Sprintf("playing the script %s (%s) offline: no model is called", cfg.Script, chatclient.Count(sp.Turns(), "model turn"))
	}
	switch {
	case cfg.ProviderDefaulted:
		return "No model provider is configured: running on the scripted provider, " + what + ". " + providerHint
	case cfg.Script != "":
		return "Running on the scripted provider, " + what + "."
	}
	return ""
}

func runGateway(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(getenv, args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	var served atomic.Pointer[gateway.Server]
	gw := gatewayIdentity{id: pgstore.NewGatewayID(), interrupted: func(id string, m core.Message) {
		if srv := served.Load(); srv != nil {
			srv.TurnInterrupted(id, m)
		}
	}}
	e, err := openEngine(cfg, log, gw)
	if err != nil {
		return err
	}
	defer e.close() // after the server: writes pending metas and the index snapshot
	// On PostgreSQL, the other gateways' events reach this one's clients
	// (and this one's reach theirs) through the relay; it is closed after
	// the server, so the ends of the last turns go out.
	var relay gateway.Relay
	if cfg.Database.URL != "" {
		rctx, cancel := context.WithTimeout(ctx, databaseOpenTimeout)
		r, err := pgstore.NewRelay(rctx, cfg.Database.URL, pgstore.RelayOptions{Gateway: gw.id, Logger: log})
		cancel()
		if err != nil {
			return fmt.Errorf("event relay (MINI_OPENCLAW_DATABASE_URL): %w", err)
		}
		defer r.Close()
		relay = r
	}
	// The list follows what `miniclaw sessions` and other processes do in
	// the sessions directory. Without the watch (no inotify instance left)
	// it still answers 404 for a session archived elsewhere, on first use.
	if err := e.store.Watch(); err != nil {
		log.Warn("sessions archived, forked or renamed by other processes show in the list only once used", "err", err)
	}
	switch {
	case cfg.ProviderDefaulted:
		log.Warn("!!! " + e.warning)
	case e.warning != "":
		log.Info(e.warning)
	}
	model := cfg.Model
	if cfg.Provider == config.ProviderScripted {
		model = "(not used)" // the default names a Claude model the script never calls
	}
	srv := gateway.New(gateway.Options{
		Store:           e.store,
		Runtime:         e.runtime,
		Logger:          log,
		Token:           cfg.Token,
		OriginPatterns:  cfg.AllowedOrigins,
		AllowedHosts:    cfg.AllowedHosts,
		MaxContext:      cfg.MaxContext,
		ProviderWarning: e.warning,
		Sandbox:         e.sandbox.Status().String(),
		SandboxWarning:  e.sandbox.Status().Warning(),
		Page:            web.Handler(),
		TurnLockTimeout: cfg.TurnLockTimeout,
		// A refused key is found now (one request, in the background),
		// not on the first message.
		CheckProviderKey: true,
		MCP:              e.mcp.Status,
		Relay:            relay,
	})
	served.Store(srv)
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s (MINI_OPENCLAW_HOST/MINI_OPENCLAW_PORT): %w", cfg.Addr(), err)
	}
	log.Info("miniclaw gateway listening",
		"url", "http://"+ln.Addr().String(), "provider", e.runtime.Provider.Name(), "model", model,
		"workspace", cfg.Workspace, "data", cfg.DataDir, "store", storeKind(cfg.Database), "storeAt", e.store.Where(), "sessions", e.store.Len(), "skills", e.skills, "auth", cfg.Token != "",
		"context", fmt.Sprintf("context window %d tokens (%s)", cfg.ContextWindow, cfg.ContextWindowSource))

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// Loading a large session index leaves garbage behind (a few MB for
	// 10,000 sessions); hand it back to the OS now, while the server already
	// answers (a mostly concurrent GC), rather than keep it resident until
	// the scavenger gets to it. A small index is not worth the GC.
	if e.store.Len() >= 1000 {
		debug.FreeOSMemory()
	}
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for running turns", "deadline", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	err = errors.Join(srv.Shutdown(sctx), <-serveErr)
	if err != nil {
		// Shutdown is bounded: what it could not stop is abandoned, and
		// the process exits anyway.
		log.Error("gateway stopped with work left running; exiting anyway", "ms", time.Since(start).Milliseconds(), "err", err)
		return err
	}
	log.Info("gateway stopped", "ms", time.Since(start).Milliseconds())
	return nil
}

// hideEnvironment makes the gateway not dumpable, so that no process of its
// user (a tool with the sandbox off or without Landlock, anything else the
// user runs) can read its environment or memory, where its API keys and
// token are, through /proc/<pid>/environ, /proc/<pid>/mem or ptrace. Root
// still can (CAP_SYS_PTRACE). The price: no core dump, and debuggers,
// strace, perf and /proc/<pid>/{fd,smaps,io} on the gateway need root.
func hideEnvironment(log *slog.Logger) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("PR_SET_DUMPABLE: the gateway's environment stays readable by its user's processes", "err", err)
	}
}

// gatewaySandbox is the tools' sandbox with the per-process temp dir it
// owns (the tools' TMPDIR, removed when the gateway or the one-shot agent
// stops).
type gatewaySandbox struct {
	*sandbox.Sandbox
	tmp *sandbox.TempDir
	log *slog.Logger
}

func newSandbox(cfg config.Config, log *slog.Logger) (*gatewaySandbox, error) {
	tmp, err := sandbox.CreateTempDir()
	if err != nil {
		return nil, err
	}
	sbCfg := sandbox.Config{
		Mode:      sandbox.Mode(cfg.Sandbox),
		Workspace: cfg.Workspace,
		TempDir:   tmp.Path,
		Read:      cfg.SandboxRead,
		Write:     cfg.SandboxWrite,
		Environ:   os.Environ(),
		PassEnv:   cfg.ToolEnv,
	}
	sb, err := sandbox.New(sbCfg)
	if err != nil {
		tmp.Remove()
		return nil, fmt.Errorf("MINI_OPENCLAW_SANDBOX: %w", err)
	}
	st := sb.Status()
	if w := st.Warning(); w != "" {
		log.Warn("!!! " + w)
	}
	log.Info("bash sandbox", "sandbox", st.String(), "tmpdir", tmp.Path, "toolEnv", strings.Join(cfg.ToolEnv, ","))
	if st.Confined() && sbCfg.Writable(cfg.DataDir) {
		// Landlock only grants access: it cannot take the data dir back
		// out of the writable workspace.
		log.Info("the data dir is where bash can write: it can read and write the transcripts and memory files, and mcp.json (whose servers therefore run only once approved: miniclaw mcp trust); set MINI_OPENCLAW_DATA_DIR outside the workspace to keep them out of its reach", "data", cfg.DataDir)
	}
	return &gatewaySandbox{Sandbox: sb, tmp: tmp, log: log}, nil
}

// close removes the gateway's cgroup and the temp dir, once no tool runs.
func (s *gatewaySandbox) close() {
	if err := errors.Join(s.Sandbox.Close(), s.tmp.Remove()); err != nil {
		s.log.Warn("bash sandbox cleanup", "err", err)
	}
}

// knowledge is the prompt's memory and skills layer (agent.Knowledge).
type knowledge struct {
	*memory.Store
	*skills.Index
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	if cfg.LogJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func newProvider(cfg config.Config) (core.Provider, error) {
	switch cfg.Provider {
	case config.ProviderScripted:
		if cfg.Script != "" {
			return scripted.Load(cfg.Script)
		}
		return scripted.Echo(), nil
	case config.ProviderAnthropic:
		return anthropic.New(anthropic.Options{APIKey: cfg.AnthropicAPIKey, BaseURL: cfg.AnthropicBaseURL}), nil
	case config.ProviderOpenAI:
		return openai.New(openai.Options{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL}), nil
	}
	return nil, fmt.Errorf("MINI_OPENCLAW_PROVIDER=%s: unknown provider", cfg.Provider)
}

// gatewayIdentity is what the session store knows of this gateway: the ID
// its turns and relay notices carry, and whom to tell of a dead gateway's
// turn it marked interrupted. `miniclaw agent` has none.
type gatewayIdentity struct {
	id          string
	interrupted func(id string, m core.Message)
}
