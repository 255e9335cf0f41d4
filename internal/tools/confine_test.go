package tools

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture is a workspace next to an outside directory, with symlinks from
// one into the other.
type fixture struct {
	ws      *Workspace
	dir     string // the workspace
	outside string // a directory the tools must never touch
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ws, dir := newWS(t)
	outside, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	putFile(t, filepath.Join(outside, "secret.txt"), "secret\n", 0o644)
	putFile(t, filepath.Join(outside, "sub", "deep.txt"), "deep secret\n", 0o644)
	putFile(t, filepath.Join(dir, "inside.txt"), "inside\n", 0o644)
	putFile(t, filepath.Join(dir, "d", "f.txt"), "in d\n", 0o644)
	for link, target := range map[string]string{
		"linkfile":  filepath.Join(outside, "secret.txt"),
		"linkdir":   outside,
		"linkdang":  filepath.Join(outside, "nothing-here.txt"), // dangling, outside
		"linkin":    filepath.Join(dir, "inside.txt"),           // absolute, inside
		"linkrel":   "inside.txt",                               // relative, inside
		"dirlink":   "d",                                        // directory, inside
		"d/linkup":  "../inside.txt",                            // relative with .., inside
		"d/linkout": "../../" + filepath.Base(outside) + "/secret.txt",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{ws: ws, dir: dir, outside: outside}
}

// input builds the tool's input naming path p.
func input(tool, p string) map[string]any {
	switch tool {
	case "read_file":
		return map[string]any{"path": p}
	case "write_file":
		return map[string]any{"path": p, "content": "pwned\n"}
	case "list_files":
		return map[string]any{"directory": p}
	case "edit_file":
		return map[string]any{"path": p, "old_string": "secret", "new_string": "pwned"}
	}
	panic(tool)
}

var fileToolNames = []string{"read_file", "write_file", "list_files", "edit_file"}

func TestConfinementRefusesPathsOutside(t *testing.T) {
	// {ws} and {out} stand for the workspace and the outside directory;
	// {rel} is the outside directory relative to the workspace. Every case
	// gets a fresh fixture, so one tool's mistake cannot hide another's.
	paths := []struct{ name, path string }{
		{"dotdot", "../x"},
		{"nested dotdot", "a/../../x"},
		{"dotdot to a real file", "{rel}/secret.txt"},
		{"dotdot to a real dir", "{rel}"},
		{"absolute system file", "/etc/passwd"},
		{"absolute outside file", "{out}/secret.txt"},
		{"absolute outside dir", "{out}"},
		{"absolute with dotdot", "{ws}/../{outbase}/secret.txt"},
		{"symlink to outside file", "linkfile"},
		{"symlink to outside dir", "linkdir"},
		{"through symlinked dir", "linkdir/secret.txt"},
		{"through symlinked dir, new subdirs", "linkdir/new/deeper.txt"},
		{"through symlinked dir, existing subdir", "linkdir/sub/deep.txt"},
		{"dangling symlink outside", "linkdang"},
		{"relative symlink in subdir leading out", "d/linkout"},
	}
	for _, name := range fileToolNames {
		for _, p := range paths {
			t.Run(name+"/"+p.name, func(t *testing.T) {
				f := newFixture(t)
				rel, err := filepath.Rel(f.dir, f.outside)
				if err != nil {
					t.Fatal(err)
				}
				path := strings.NewReplacer("{ws}", f.dir, "{out}", f.outside, "{rel}", rel, "{outbase}", filepath.Base(f.outside)).Replace(p.path)
				beforeOut := snapshot(t, f.outside)
				beforeWS := snapshot(t, f.dir)
				out, err := call(t, f.ws, name, input(name, path))
				if err == nil || !strings.Contains(err.Error(), "outside the workspace") {
					t.Errorf("%s %s = %q, %v; want an error saying it is outside the workspace", name, path, out, err)
				}
				if out != "" {
					t.Errorf("output with an error: %q", out)
				}
				if after := snapshot(t, f.outside); !maps.Equal(beforeOut, after) {
					t.Errorf("outside dir changed:\nbefore %v\nafter  %v", beforeOut, after)
				}
				if after := snapshot(t, f.dir); !maps.Equal(beforeWS, after) {
					t.Errorf("workspace changed:\nbefore %v\nafter  %v", beforeWS, after)
				}
			})
		}
	}
}

func TestConfinementAllowsPathsInside(t *testing.T) {
	cases := []struct{ name, file, dir string }{
		{"absolute path inside", "<abs>/inside.txt", "<abs>/d"},
		{"absolute symlink inside", "linkin", "dirlink"},
		{"relative symlink inside", "linkrel", "dirlink"},
		{"symlink with dotdot inside", "d/linkup", "d/../d"},
		{"through symlinked dir inside", "dirlink/../inside.txt", "dirlink/"},
		{"dot prefix", "./inside.txt", "./d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			abs := func(p string) string {
				if len(p) > 5 && p[:5] == "<abs>" {
					return f.dir + p[5:]
				}
				return p
			}
			file, dir := abs(tc.file), abs(tc.dir)
			if got, want := mustCall(t, f.ws, "read_file", map[string]any{"path": file}), "     1\tinside\n"; got != want {
				t.Errorf("read_file %s = %q, want %q", file, got, want)
			}
			if got, want := mustCall(t, f.ws, "list_files", map[string]any{"directory": dir}), "f.txt\t5 bytes\nlinkout@\nlinkup@\n"; got != want {
				t.Errorf("list_files %s = %q, want %q", dir, got, want)
			}
			mustCall(t, f.ws, "edit_file", map[string]any{"path": file, "old_string": "inside", "new_string": "edited"})
			if got := getFile(t, filepath.Join(f.dir, "inside.txt")); got != "edited\n" {
				t.Errorf("after edit_file %s the target holds %q, want %q", file, got, "edited\n")
			}
			mustCall(t, f.ws, "write_file", map[string]any{"path": file, "content": "written\n"})
			if got := getFile(t, filepath.Join(f.dir, "inside.txt")); got != "written\n" {
				t.Errorf("after write_file %s the target holds %q, want %q", file, got, "written\n")
			}
			// Writing through a symlink updates its target and keeps the link.
			for _, link := range []string{"linkin", "linkrel", "d/linkup"} {
				fi, err := os.Lstat(filepath.Join(f.dir, link))
				if err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("%s is no longer a symlink after the writes (%v, %v)", link, fi.Mode(), err)
				}
			}
			if got := names(t, f.dir); !slices.Equal(got, []string{"d", "dirlink", "inside.txt", "linkdang", "linkdir", "linkfile", "linkin", "linkrel"}) {
				t.Errorf("workspace entries after the writes: %q (a temp file left, or a link replaced?)", got)
			}
		})
	}
}

