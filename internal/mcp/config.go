package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Config file names: the operator's servers in the data dir, the project's
// in the workspace (Claude Code's project file).
const (
	DataFile      = "mcp.json"
	WorkspaceFile = ".mcp.json"
)

// Transports a server may use.
const (
	Stdio = "stdio"
	HTTP  = "http"
)

// maxConfigBytes bounds a config file: it is a list of commands, not data.
const maxConfigBytes = 1 << 20

// Server is one configured MCP server, its ${VAR}s expanded.
type Server struct {
	Name   string // the key in mcpServers
	File   string // the file that configured it
	Type   string // Stdio or HTTP
	Status string // "", StateDisabled or StateUntrusted (not started)

	// Project: the server is the workspace's (.mcp.json), which the
	// agent can write; it runs only once approved (Trust).
	Project bool
	// Digest is the SHA-256 of the entry as written (see digest): what
	// an approval approves.
	Digest string

	// stdio
	Command string
	Args    []string
	Env     []string // NAME=value, sorted by name
	Cwd     string   // absolute; "" runs in the workspace

	// http
	URL     string
	Headers map[string]string
}

// rawServer is a server as the file writes it. Every field is a pointer or
// a map so a field that does not belong to the server's type can be named.
type rawServer struct {
	Type     *string           `json:"type"`
	Command  *string           `json:"command"`
	Args     []string          `json:"args"`
	Env      map[string]string `json:"env"`
	Cwd      *string           `json:"cwd"`
	URL      *string           `json:"url"`
	Headers  map[string]string `json:"headers"`
	Disabled bool              `json:"disabled"`
}

// serverName is what a server may be called: its name becomes part of
// tool names, which providers restrict to these characters.
var serverName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// LoadConfig reads <dataDir>/mcp.json and <workspace>/.mcp.json (each may
// be missing) and returns their servers sorted by name. A server of the
// workspace file named like one of the data dir's is left out with a
// warning: the operator's entry wins, so a project file cannot replace
// what the operator configured. getenv expands ${VAR} and ${VAR:-default}.
// Errors name the file, the server and the field.
func LoadConfig(dataDir, workspace string, getenv func(string) string) (servers []Server, warnings []string, err error) {
	byName := map[string]Server{}
	for i, path := range []string{filepath.Join(dataDir, DataFile), filepath.Join(workspace, WorkspaceFile)} {
		list, err := loadFile(path, workspace, getenv)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range list {
			s.Project = i == 1
			if prev, dup := byName[s.Name]; dup {
				warnings = append(warnings, fmt.Sprintf("%s: server %q is left out: %s configures a server of that name, which wins", s.File, s.Name, prev.File))
				continue
			}
			byName[s.Name] = s
		}
	}
	for _, s := range byName {
		servers = append(servers, s)
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].Name < servers[j].Name })
	return servers, warnings, nil
}

// loadFile reads one config file; a missing file configures nothing.
func loadFile(path, workspace string, getenv func(string) string) ([]Server, error) {
	b, cut, err := safeopen.ReadHead(path, maxConfigBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("MCP config: %w", err)
	case cut:
		return nil, fmt.Errorf("%s: over the limit of %d bytes", path, maxConfigBytes)
	}
	return ParseConfig(path, b, workspace, getenv)
}

