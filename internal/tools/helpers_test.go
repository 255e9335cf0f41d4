package tools

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// newWS opens a fresh workspace in a temp dir and returns it with its
// (symlink-resolved) path.
func newWS(t *testing.T) (*Workspace, string) {
	t.Helper()
	ws, err := OpenWorkspace(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws, ws.Dir()
}

// tool returns the named file tool of ws.
func tool(t *testing.T, ws *Workspace, name string) Tool {
	t.Helper()
	s := NewSet(ws.FileTools()...)
	tl, ok := s.Get(name)
	if !ok {
		t.Fatalf("no tool %q", name)
	}
	return tl
}

// call runs the named tool with a JSON input built from v (a string is used
// as raw JSON).
func call(t *testing.T, ws *Workspace, name string, v any) (string, error) {
	t.Helper()
	var in []byte
	switch v := v.(type) {
	case string:
		in = []byte(v)
	default:
		var err error
		if in, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return tool(t, ws, name).Run(context.Background(), in)
}

// mustCall is call that fails the test on a tool error.
func mustCall(t *testing.T, ws *Workspace, name string, v any) string {
	t.Helper()
	out, err := call(t, ws, name, v)
	if err != nil {
		t.Fatalf("%s %v: unexpected error: %v", name, v, err)
	}
	return out
}

// wantErr fails unless err is non-nil and its text contains every part.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one containing %q", what, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: error %q does not contain %q", what, err, p)
		}
	}
}

func putFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

func getFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshot maps every path under dir (relative) to its content, or "<dir>"
// / "<link -> target>", so a test can prove a tree did not change.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "<link -> " + target + ">"
		case fi.IsDir():
			out[rel] = "<dir>"
		default:
			out[rel] = getFile(t, p) + "|" + fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}
