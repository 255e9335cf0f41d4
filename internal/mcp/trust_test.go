package mcp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// trustDirs is a data dir with an operator's server "ops", a workspace
// whose .mcp.json configures "proj" as entry, and a trust file's path
// outside both.
func trustDirs(t *testing.T, entry string) (data, ws, trustFile string) {
	t.Helper()
	data, ws, trustFile = t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "config", TrustFile)
	if err := os.WriteFile(filepath.Join(data, DataFile), []byte(`{"mcpServers": {"ops": {"command": "ops-server"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	setEntry(t, ws, entry)
	return data, ws, trustFile
}

func setEntry(t *testing.T, ws, entry string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(ws, WorkspaceFile), []byte(`{"mcpServers": {"proj": `+entry+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
}

// untrustedNames loads the config and the approvals afresh, as a start
// does, and returns the servers Apply holds back.
func untrustedNames(t *testing.T, data, ws, trustFile string, dataWritable bool, vars map[string]string) []string {
	t.Helper()
	servers, _, err := LoadConfig(data, ws, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := LoadTrust(trustFile, ws, dataWritable)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, s := range trust.Apply(servers) {
		names = append(names, s.Name+"="+s.Status)
	}
	return names
}

// A workspace server runs once its entry is approved, and an edit of
// what it runs takes the approval back; the operator's servers need none.
func TestTrustFollowsTheEntry(t *testing.T) {
	data, ws, trustFile := trustDirs(t, `{"command": "./server", "args": ["${DIR}"]}`)
	vars := map[string]string{"DIR": "/a"}
	if got := untrustedNames(t, data, ws, trustFile, false, vars); !reflect.DeepEqual(got, []string{"proj=untrusted"}) {
		t.Fatalf("before any approval: %v", got)
	}
	servers, _, _ := LoadConfig(data, ws, env(vars))
	trust, _ := LoadTrust(trustFile, ws, false)
	for _, s := range servers {
		if s.Name == "proj" {
			trust.Approve(s, time.Now())
		}
	}
	if err := trust.Save(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what, entry string
		vars        map[string]string
		want        []string
	}{
		{"approved", `{"command": "./server", "args": ["${DIR}"]}`, vars, []string{}},
		// The digest is of the entry as written: a variable's value is
		// the gateway's environment, not the file's.
		{"another value of ${DIR}", `{"command": "./server", "args": ["${DIR}"]}`, map[string]string{"DIR": "/b"}, []string{}},
		{"reformatted", "{\n  \"args\": [\"${DIR}\"],\n  \"command\": \"./server\"\n}", vars, []string{}},
		{"disabled", `{"command": "./server", "args": ["${DIR}"], "disabled": true}`, vars, []string{}},
		{"another arg", `{"command": "./server", "args": ["${DIR}", "--evil"]}`, vars, []string{"proj=untrusted"}},
		{"another command", `{"command": "./other", "args": ["${DIR}"]}`, vars, []string{"proj=untrusted"}},
		{"an env", `{"command": "./server", "args": ["${DIR}"], "env": {"LD_PRELOAD": "x.so"}}`, vars, []string{"proj=untrusted"}},
		{"a cwd", `{"command": "./server", "args": ["${DIR}"], "cwd": "/"}`, vars, []string{"proj=untrusted"}},
	} {
		setEntry(t, ws, tc.entry)
		if got := untrustedNames(t, data, ws, trustFile, false, tc.vars); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: untrusted %v, want %v", tc.what, got, tc.want)
		}
	}
	setEntry(t, ws, `{"command": "./server", "args": ["${DIR}"]}`)
	trust, _ = LoadTrust(trustFile, ws, false)
	if !trust.Revoke("proj") || trust.Revoke("proj") {
		t.Error("Revoke: want true, then false")
	}
	if err := trust.Save(); err != nil {
		t.Fatal(err)
	}
	if got := untrustedNames(t, data, ws, trustFile, false, vars); !reflect.DeepEqual(got, []string{"proj=untrusted"}) {
		t.Errorf("after Revoke: %v", got)
	}
}

// When bash may write the data dir, its mcp.json's servers wait for
// approval too; an approval is for one workspace only.
func TestTrustOfAWritableDataDirAndPerWorkspace(t *testing.T) {
	data, ws, trustFile := trustDirs(t, `{"command": "./server"}`)
	if got := untrustedNames(t, data, ws, trustFile, true, nil); !reflect.DeepEqual(got, []string{"ops=untrusted", "proj=untrusted"}) {
		t.Fatalf("data dir writable, nothing approved: %v", got)
	}
	servers, _, _ := LoadConfig(data, ws, env(nil))
	trust, _ := LoadTrust(trustFile, ws, true)
	for _, s := range servers {
		trust.Approve(s, time.Now())
	}
	if err := trust.Save(); err != nil {
		t.Fatal(err)
	}
	if got := untrustedNames(t, data, ws, trustFile, true, nil); !reflect.DeepEqual(got, []string{}) {
		t.Errorf("all approved: %v", got)
	}
	// The same entries in another workspace are not approved.
	other := t.TempDir()
	setEntry(t, other, `{"command": "./server"}`)
	if got := untrustedNames(t, data, other, trustFile, true, nil); !reflect.DeepEqual(got, []string{"ops=untrusted", "proj=untrusted"}) {
		t.Errorf("another workspace: %v", got)
	}
}

// Save replaces the file through a rename: the file is whole, private,
// and no temp file is left.
func TestTrustSaveIsAtomic(t *testing.T) {
	data := filepath.Join(t.TempDir(), "new")
	trust, err := LoadTrust(filepath.Join(data, TrustFile), "/ws", false)
	if err != nil {
		t.Fatal(err)
	}
	trust.Approve(Server{Name: "proj", File: "/ws/.mcp.json", Digest: strings.Repeat("ab", 32), Project: true}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	// A link planted at the path is replaced, not followed.
	os.MkdirAll(data, 0o700)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	if err := os.Symlink(victim, filepath.Join(data, TrustFile)); err != nil {
		t.Fatal(err)
	}
	if err := trust.Save(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(data)
	if len(entries) != 1 || entries[0].Name() != TrustFile || !entries[0].Type().IsRegular() {
		t.Fatalf("data dir holds %v, want only %s as a file", entries, TrustFile)
	}
	fi, _ := os.Stat(filepath.Join(data, TrustFile))
	b, _ := os.ReadFile(filepath.Join(data, TrustFile))
	var got map[string]map[string]map[string]map[string]string
	if err := json.Unmarshal(b, &got); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, %v:\n%s", TrustFile, fi.Mode(), err, b)
	}
	want := map[string]string{"sha256": strings.Repeat("ab", 32), "file": "/ws/.mcp.json", "approvedAt": "2026-01-02T03:04:05Z"}
	if !reflect.DeepEqual(got["workspaces"]["/ws"]["proj"], want) {
		t.Errorf("%s:\n%s", TrustFile, b)
	}
	if v, _ := os.ReadFile(victim); string(v) != "keep" {
		t.Errorf("the link's target was written: %q", v)
	}
}

// A trust file that is not one is an error naming the file.
func TestLoadTrustErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"bad JSON", `{"workspaces": {`, `invalid JSON: unexpected EOF`},
		{"no workspaces", `{}`, `no "workspaces" object`},
		{"unknown field", `{"workspaces": {}, "servers": {}}`, `unknown field "servers"`},
		{"relative workspace", `{"workspaces": {"ws": {}}}`, `workspace "ws" is not an absolute path`},
		{"bad digest", `{"workspaces": {"/ws": {"a": {"sha256": "abc"}}}}`, `workspace /ws: server "a": sha256: "abc" is not a SHA-256 in hex`},
		{"bad name", `{"workspaces": {"/ws": {"a b": {"sha256": "` + strings.Repeat("0", 64) + `"}}}}`, `workspace /ws: "a b" is not a server name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			path := filepath.Join(data, TrustFile)
			os.WriteFile(path, []byte(tc.json), 0o600)
			_, err := LoadTrust(path, "/ws", false)
			if want := path + ": " + tc.want; err == nil || err.Error() != want {
				t.Errorf("error %v\nwant     %s", err, want)
			}
		})
	}
}
