package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// TrustFile is the name of the operator's approvals file: in the user's
// config dir by default (MINI_OPENCLAW_MCP_TRUST_FILE), out of the
// workspace and the data dir. An MCP server runs unconfined, and the
// agent's bash may write <workspace>/.mcp.json (and the data dir's
// mcp.json when the data dir lies in what bash may write): a server from
// a file the agent could have written runs only once the operator
// approved that exact entry (`miniclaw mcp trust`), as Claude Code does
// for project servers. Approvals are kept per workspace, so one file
// serves several.
const TrustFile = "mcp-trust.json"

// Approval is the operator's approval of one server.
type Approval struct {
	// SHA256 is the entry's Digest when it was approved: an edited entry
	// is no longer approved.
	SHA256 string `json:"sha256"`
	// Where the entry was, and when, for whoever reads the file. (Not
	// the command: once expanded, it may hold a ${VAR}'s secret.)
	File       string    `json:"file"`
	ApprovedAt time.Time `json:"approvedAt"`
}

// Trust is the approvals of a trust file, by absolute workspace path and
// server name, applied to one workspace.
type Trust struct {
	path         string
	workspace    string
	dataWritable bool
	Workspaces   map[string]map[string]Approval `json:"workspaces"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadTrust reads the trust file at path, for the servers of workspace;
// a missing file approves nothing. dataWritable says the agent's bash may
// write the data dir, so the servers of its mcp.json need approval too. A
// file that does not decode, or holds an approval that is not one, is an
// error naming the file.
func LoadTrust(path, workspace string, dataWritable bool) (*Trust, error) {
	if path == "" {
		return nil, errors.New("MCP approvals: there is no user config dir ($XDG_CONFIG_HOME or $HOME) to keep them in: set MINI_OPENCLAW_MCP_TRUST_FILE")
	}
	t := &Trust{path: path, workspace: workspace, dataWritable: dataWritable}
	b, cut, err := safeopen.ReadHead(t.path, maxConfigBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.Workspaces = map[string]map[string]Approval{}
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("MCP approvals: %w", err)
	case cut:
		return nil, fmt.Errorf("%s: over the limit of %d bytes", t.path, maxConfigBytes)
	}
	if err := strictDecode(b, t); err != nil {
		return nil, fmt.Errorf("%s: %w", t.path, err)
	}
	if t.Workspaces == nil {
		return nil, fmt.Errorf(`%s: no "workspaces" object`, t.path)
	}
	for ws, servers := range t.Workspaces {
		if !filepath.IsAbs(ws) {
			return nil, fmt.Errorf("%s: workspace %q is not an absolute path", t.path, ws)
		}
		for name, a := range servers {
			if !serverName.MatchString(name) {
				return nil, fmt.Errorf("%s: workspace %s: %q is not a server name", t.path, ws, name)
			}
			if !sha256Hex.MatchString(a.SHA256) {
				return nil, fmt.Errorf("%s: workspace %s: server %q: sha256: %q is not a SHA-256 in hex", t.path, ws, name, a.SHA256)
			}
		}
	}
	return t, nil
}

// Path is the trust file's path.
func (t *Trust) Path() string { return t.path }

// NeedsApproval reports whether s comes from a file the agent's bash may
// have written: the workspace's .mcp.json, or the data dir's mcp.json
// when bash may write the data dir.
func (t *Trust) NeedsApproval(s Server) bool { return s.Project || t.dataWritable }

// Trusted reports whether s may run: it needs no approval, or this very
// entry was approved for this workspace.
func (t *Trust) Trusted(s Server) bool {
	return !t.NeedsApproval(s) || t.Workspaces[t.workspace][s.Name].SHA256 == s.Digest
}

// Apply marks the servers that are not approved (and not disabled)
// StateUntrusted, so they are not started, and returns them.
func (t *Trust) Apply(servers []Server) (untrusted []Server) {
	for i, s := range servers {
		if s.Status == "" && !t.Trusted(s) {
			servers[i].Status = StateUntrusted
			untrusted = append(untrusted, servers[i])
		}
	}
	return untrusted
}

// Approve approves s, for this workspace, as it is configured now.
func (t *Trust) Approve(s Server, now time.Time) {
	if t.Workspaces[t.workspace] == nil {
		t.Workspaces[t.workspace] = map[string]Approval{}
	}
	t.Workspaces[t.workspace][s.Name] = Approval{SHA256: s.Digest, File: s.File, ApprovedAt: now.UTC()}
}

// Revoke withdraws the approval of the server name in this workspace; it
// reports whether there was one.
func (t *Trust) Revoke(name string) bool {
	_, ok := t.Workspaces[t.workspace][name]
	delete(t.Workspaces[t.workspace], name)
	if len(t.Workspaces[t.workspace]) == 0 {
		delete(t.Workspaces, t.workspace)
	}
	return ok
}

// Save writes the file through a temp file, fsynced, and a rename: a
// reader, or a crash, sees the old approvals or the new, never a mix.
func (t *Trust) Save() error {
	b, err := core.MarshalJSONIndent(t, "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", t.path, err)
	}
	dir := filepath.Dir(t.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("MCP approvals: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+TrustFile+".tmp")
	if err != nil {
		return fmt.Errorf("MCP approvals: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("MCP approvals: %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), t.path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("MCP approvals: %w", err)
	}
	return nil
}

// digest is the SHA-256 of what an entry runs, as the file writes it
// (before ${VAR} expansion): its type, command, args, env and cwd, or url
// and headers. "disabled" is left out: turning a server off and on again
// does not change what it runs.
func digest(r rawServer) string {
	r.Disabled = false
	b, err := core.MarshalJSON(r) // maps in key order: the same entry, the same bytes
	if err != nil {
		panic(fmt.Sprintf("MCP: a decoded config entry does not encode: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CommandLine is what the server runs, for logs and approvals: its
// command and args, or its url.
func (s Server) CommandLine() string {
	if s.Type == HTTP {
		return s.URL
	}
	return strings.Join(slices.Concat([]string{s.Command}, s.Args), " ")
}