func TestOpenWorkspaceThroughSymlink(t *testing.T) {
	// The workspace may be configured as a symlinked path (a home directory
	// link, macOS /tmp); absolute paths under that alias are inside.
	real, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(real, alias); err != nil {
		t.Fatal(err)
	}
	putFile(t, filepath.Join(real, "a.txt"), "alpha\n", 0o644)
	ws, err := OpenWorkspace(alias)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ws.Dir() != real {
		t.Errorf("Dir() = %q, want the resolved %q", ws.Dir(), real)
	}
	for _, p := range []string{filepath.Join(alias, "a.txt"), filepath.Join(real, "a.txt"), "a.txt"} {
		if got := mustCall(t, ws, "read_file", map[string]any{"path": p}); got != "     1\talpha\n" {
			t.Errorf("read_file %s = %q", p, got)
		}
	}
	_, err = call(t, ws, "read_file", map[string]any{"path": filepath.Join(alias, "..", "x")})
	wantErr(t, "alias/..", err, "outside the workspace")

	if _, err := OpenWorkspace(filepath.Join(real, "missing")); err == nil {
		t.Error("OpenWorkspace of a missing directory: no error")
	}
}

func TestWriteThroughLinksInside(t *testing.T) {
	ws, dir := newWS(t)
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"absdir":   filepath.Join(dir, "real"),             // absolute link to a directory inside
		"dangling": "real/later.txt",                       // target not created yet
		"chain":    "dangling",                             // link to a link
		"loop1":    "loop2",                                // a cycle
		"loop2":    "loop1",                                //
		"deadend":  filepath.Join(dir, "missing", "f.txt"), // dangling into a missing dir
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	// New subdirectories under an absolute link to a directory inside.
	mustCall(t, ws, "write_file", map[string]any{"path": "absdir/new/x.txt", "content": "x"})
	if got := getFile(t, filepath.Join(dir, "real", "new", "x.txt")); got != "x" {
		t.Errorf("real/new/x.txt = %q", got)
	}
	// A dangling link (reached through another link) gets its target created.
	mustCall(t, ws, "write_file", map[string]any{"path": "chain", "content": "later"})
	if got := getFile(t, filepath.Join(dir, "real", "later.txt")); got != "later" {
		t.Errorf("real/later.txt = %q", got)
	}
	mustCall(t, ws, "write_file", map[string]any{"path": "deadend", "content": "made"})
	if got := getFile(t, filepath.Join(dir, "missing", "f.txt")); got != "made" {
		t.Errorf("missing/f.txt = %q", got)
	}
	for _, link := range []string{"absdir", "dangling", "chain", "deadend"} {
		if fi, err := os.Lstat(filepath.Join(dir, link)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s was replaced: %v %v", link, fi, err)
		}
	}
	if got := mustCall(t, ws, "list_files", `{"directory":"absdir"}`); got != "later.txt\t5 bytes\nnew/\n" {
		t.Errorf("list_files absdir = %q", got)
	}
	// A cycle is an error, not a hang.
	_, err := call(t, ws, "write_file", map[string]any{"path": "loop1", "content": "x"})
	wantErr(t, "loop", err, "loop1")
	_, err = call(t, ws, "read_file", map[string]any{"path": "loop1"})
	wantErr(t, "loop", err, "loop1")
}
