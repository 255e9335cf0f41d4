package mcp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"bad JSON", `{"mcpServers": {`, `f.json: invalid JSON: unexpected EOF`},
		{"not an object", `[]`, `f.json: must be an object, not a JSON array`},
		{"no mcpServers", `{}`, `f.json: no "mcpServers" object`},
		{"unknown top-level field", `{"servers": {}}`, `f.json: unknown field "servers"`},
		{"unknown type", `{"mcpServers": {"a": {"type": "sse", "url": "http://x"}}}`, `f.json: server "a": type: "sse" is not supported (want "stdio" or "http")`},
		{"missing command", `{"mcpServers": {"a": {"args": ["x"]}}}`, `f.json: server "a": "command" is required for a stdio server`},
		{"missing url", `{"mcpServers": {"a": {"type": "http"}}}`, `f.json: server "a": "url" is required for an http server`},
		{"bad url", `{"mcpServers": {"a": {"type": "http", "url": "ftp://x"}}}`, `f.json: server "a": url: "ftp://x" is not an http:// or https:// URL`},
		{"unknown field", `{"mcpServers": {"a": {"command": "x", "cmd": "y"}}}`, `f.json: server "a": unknown field "cmd"`},
		{"url on stdio", `{"mcpServers": {"a": {"command": "x", "url": "http://x"}}}`, `f.json: server "a": "url" is not a field of a stdio server`},
		{"command on http", `{"mcpServers": {"a": {"type": "http", "url": "http://x", "command": "x"}}}`, `f.json: server "a": "command" is not a field of an http server`},
		{"args not strings", `{"mcpServers": {"a": {"command": "x", "args": [1]}}}`, `f.json: server "a": args: must be a string, not a JSON number`},
		{"env not an object", `{"mcpServers": {"a": {"command": "x", "env": ["A=1"]}}}`, `f.json: server "a": env: must be an object of strings, not a JSON array`},
		{"bad name", `{"mcpServers": {"a b": {"command": "x"}}}`, `f.json: server "a b": the name must be 1 to 64 letters, digits, _ or - (it becomes part of tool names)`},
		{"unset variable", `{"mcpServers": {"a": {"command": "x", "env": {"TOKEN": "${GH_TOKEN}"}}}}`, `f.json: server "a": env.TOKEN: ${GH_TOKEN} is not set in the gateway's environment (write ${GH_TOKEN:-} for an empty default)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("f.json", []byte(tc.json), "/ws", env(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v\nwant     %s", err, tc.want)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	data, ws := t.TempDir(), t.TempDir()
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(data, DataFile), `{"mcpServers": {
		"fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}/notes"], "env": {"B": "${MISSING:-dflt}", "A": "x${HOME}y"}, "cwd": "sub"},
		"api": {"type": "http", "url": "https://${HOST}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}, "disabled": true}
	}}`)
	write(filepath.Join(ws, WorkspaceFile), `{"mcpServers": {
		"fs": {"command": "evil"},
		"proj": {"type": "stdio", "command": "./server"}
	}}`)
	servers, warnings, err := LoadConfig(data, ws, env(map[string]string{"HOME": "/home/u", "HOST": "example.com", "TOKEN": "t0k"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{
		{Name: "api", File: filepath.Join(data, DataFile), Type: HTTP, Status: StateDisabled, URL: "https://example.com/mcp", Headers: map[string]string{"Authorization": "Bearer t0k"}},
		{Name: "fs", File: filepath.Join(data, DataFile), Type: Stdio, Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/home/u/notes"}, Env: []string{"A=x/home/uy", "B=dflt"}, Cwd: filepath.Join(ws, "sub")},
		{Name: "proj", File: filepath.Join(ws, WorkspaceFile), Type: Stdio, Command: "./server", Project: true},
	}
	for i := range servers {
		if len(servers[i].Digest) != 64 {
			t.Errorf("%s: digest %q", servers[i].Name, servers[i].Digest)
		}
		servers[i].Digest = "" // TestTrustFollowsTheEntry tests it
	}
	if !reflect.DeepEqual(servers, want) {
		t.Errorf("servers\n%+v\nwant\n%+v", servers, want)
	}
	wantWarn := []string{filepath.Join(ws, WorkspaceFile) + `: server "fs" is left out: ` + filepath.Join(data, DataFile) + ` configures a server of that name, which wins`}
	if !reflect.DeepEqual(warnings, wantWarn) {
		t.Errorf("warnings %q\nwant %q", warnings, wantWarn)
	}
}

func TestLoadConfigMissingFilesConfigureNothing(t *testing.T) {
	servers, warnings, err := LoadConfig(t.TempDir(), t.TempDir(), env(nil))
	if err != nil || servers != nil || warnings != nil {
		t.Errorf("%v %v %v", servers, warnings, err)
	}
}
