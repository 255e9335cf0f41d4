package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Limits of the file tools.
const (
	MaxReadBytes    = 10 << 20 // read_file refuses larger files
	MaxWriteBytes   = 10 << 20 // write_file and edit_file refuse larger content
	DefaultLimit    = 2000     // read_file lines when no limit is given
	maxLineChars    = 2000     // longer lines are cut in read_file output
	maxListEntries  = 1000
	maxOutputChars  = 100_000 // read_file output cap
	binarySniffSize = 8 << 10
)

// Workspace is the directory the file tools may touch.
type Workspace struct {
	dir  string // absolute, symlinks resolved
	root *os.Root
}

// OpenWorkspace opens dir as the confinement root of the file tools.
func OpenWorkspace(dir string) (*Workspace, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	if real, err = filepath.Abs(real); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	return &Workspace{dir: real, root: root}, nil
}

// Dir is the workspace's absolute path.
func (w *Workspace) Dir() string { return w.dir }

// Close releases the workspace's directory handle.
func (w *Workspace) Close() error { return w.root.Close() }

// rel turns a model-given path into one relative to the workspace, with
// every symlink resolved, and refuses it when it leads outside. Resolving
// here (not only in the os.Root) lets a symlink inside the workspace work
// even with an absolute target (os.Root refuses every absolute link), makes
// writes through a link update its target instead of replacing the link,
// and accepts absolute paths under the workspace as configured when that is
// itself a symlink. The os.Root still guards every access, so a link
// swapped after this check cannot lead out either.
func (w *Workspace) rel(p string) (string, error) {
	if p == "" {
		return "", errors.New(`"path" is required`)
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains a NUL byte")
	}
	full := filepath.Clean(p)
	if !filepath.IsAbs(full) {
		full = filepath.Join(w.dir, full)
	}
	real, err := resolvePath(full)
	if err != nil {
		return "", w.explain(p, err)
	}
	r, err := filepath.Rel(w.dir, real)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: refused, the path leads outside the workspace %s", p, w.dir)
	}
	return r, nil
}

// resolvePath resolves the symlinks of the absolute path p, also when p
// does not exist yet: the deepest existing ancestor is resolved and the
// missing rest appended, and a dangling symlink is followed to where a
// write would create its target.
func resolvePath(p string) (string, error) {
	var rest []string // missing components below p, outermost first
	for range 255 {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if target, lerr := os.Readlink(p); lerr == nil {
			if !filepath.IsAbs(target) {
				target = filepath.Dir(p) + string(filepath.Separator) + target
			}
			p = target
			continue
		}
		dir := filepath.Dir(p)
		if dir == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = dir
	}
	return "", errors.New("too many levels of symbolic links")
}

// explain rewrites os.Root's errors in words the model can act on.
func (w *Workspace) explain(p string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file or directory", p)
	case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		return fmt.Errorf("%s: refused, the path leads outside the workspace %s", p, w.dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied", p)
	case !errors.As(err, &pe):
		return fmt.Errorf("%s: %w", p, err) // a bare errno: say which path
	}
	return err
}

// open opens the model-given path p for tool, checked to be of kind want
// without blocking (see safeopen): a FIFO or a device is refused at once
// with an error naming the tool, the path and what it is.
func (w *Workspace) open(tool, p string, want safeopen.Kind) (*os.File, fs.FileInfo, error) {
	r, err := w.rel(p)
	if err != nil {
		return nil, nil, err
	}
	f, fi, err := safeopen.OpenIn(w.root, r, want)
	var te *safeopen.TypeError
	switch {
	case err == nil:
		return f, fi, nil
	case !errors.As(err, &te):
		return nil, nil, w.explain(p, err)
	case te.Mode.IsDir():
		return nil, nil, fmt.Errorf("%s is a directory: use list_files", p)
	}
	return nil, nil, fmt.Errorf("%s: %w", tool, &safeopen.TypeError{Path: p, Mode: te.Mode, Want: want})
}

// FileTools returns read_file, write_file, list_files and edit_file bound to w.
func (w *Workspace) FileTools() []Tool {
	return []Tool{readFile{w}, writeFile{w}, listFiles{w}, editFile{w}}
}

// --- read_file

type readFile struct{ w *Workspace }

func (readFile) ReadOnly() bool { return true }
func (readFile) Spec() core.ToolSpec {
	return spec("read_file", "Read a text file in the workspace. Output is line-numbered like cat -n. Use offset (1-based line) and limit (default 2000) for long files.",
		schema([]string{"path"}, map[string]map[string]string{
			"path":   {"type": "string", "description": "file path, relative to the workspace"},
			"offset": {"type": "integer", "description": "first line to read, 1-based (default 1)"},
			"limit":  {"type": "integer", "description": "how many lines to read (default 2000)"},
		}))
}

