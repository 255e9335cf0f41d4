package main

import (
	"fmt"
	"log/slog"

	"github.com/miniclaw/miniclaw/internal/agent"
	"github.com/miniclaw/miniclaw/internal/budget"
	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/memory"
	"github.com/miniclaw/miniclaw/internal/provider/anthropic"
	"github.com/miniclaw/miniclaw/internal/session"
	"github.com/miniclaw/miniclaw/internal/skills"
	"github.com/miniclaw/miniclaw/internal/tools"
)

// engine is what runs turns, built the same way for `miniclaw gateway` and
// `miniclaw agent`: the provider, the tools (bash in its sandbox, with the
// temp dir it owns), memory and skills, the session store and the agent
// runtime over them.
type engine struct {
	// warning is the notice that the provider is the offline scripted
	// one (see providerNotice); "" for a model provider.
	warning string
	store   session.Backend
	runtime *agent.Runtime
	sandbox *gatewaySandbox
	skills  int // skills indexed at startup
	ws      *tools.Workspace
	mcp     *mcpServers
}

// openEngine builds the engine of cfg. Its close releases what it holds,
// once no turn runs.
func openEngine(cfg config.Config, log *slog.Logger, gw gatewayIdentity) (*engine, error) {
	// The process holds the provider keys: keep them from its tools.
	hideEnvironment(log)
	provider, err := newProvider(cfg)
	if err != nil {
		return nil, err
	}
	e := &engine{warning: providerNotice(cfg, provider)}
	if e.ws, err = tools.OpenWorkspace(cfg.Workspace); err != nil {
		return nil, fmt.Errorf("MINI_OPENCLAW_WORKSPACE: %w", err)
	}
	if e.sandbox, err = newSandbox(cfg, log); err != nil {
		e.ws.Close()
		return nil, err
	}
	mem := &memory.Store{Workspace: cfg.Workspace, Dir: cfg.MemoryDir, Fsync: cfg.Fsync == config.FsyncAlways, Log: log}
	toolSet := tools.NewSet(append(e.ws.FileTools(), tools.Bash{Dir: e.ws.Dir(), Timeout: cfg.BashTimeout, Sandbox: e.sandbox.Sandbox})...)
	toolSet.Add(mem.Tools()...)
	// Indexed now, so a malformed skill is reported at startup, not at the first turn.
	skillIndex := skills.New(cfg.SkillsDir, cfg.Workspace, log)
	e.skills = len(skillIndex.Skills())
	if e.mcp, err = startMCP(cfg, log, e.sandbox.tmp.Path, true); err != nil {
		e.sandbox.close()
		e.ws.Close()
		return nil, err
	}
	toolSet.AddSource(e.mcp)
	e.store, err = openStore(storeOptions{db: cfg.Database, sessionsDir: cfg.SessionsDir, workspace: cfg.Workspace, fsync: cfg.Fsync == config.FsyncAlways, log: log,
		gateway: gw.id, onInterrupted: gw.interrupted})
	if err != nil {
		e.mcp.close()
		e.sandbox.close()
		e.ws.Close()
		return nil, err
	}
	e.runtime = &agent.Runtime{
		Provider: provider, Model: cfg.Model, Workspace: cfg.Workspace,
		Tools: toolSet, MaxToolRounds: cfg.MaxToolRounds,
		Knowledge: knowledge{mem, skillIndex},
		AfterTurn: mem.RecordTurn,
		// The reply's room is the Anthropic provider's max_tokens (the
		// OpenAI one sends none: the same room is kept), at most a
		// quarter of a small window.
		ContextWindow: int64(cfg.ContextWindow), ReplyTokens: min(anthropic.DefaultMaxTokens, int64(cfg.ContextWindow)/4),
		Sizes: budget.NewCalibration(),
		// Compact before a history outgrows what a turn reads back.
		MaxHistory: cfg.MaxContext * 3 / 4,
	}
	return e, nil
}

// close writes the store's pending metas and index snapshot, stops the
// MCP servers, removes the sandbox's cgroup and temp dir, and closes the
// workspace.
func (e *engine) close() {
	e.store.Close()
	e.mcp.close()
	e.sandbox.close()
	e.ws.Close()
}
