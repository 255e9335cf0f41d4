package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/miniclaw/miniclaw/internal/config"
	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/mcp"
	"github.com/miniclaw/miniclaw/internal/sandbox"
)

// mcpServers is the MCP servers of mcp.json and .mcp.json, running, with
// the helper that starts the stdio ones.
type mcpServers struct {
	*mcp.Manager
	helper *sandbox.Sandbox
}

// startMCP loads the MCP config and starts its servers in the background
// (WaitStarted waits for their first start). A config error is an error; a server that fails
// is not (it is logged, and shown by /readyz and `miniclaw mcp list`).
// With restart, servers that fail or die are restarted with backoff.
func startMCP(cfg config.Config, log *slog.Logger, tmp string, restart bool) (*mcpServers, error) {
	servers, warnings, err := mcp.LoadConfig(cfg.DataDir, cfg.Workspace, os.Getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn("MCP config: " + w)
	}
	project := filepath.Join(cfg.Workspace, mcp.WorkspaceFile)
	for _, s := range servers {
		if s.File == project && s.Status != mcp.StateDisabled {
			// bash may write the workspace: say what runs from it.
			log.Warn("MCP server configured in the workspace: it runs unconfined, and the agent's tools can edit that file", "server", s.Name, "file", project, "command", cmp.Or(s.Command, s.URL))
		}
	}
	// Mode off: MCP servers are the operator's trusted code, not confined
	// like bash, but they get its filtered environment and process-tree
	// cleanup.
	helper, err := sandbox.New(sandbox.Config{Mode: sandbox.Off, Workspace: cfg.Workspace, TempDir: tmp, Environ: os.Environ(), PassEnv: cfg.ToolEnv})
	if err != nil {
		return nil, fmt.Errorf("MCP: %w", err)
	}
	m := mcp.Start(servers, mcp.Options{
		Log: log, Environ: os.Environ(), PassEnv: cfg.ToolEnv, Helper: helper, Workspace: cfg.Workspace,
		StartTimeout: cfg.MCPStartTimeout, Restart: restart, Version: cmp.Or(version, "dev"),
	})
	return &mcpServers{Manager: m, helper: helper}, nil
}

// close stops the servers and removes what the helper set up.
func (s *mcpServers) close() {
	s.Close()
	s.helper.Close()
}

const mcpUsage = `Usage: miniclaw mcp list [--json] [flags]

Starts the MCP servers of <data dir>/mcp.json and <workspace>/.mcp.json
(as the gateway does), prints each server's name, transport and state and
the tools it offers the agent (mcp__<server>__<tool> and the first line of
its description), then stops them. A server that fails to start is shown
with its error. See docs/mcp.md for the config format.

Exit status: 0 when the config is valid (even if a server failed), 1 for a
config error, 2 for a bad command line.

Flags:
`

// runMCP is `miniclaw mcp list`.
func runMCP(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("miniclaw mcp list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the servers and their tools as JSON")
	resolve := config.Flags(fs, getenv)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := stderr
		if helpAsked(args) {
			out = stdout
		}
		fmt.Fprint(out, mcpUsage)
		fmt.Fprint(out, "  --json\tprint the servers and their tools as JSON\n\nIt also takes the gateway's flags and environment variables (workspace, data dir,\nMINI_OPENCLAW_MCP_START_TIMEOUT, MINI_OPENCLAW_TOOL_ENV): see \"miniclaw gateway --help\".\n")
	}
	if len(args) == 0 || args[0] != "list" {
		if len(args) > 0 && isHelp(args[0]) {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, mcpUsage)
			return nil
		}
		fs.Usage()
		return usageError{errors.New(`the command is "mcp list"`)}
	}
	args = args[1:]
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	tmp, err := sandbox.CreateTempDir()
	if err != nil {
		return err
	}
	defer tmp.Remove()
	// Warnings only: a failed server is in the list, with its error.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	servers, err := startMCP(cfg, log, tmp.Path, false)
	if err != nil {
		return err
	}
	defer servers.close()
	servers.WaitStarted(context.Background())
	list := listMCP(servers.Manager)
	if *asJSON {
		enc := core.NewJSONEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "No MCP servers: none in %s/%s or %s/%s.\n", cfg.DataDir, mcp.DataFile, cfg.Workspace, mcp.WorkspaceFile)
	}
	for _, s := range list {
		fmt.Fprintf(stdout, "%s (%s): %s", s.Name, s.Transport, s.State)
		if s.LastError != "" {
			fmt.Fprintf(stdout, ": %s", s.LastError)
		}
		fmt.Fprintln(stdout)
		for _, t := range s.ToolList {
			fmt.Fprintf(stdout, "  %s  %s\n", t.Name, t.Description)
		}
	}
	return nil
}

// mcpListEntry is a server as `miniclaw mcp list` shows it.
type mcpListEntry struct {
	mcp.Status
	ToolList []mcpListTool `json:"toolList"`
}

type mcpListTool struct {
	Name        string `json:"name"`
	Description string `json:"description"` // its first line
}

func listMCP(m *mcp.Manager) []mcpListEntry {
	var out []mcpListEntry
	for _, st := range m.Status() {
		e := mcpListEntry{Status: st, ToolList: []mcpListTool{}}
		for _, t := range m.ServerTools(st.Name) {
			first, _, _ := strings.Cut(strings.TrimSpace(t.Spec().Description), "\n")
			e.ToolList = append(e.ToolList, mcpListTool{Name: t.Spec().Name, Description: first})
		}
		out = append(out, e)
	}
	return out
}