func (t readFile) Run(ctx context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Path   string `json:"path"`
		Offset *int   `json:"offset"`
		Limit  *int   `json:"limit"`
	}
	if err := DecodeInput("read_file", input, &in); err != nil {
		return "", err
	}
	offset, limit := 1, DefaultLimit
	if in.Offset != nil {
		if *in.Offset < 1 {
			return "", fmt.Errorf(`read_file: "offset" must be 1 or more, got %d`, *in.Offset)
		}
		offset = *in.Offset
	}
	if in.Limit != nil {
		if *in.Limit < 1 {
			return "", fmt.Errorf(`read_file: "limit" must be 1 or more, got %d`, *in.Limit)
		}
		limit = *in.Limit
	}
	data, err := t.w.readText("read_file", in.Path)
	if err != nil {
		return "", err
	}
	lines := strings.SplitAfter(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	if len(lines) == 0 {
		return "(empty file)", nil
	}
	if offset > len(lines) {
		return "", fmt.Errorf("read_file: offset %d is past the end of %s (%d lines)", offset, in.Path, len(lines))
	}
	var b strings.Builder
	end := min(len(lines), offset-1+limit)
	for i := offset - 1; i < end; i++ {
		line := strings.TrimRight(lines[i], "\r\n")
		if utf8.RuneCountInString(line) > maxLineChars {
			line = string([]rune(line)[:maxLineChars]) + " … [line cut]"
		}
		fmt.Fprintf(&b, "%6d\t%s\n", i+1, line)
		if b.Len() > maxOutputChars {
			fmt.Fprintf(&b, "[output cut at %d characters; read on with offset=%d]\n", maxOutputChars, i+2)
			return b.String(), nil
		}
	}
	if end < len(lines) {
		fmt.Fprintf(&b, "[%d more lines; read on with offset=%d]\n", len(lines)-end, end+1)
	}
	return b.String(), nil
}

// readText reads a workspace file for tool, refusing directories, special
// files, oversized files and binary content.
func (w *Workspace) readText(tool, p string) ([]byte, error) {
	f, fi, err := w.open(tool, p, safeopen.Regular)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > MaxReadBytes {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit of read_file: use bash (head, grep, sed -n) to read part of it", p, fi.Size(), MaxReadBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxReadBytes+1))
	if err != nil {
		return nil, w.explain(p, err)
	}
	if isBinary(data) {
		return nil, fmt.Errorf("%s looks like a binary file (NUL bytes or invalid UTF-8): read_file only shows text", p)
	}
	return data, nil
}

func isBinary(data []byte) bool {
	sniff := data[:min(len(data), binarySniffSize)]
	if bytes.IndexByte(sniff, 0) >= 0 {
		return true
	}
	if len(sniff) < len(data) {
		// The window may cut the last multi-byte character in two.
		for i := 0; i < utf8.UTFMax-1 && !utf8.Valid(sniff); i++ {
			sniff = sniff[:len(sniff)-1]
		}
	}
	return !utf8.Valid(sniff)
}

// --- write_file

type writeFile struct{ w *Workspace }

func (writeFile) ReadOnly() bool { return false }
func (writeFile) Spec() core.ToolSpec {
	return spec("write_file", "Create or overwrite a file in the workspace with the given content. Parent directories are created. The write is atomic.",
		schema([]string{"path", "content"}, map[string]map[string]string{
			"path":    {"type": "string", "description": "file path, relative to the workspace"},
			"content": {"type": "string", "description": "the complete new content"},
		}))
}

func (t writeFile) Run(ctx context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Path    *string `json:"path"`
		Content *string `json:"content"`
	}
	if err := DecodeInput("write_file", input, &in); err != nil {
		return "", err
	}
	if in.Path == nil || in.Content == nil {
		return "", errors.New(`write_file: "path" and "content" are required`)
	}
	if err := t.w.writeAtomic(*in.Path, []byte(*in.Content)); err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %d bytes to %s", len(*in.Content), *in.Path), nil
}