// ParseConfig decodes a config file's bytes: {"mcpServers": {name: server}}.
// Relative cwds are resolved against the workspace.
func ParseConfig(file string, b []byte, workspace string, getenv func(string) string) ([]Server, error) {
	var top struct {
		Servers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := strictDecode(b, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if top.Servers == nil {
		return nil, fmt.Errorf(`%s: no "mcpServers" object`, file)
	}
	names := make([]string, 0, len(top.Servers))
	for name := range top.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []Server
	for _, name := range names {
		s, err := parseServer(name, top.Servers[name], workspace, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: server %q: %w", file, name, err)
		}
		s.File = file
		out = append(out, s)
	}
	return out, nil
}

func parseServer(name string, b json.RawMessage, workspace string, getenv func(string) string) (Server, error) {
	if !serverName.MatchString(name) {
		return Server{}, errors.New("the name must be 1 to 64 letters, digits, _ or - (it becomes part of tool names)")
	}
	var r rawServer
	if err := strictDecode(b, &r); err != nil {
		return Server{}, err
	}
	s := Server{Name: name, Type: Stdio, Digest: digest(r)}
	if r.Type != nil {
		s.Type = *r.Type
	}
	if r.Disabled {
		s.Status = StateDisabled
	}
	x := expander{getenv: getenv}
	switch s.Type {
	case Stdio:
		if err := only(map[string]bool{"url": r.URL != nil, "headers": r.Headers != nil}, "a stdio"); err != nil {
			return Server{}, err
		}
		if r.Command == nil || strings.TrimSpace(*r.Command) == "" {
			return Server{}, errors.New(`"command" is required for a stdio server`)
		}
		s.Command = x.expand("command", *r.Command)
		for i, a := range r.Args {
			s.Args = append(s.Args, x.expand(fmt.Sprintf("args[%d]", i), a))
		}
		for _, k := range slices.Sorted(mapKeys(r.Env)) {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return Server{}, fmt.Errorf("env: %q is not a variable name", k)
			}
			s.Env = append(s.Env, k+"="+x.expand("env."+k, r.Env[k]))
		}
		if r.Cwd != nil {
			s.Cwd = x.expand("cwd", *r.Cwd)
			if !filepath.IsAbs(s.Cwd) {
				s.Cwd = filepath.Join(workspace, s.Cwd)
			}
		}
	case HTTP:
		if err := only(map[string]bool{"command": r.Command != nil, "args": r.Args != nil, "env": r.Env != nil, "cwd": r.Cwd != nil}, "an http"); err != nil {
			return Server{}, err
		}
		if r.URL == nil || *r.URL == "" {
			return Server{}, errors.New(`"url" is required for an http server`)
		}
		s.URL = x.expand("url", *r.URL)
		if u, err := url.Parse(s.URL); x.err == nil && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return Server{}, fmt.Errorf("url: %q is not an http:// or https:// URL", s.URL)
		}
		s.Headers = map[string]string{}
		for k, v := range r.Headers {
			s.Headers[k] = x.expand("headers."+k, v)
		}
	default:
		return Server{}, fmt.Errorf(`type: %q is not supported (want "stdio" or "http")`, s.Type)
	}
	return s, x.err
}

// only refuses the fields set that belong to another transport.
func only(set map[string]bool, typ string) error {
	for _, f := range slices.Sorted(mapKeys(set)) {
		if set[f] {
			return fmt.Errorf("%q is not a field of %s server", f, typ)
		}
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// strictDecode decodes one JSON value, refusing unknown fields and
// trailing data, with errors that name the field.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg := fmt.Sprintf("must be %s, not a JSON %s", jsonType(te.Type.String()), te.Value)
			if te.Field == "" {
				return errors.New(msg)
			}
			return fmt.Errorf("%s: %s", te.Field, msg)
		}
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("unknown field %s", field)
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: data after the top-level object")
	}
	return nil
}

// jsonType names the JSON a config field's Go type takes.
func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "an object of strings"
	case strings.HasPrefix(goType, "[]"):
		return "an array of strings"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	}
	return "an object"
}

// varRef is ${NAME} or ${NAME:-default}.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expander expands ${VAR}s and keeps the first error: a variable that is
// not set and has no default.
type expander struct {
	getenv func(string) string
	err    error
}

func (x *expander) expand(field, s string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		if v := x.getenv(m[1]); v != "" {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		if x.err == nil {
			x.err = fmt.Errorf("%s: ${%s} is not set in the gateway's environment (write ${%s:-} for an empty default)", field, m[1], m[1])
		}
		return ""
	})
}
