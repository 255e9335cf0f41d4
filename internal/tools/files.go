package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
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
	readBufferSize  = 64 << 10 // read_file streams through this
	// maxLines bounds read_file's offset and limit: a file of MaxReadBytes
	// has at most that many lines.
	maxLines = MaxReadBytes
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
	offset, err := lineArg("offset", in.Offset, 1)
	if err != nil {
		return "", err
	}
	limit, err := lineArg("limit", in.Limit, DefaultLimit)
	if err != nil {
		return "", err
	}
	f, r, err := t.w.openText("read_file", in.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return readLines(r, in.Path, offset, limit)
}

// lineArg checks read_file's offset or limit (def when absent). The most
// lines a file of MaxReadBytes can hold bounds both, so offset-1+limit
// cannot overflow.
func lineArg(field string, v *int, def int) (int, error) {
	switch {
	case v == nil:
		return def, nil
	case *v < 1:
		return 0, fmt.Errorf(`read_file: %q must be 1 or more, got %d`, field, *v)
	case *v > maxLines:
		return 0, fmt.Errorf(`read_file: %q %d is over the maximum %d`, field, *v, maxLines)
	}
	return *v, nil
}

// readLines writes lines offset to offset+limit-1 of r like cat -n, up to
// the output cap, then a note saying how to read on. It streams: what it
// holds is the buffer of r, one line (cut to maxLineChars characters) and
// the output.
func readLines(r *bufio.Reader, p string, offset, limit int) (string, error) {
	if _, err := r.Peek(1); err == io.EOF {
		return "(empty file)", nil
	}
	skipped, err := skipLines(r, offset-1)
	if err != nil {
		return "", fmt.Errorf("read_file: %s: %w", p, err)
	}
	var b strings.Builder
	line := make([]byte, 0, maxLineChars*utf8.UTFMax)
	n := skipped // lines read; the loop runs only if offset-1 were there
	for skipped == offset-1 && n < offset-1+limit {
		var long bool
		line, long, err = readLine(r, line, maxLineChars*utf8.UTFMax)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read_file: %s: %w", p, err)
		}
		n++
		text, cut := cutRunes(line, maxLineChars)
		fmt.Fprintf(&b, "%6d\t%s", n, text)
		if long || cut {
			b.WriteString(" … [line cut]")
		}
		b.WriteByte('\n')
		if b.Len() > maxOutputChars {
			fmt.Fprintf(&b, "[output cut at %d characters; read on with offset=%d]\n", maxOutputChars, n+1)
			return b.String(), nil
		}
	}
	if n < offset {
		return "", fmt.Errorf("read_file: offset %d is past the end of %s (%d lines)", offset, p, n)
	}
	rest, err := skipLines(r, math.MaxInt)
	if err != nil {
		return "", fmt.Errorf("read_file: %s: %w", p, err)
	}
	if rest > 0 {
		fmt.Fprintf(&b, "[%d more lines; read on with offset=%d]\n", rest, n+1)
	}
	return b.String(), nil
}

// skipLines discards up to n lines of r (a last line without a newline
// counts) and returns how many it discarded.
func skipLines(r *bufio.Reader, n int) (int, error) {
	skipped, partial := 0, false // partial: a line was begun and not ended
	for skipped < n {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err == io.EOF {
				if partial {
					skipped++
				}
				return skipped, nil
			} else if err != nil {
				return skipped, err
			}
		}
		buf, _ := r.Peek(r.Buffered())
		if c := bytes.Count(buf, []byte{'\n'}); c < n-skipped { // the whole buffer
			skipped += c
			partial = buf[len(buf)-1] != '\n'
			r.Discard(len(buf))
			continue
		}
		i := 0
		for skipped < n {
			i += bytes.IndexByte(buf[i:], '\n') + 1
			skipped++
		}
		r.Discard(i)
	}
	return skipped, nil
}

// readLine reads the next line of r into buf[:0], without its line end,
// keeping at most keep bytes; long reports that the line was longer. It
// returns io.EOF when no line is left.
func readLine(r *bufio.Reader, buf []byte, keep int) (line []byte, long bool, err error) {
	line, begun := buf[:0], false
	for {
		chunk, err := r.ReadSlice('\n')
		begun = begun || len(chunk) > 0
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if room := keep - len(line); len(chunk) > room {
			chunk, long = chunk[:room], true
		}
		line = append(line, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && begun:
			err = nil
		}
		return bytes.TrimRight(line, "\r"), long, err
	}
}

// cutRunes returns the first n characters of b, and whether there were more.
func cutRunes(b []byte, n int) ([]byte, bool) {
	i := 0
	for k := 0; k < n && i < len(b); k++ {
		_, size := utf8.DecodeRune(b[i:])
		i += size
	}
	return b[:i], i < len(b)
}

// openText opens a workspace file as text for tool: a regular file of at
// most MaxReadBytes whose first bytes are not binary. The reader stops at
// MaxReadBytes even if the file grows meanwhile.
func (w *Workspace) openText(tool, p string) (*os.File, *bufio.Reader, error) {
	f, fi, err := w.open(tool, p, safeopen.Regular)
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() > MaxReadBytes {
		f.Close()
		return nil, nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit of read_file: use bash (head, grep, sed -n) to read part of it", p, fi.Size(), MaxReadBytes)
	}
	r := bufio.NewReaderSize(io.LimitReader(f, MaxReadBytes), readBufferSize)
	sniff, err := r.Peek(binarySniffSize + 1)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, nil, w.explain(p, err)
	}
	if isBinary(sniff[:min(len(sniff), binarySniffSize)], len(sniff) > binarySniffSize) {
		f.Close()
		return nil, nil, fmt.Errorf("%s looks like a binary file (NUL bytes or invalid UTF-8): read_file only shows text", p)
	}
	return f, r, nil
}

// readText reads a whole workspace file as text for tool (see openText).
func (w *Workspace) readText(tool, p string) ([]byte, error) {
	f, r, err := w.openText(tool, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, w.explain(p, err)
	}
	return data, nil
}

// isBinary tells binary content by its first bytes, sniff; more says that
// the file goes on after them.
func isBinary(sniff []byte, more bool) bool {
	if bytes.IndexByte(sniff, 0) >= 0 {
		return true
	}
	if more {
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
		name := listName(e.Name())
		switch {
		case e.IsDir():
			fmt.Fprintf(&b, "%s/\n", name)
		case e.Type()&fs.ModeSymlink != 0:
			fmt.Fprintf(&b, "%s@\n", name)
		case !e.Type().IsRegular():
			fmt.Fprintf(&b, "%s\t%s\n", name, safeopen.TypeName(e.Type()))
		default:
			size := int64(-1)
			if fi, err := e.Info(); err == nil {
				size = fi.Size()
			}
			fmt.Fprintf(&b, "%s\t%d bytes\n", name, size)
		}
	}
	return b.String(), nil
}

// listName is how list_files shows a name: as it is, or Go-quoted when it
// holds a character that is not printable (a newline would make one name
// look like several entries; an escape sequence would reach the terminal
// of whoever reads the transcript), is not UTF-8, or starts with a quote
// (so that a quoted name is never ambiguous).
func listName(name string) string {
	if strings.HasPrefix(name, `"`) || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(name)
	}
	return name
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