// writeAtomic writes through a temp file in the same directory and renames
// it over the target, so a reader (or a crash) never sees half a file. An
// existing file keeps its permissions; a new one gets 0644.
func (w *Workspace) writeAtomic(p string, data []byte) error {
	if len(data) > MaxWriteBytes {
		return fmt.Errorf("%s: content is %d bytes, over the %d-byte limit", p, len(data), MaxWriteBytes)
	}
	r, err := w.rel(p)
	if err != nil {
		return err
	}
	if r == "." {
		return fmt.Errorf("%s is the workspace directory, not a file", p)
	}
	dir := filepath.Dir(r)
	if err := w.root.MkdirAll(dir, 0o755); err != nil {
		return w.explain(p, err)
	}
	perm, existed := os.FileMode(0o644), false
	if fi, err := w.root.Stat(r); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", p)
		}
		perm, existed = fi.Mode().Perm(), true
	}
	// A random name: concurrent writers of one file, and the leftover of a
	// crashed writer that had the same pid, must not collide.
	tmp := path.Join(filepath.ToSlash(dir), fmt.Sprintf(".%s.miniclaw-tmp-%d-%016x", filepath.Base(r), os.Getpid(), rand.Uint64()))
	f, err := w.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, perm)
	if err != nil {
		return w.explain(p, err)
	}
	if existed { // the umask may have cut the old mode
		if err := f.Chmod(perm); err != nil {
			f.Close()
			w.root.Remove(tmp)
			return w.explain(p, err)
		}
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		w.root.Remove(tmp)
		return w.explain(p, err)
	}
	if err := w.root.Rename(tmp, r); err != nil {
		w.root.Remove(tmp)
		return w.explain(p, err)
	}
	return nil
}

// --- list_files

type listFiles struct{ w *Workspace }

func (listFiles) ReadOnly() bool { return true }
func (listFiles) Spec() core.ToolSpec {
	return spec("list_files", "List the entries of a directory in the workspace: directories end with /, files show their size.",
		schema(nil, map[string]map[string]string{
			"directory": {"type": "string", "description": "directory relative to the workspace (default: the workspace itself)"},
		}))
}

func (t listFiles) Run(ctx context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Directory string `json:"directory"`
	}
	if err := DecodeInput("list_files", input, &in); err != nil {
		return "", err
	}
	if in.Directory == "" {
		in.Directory = "."
	}
	d, _, err := t.w.open("list_files", in.Directory, safeopen.Dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return "", fmt.Errorf("%s: %w (is it a directory?)", in.Directory, err)
	}
	if len(entries) == 0 {
		return "(empty directory)", nil
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	var b strings.Builder
	for i, e := range entries {
		if i == maxListEntries {
			fmt.Fprintf(&b, "[%d more entries not shown]\n", len(entries)-i)
			break
		}
		switch {
		case e.IsDir():
			fmt.Fprintf(&b, "%s/\n", e.Name())
		case e.Type()&fs.ModeSymlink != 0:
			fmt.Fprintf(&b, "%s@\n", e.Name())
		case !e.Type().IsRegular():
			fmt.Fprintf(&b, "%s\t%s\n", e.Name(), safeopen.TypeName(e.Type()))
		default:
			size := int64(-1)
			if fi, err := e.Info(); err == nil {
				size = fi.Size()
			}
			fmt.Fprintf(&b, "%s\t%d bytes\n", e.Name(), size)
		}
	}
	return b.String(), nil
}

// --- edit_file

type editFile struct{ w *Workspace }

func (editFile) ReadOnly() bool { return false }
func (editFile) Spec() core.ToolSpec {
	return spec("edit_file", "Replace one exact, unique occurrence of old_string with new_string in a workspace file. Include enough context to make old_string unique.",
		schema([]string{"path", "old_string", "new_string"}, map[string]map[string]string{
			"path":       {"type": "string", "description": "file path, relative to the workspace"},
			"old_string": {"type": "string", "description": "the exact text to replace; must occur exactly once"},
			"new_string": {"type": "string", "description": "the replacement text"},
		}))
}

func (t editFile) Run(ctx context.Context, input json.RawMessage) (string, error) {
	var in struct {
		Path      string  `json:"path"`
		OldString *string `json:"old_string"`
		NewString *string `json:"new_string"`
	}
	if err := DecodeInput("edit_file", input, &in); err != nil {
		return "", err
	}
	if in.OldString == nil || in.NewString == nil {
		return "", errors.New(`edit_file: "old_string" and "new_string" are required`)
	}
	if *in.OldString == "" {
		return "", errors.New(`edit_file: "old_string" must not be empty; use write_file to create a file`)
	}
	data, err := t.w.readText("edit_file", in.Path)
	if err != nil {
		return "", err
	}
	switch n := strings.Count(string(data), *in.OldString); n {
	case 0:
		return "", fmt.Errorf("edit_file: old_string was not found in %s", in.Path)
	case 1:
	default:
		return "", fmt.Errorf("edit_file: old_string occurs %d times in %s; include more surrounding text so it is unique", n, in.Path)
	}
	out := strings.Replace(string(data), *in.OldString, *in.NewString, 1)
	if err := t.w.writeAtomic(in.Path, []byte(out)); err != nil {
		return "", err
	}
	return fmt.Sprintf("edited %s: replaced %d bytes with %d bytes", in.Path, len(*in.OldString), len(*in.NewString)), nil
}
