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
	"time"

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

// startMCP loads the MCP config and the approvals and starts the servers
// in the background (WaitStarted waits for their first start); a server
// that needs approval (see loadMCPTrust) and lacks it is not started. A
// config error is an error; a server that fails is not (it is logged, and
// shown by /readyz and `miniclaw mcp list`). With restart, servers that
// fail or die are restarted with backoff.
func startMCP(cfg config.Config, log *slog.Logger, tmp string, restart bool) (*mcpServers, error) {
	servers, warnings, err := mcp.LoadConfig(cfg.DataDir, cfg.Workspace, os.Getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn("MCP config: " + w)
	}
	trust, trustWarnings, err := loadMCPTrust(cfg, tmp)
	if err != nil {
		return nil, err
	}
	if len(servers) > 0 {
		for _, w := range trustWarnings {
			log.Warn(w)
		}
	}
	for _, s := range trust.Apply(servers) {
		// bash may have written its entry: it waits for the operator.
		log.Warn("MCP server not started: its file is one the agent's bash can write, and the operator has not approved it (run: miniclaw mcp trust "+s.Name+")", "server", s.Name, "file", s.File, "command", s.CommandLine())
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

// loadMCPTrust loads the operator's approvals for cfg's workspace. The
// agent's bash may write the workspace, so the servers of its .mcp.json
// need approval; those of the data dir's mcp.json need it too when bash
// may write the data dir (the default, <workspace>/.mini-openclaw).
// With the sandbox off bash may write anything, the approvals included:
// they protect nothing, and the data dir's servers run as the operator
// configured them. tmp is the tools' temp dir ("" when none runs). The
// warnings say what weakens the approvals.
func loadMCPTrust(cfg config.Config, tmp string) (*mcp.Trust, []string, error) {
	bash := sandbox.Config{Mode: sandbox.Mode(cfg.Sandbox), Workspace: cfg.Workspace, TempDir: tmp, Write: cfg.SandboxWrite}
	trust, err := mcp.LoadTrust(cfg.MCPTrustFile, cfg.Workspace, bash.Mode != sandbox.Off && bash.Writable(cfg.DataDir))
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	if old := filepath.Join(cfg.DataDir, mcp.TrustFile); fileExists(old) {
		warnings = append(warnings, fmt.Sprintf("%s is no longer read: approvals of MCP servers are kept in %s, out of the agent's reach; give them again with miniclaw mcp trust (and delete the old file)", old, trust.Path()))
	}
	switch {
	case bash.Mode == sandbox.Off:
		warnings = append(warnings, "the sandbox is off (MINI_OPENCLAW_SANDBOX=off): the agent's bash can write any file, the MCP approvals in "+trust.Path()+" too: they protect nothing")
	case bash.Writable(trust.Path()):
		warnings = append(warnings, "the MCP trust file "+trust.Path()+" is where the agent's bash can write (the workspace or MINI_OPENCLAW_SANDBOX_WRITE): approvals protect nothing there; set MINI_OPENCLAW_MCP_TRUST_FILE to a path out of its reach")
	}
	return trust, warnings, nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// close stops the servers and removes what the helper set up.
func (s *mcpServers) close() {
	s.Close()
	s.helper.Close()
}

const mcpUsage = `Usage:
  miniclaw mcp list [--json] [flags]           start the MCP servers, show each one's state and tools, stop them
  miniclaw mcp trust [flags] NAME... | --all   approve servers the agent could have configured to run
  miniclaw mcp untrust [flags] NAME...         withdraw their approval

list starts the MCP servers of <data dir>/mcp.json and <workspace>/.mcp.json
(as the gateway does), prints each server's name, transport and state and
the tools it offers the agent (mcp__<server>__<tool> and the first line of
its description), then stops them. A server that fails to start is shown
with its error. See docs/mcp.md for the config format.

An MCP server runs unconfined, and the agent's bash can write the
workspace: a server of <workspace>/.mcp.json runs only once approved, and
so does one of <data dir>/mcp.json when bash can write the data dir (the
default data dir, <workspace>/.mini-openclaw, or one in
MINI_OPENCLAW_SANDBOX_WRITE; not with MINI_OPENCLAW_SANDBOX=off, where
approvals protect nothing). trust records the approval of each named
server's entry as it is now (its SHA-256), for this workspace, in the
trust file (MINI_OPENCLAW_MCP_TRUST_FILE, default
~/.config/miniclaw/mcp-trust.json, out of the agent's reach); an entry
edited since is "untrusted" again. A running gateway reads the approvals
when it starts.

Exit status: 0 when the config is valid (list: even if a server failed), 1
for a config error or a NAME that cannot be (un)trusted, 2 for a bad
command line.
`

// runMCP is `miniclaw mcp list|trust|untrust`.
func runMCP(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "list":
		return runMCPList(args[1:], getenv, stdout, stderr)
	case len(args) > 0 && (args[0] == "trust" || args[0] == "untrust"):
		return runMCPTrust(args[0] == "trust", args[1:], getenv, stdout, stderr)
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprint(stdout, mcpUsage+"\nRun \"miniclaw mcp list --help\" or \"miniclaw mcp trust --help\" for their flags.\n")
		return nil
	}
	fmt.Fprint(stderr, mcpUsage)
	return usageError{errors.New(`the command is "mcp list", "mcp trust" or "mcp untrust"`)}
}

// runMCPList is `miniclaw mcp list`.
func runMCPList(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
		fmt.Fprint(out, "\nFlags of list:\n  --json\tprint the servers and their tools as JSON\n\nIt also takes the gateway's flags and environment variables (workspace, data dir,\nsandbox, MINI_OPENCLAW_MCP_START_TIMEOUT, MINI_OPENCLAW_MCP_TRUST_FILE, MINI_OPENCLAW_TOOL_ENV): see \"miniclaw gateway --help\".\n")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
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
		switch {
		case s.LastError != "":
			fmt.Fprintf(stdout, ": %s", s.LastError)
		case s.State == mcp.StateUntrusted:
			fmt.Fprintf(stdout, ": not approved to run; run: miniclaw mcp trust %s", s.Name)
		}
		fmt.Fprintln(stdout)
		for _, t := range s.ToolList {
			fmt.Fprintf(stdout, "  %s  %s\n", t.Name, t.Description)
		}
	}
	return nil
}

// runMCPTrust is `miniclaw mcp trust` (approve) and `miniclaw mcp
// untrust`: it rewrites the trust file. It takes the gateway's settings:
// the sandbox's decide which servers need approval.
func runMCPTrust(approve bool, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := map[bool]string{true: "trust", false: "untrust"}[approve]
	fs := flag.NewFlagSet("miniclaw mcp "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := config.Flags(fs, getenv)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), mcpUsage+"\nFlags of trust and untrust (the gateway's, and --all):\n")
		fs.PrintDefaults()
	}
	all := fs.Bool("all", false, "trust: approve every server that needs approval")
	if helpAsked(args) {
		fs.SetOutput(stdout)
	}
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *all && !approve:
		return usageError{errors.New("untrust takes server names, not --all")}
	case *all && len(names) > 0:
		return usageError{errors.New("give server names or --all, not both")}
	case !*all && len(names) == 0:
		return usageError{fmt.Errorf("%s needs a server NAME", cmd)}
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	trust, warnings, err := loadMCPTrust(cfg, "")
	if err != nil {
		return err
	}
	if approve {
		if err := approveServers(trust, cfg, getenv, names, stdout); err != nil {
			return err
		}
	} else {
		for _, name := range names {
			if !trust.Revoke(name) {
				return fmt.Errorf("server %q is not approved in %s", name, trust.Path())
			}
			fmt.Fprintf(stdout, "untrusted %s: it will not start\n", name)
		}
	}
	if err := trust.Save(); err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "miniclaw mcp: warning: %s\n", w)
	}
	return nil
}

// approveServers approves the named servers that need approval, or all of
// them, as configured now.
func approveServers(trust *mcp.Trust, cfg config.Config, getenv func(string) string, names []string, stdout io.Writer) error {
	servers, _, err := mcp.LoadConfig(cfg.DataDir, cfg.Workspace, getenv)
	if err != nil {
		return err
	}
	project := filepath.Join(cfg.Workspace, mcp.WorkspaceFile)
	byName := map[string]mcp.Server{}
	for _, s := range servers {
		byName[s.Name] = s
		if len(names) == 0 && trust.NeedsApproval(s) {
			names = append(names, s.Name) // --all
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no servers to trust in %s", project)
	}
	for _, name := range names {
		s, ok := byName[name]
		switch {
		case !ok:
			return fmt.Errorf("no server %q in %s", name, project)
		case !trust.NeedsApproval(s):
			return fmt.Errorf("server %q is configured in %s, the operator's file, out of the agent's reach: it needs no approval", name, s.File)
		}
		trust.Approve(s, time.Now())
		fmt.Fprintf(stdout, "trusted %s (%s): %s\n", name, s.Type, s.CommandLine())
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
