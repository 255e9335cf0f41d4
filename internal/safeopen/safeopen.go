//go:build unix

// Package safeopen opens the files the gateway and its tools read (the
// workspace files of read_file, SOUL.md, MEMORY.md, SKILL.md, …) so that no
// file can block or exhaust the process:
//
//   - a named pipe, socket or device is refused with an error naming the
//     path and its type, before and after the open: the open itself uses
//     O_NONBLOCK, so a FIFO that was swapped in after the first check
//     cannot block it (a plain open of a FIFO for reading waits for a
//     writer, forever, and no context can stop it);
//   - what is read goes through a byte limit (ReadHead), so /dev/zero
//     behind a symlink or a sparse 1 GiB file costs only the limit.
//
// Files in the workspace, and in a data dir inside it, are opened in an
// os.Root (OpenIn, OpenFileIn, ReadHeadIn, OpenDir): the model's shell can
// plant links there, and the gateway, which is not confined as the shell
// is, must not follow one out to ~/.ssh/id_rsa or ~/.bashrc; such a link
// is an *EscapeError naming it.
//
// Every open is close-on-exec (Go adds O_CLOEXEC), so a tool's child
// process never inherits a descriptor.
package safeopen

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Kind is what a caller expects to find at a path.
type Kind uint8

const (
	Regular Kind = iota // a regular file
	Dir                 // a directory
)

func (k Kind) String() string {
	if k == Dir {
		return "a directory"
	}
	return "a regular file"
}

// TypeError says that a path holds something other than what the caller
// expected. Callers may rewrite Path into the name their user gave.
type TypeError struct {
	Path string
	Mode fs.FileMode // what was found
	Want Kind
}

func (e *TypeError) Error() string {
	name := TypeName(e.Mode)
	article := "a"
	if strings.ContainsRune("aeiou", rune(name[0])) {
		article = "an"
	}
	return fmt.Sprintf("%s is %s %s, not %s", e.Path, article, name, e.Want)
}

// TypeName names the type of a file mode: "named pipe", "socket",
// "character device", "regular file", ….
func TypeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "regular file"
	}
	return "irregular file"
}

func matches(m fs.FileMode, want Kind) bool {
	if want == Dir {
		return m.IsDir()
	}
	return m.IsRegular()
}

// Open opens path read-only, following symlinks, and returns it with its
// fstat when it is of the wanted kind. A missing file is an error that
// matches fs.ErrNotExist.
func Open(path string, want Kind) (*os.File, fs.FileInfo, error) {
	return OpenFile(path, os.O_RDONLY, 0, want)
}

// OpenFile is Open with other flags (os.O_RDWR|os.O_APPEND|os.O_CREATE for
// an append) and the permissions of a file it creates.
func OpenFile(path string, flag int, perm fs.FileMode, want Kind) (*os.File, fs.FileInfo, error) {
	return open(path, os.Stat, func(flag int) (*os.File, error) { return os.OpenFile(path, flag, perm) }, flag, want)
}

// OpenIn opens name read-only inside root: every step, symlinks included,
// stays inside it, and a symbolic link leading out of it is refused with an
// *EscapeError. This is how the gateway opens the files of the workspace
// and of a data dir inside it, where the model's shell can plant links to
// the user's secrets (~/.ssh/id_rsa) or dotfiles (~/.bashrc): the gateway
// is not confined as the shell is, so following them would read or write
// those for the model. Errors name the file by its full path.
func OpenIn(root *os.Root, name string, want Kind) (*os.File, fs.FileInfo, error) {
	return OpenFileIn(root, name, os.O_RDONLY, 0, want)
}

// OpenFileIn is OpenIn with other flags and the permissions of a file it
// creates.
func OpenFileIn(root *os.Root, name string, flag int, perm fs.FileMode, want Kind) (*os.File, fs.FileInfo, error) {
	f, fi, err := open(name, root.Stat, func(flag int) (*os.File, error) { return root.OpenFile(name, flag, perm) }, flag, want)
	return f, fi, InRoot(root, name, err)
}

// EscapeError says that a path inside a root leads out of it through a
// symbolic link. It wraps os.Root's own error.
type EscapeError struct {
	Path, Root string
	Err        error
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("%s is a symbolic link leading out of %s", e.Path, e.Root)
}

func (e *EscapeError) Unwrap() error { return e.Err }

// InRoot rewrites an error of an operation on name inside root so that it
// names the full path: an escape becomes an *EscapeError, a TypeError gets
// the full path. Other errors and nil are returned as they are.
func InRoot(root *os.Root, name string, err error) error {
	var te *TypeError
	full := filepath.Join(root.Name(), name)
	switch {
	case errors.As(err, &te) && te.Path == name:
		return &TypeError{Path: full, Mode: te.Mode, Want: te.Want}
	case escapes(err):
		return &EscapeError{Path: full, Root: filepath.Clean(root.Name()), Err: err}
	}
	return err
}

// escapes reports whether err is, or wraps, os.Root's error for a path
// that leads out of the root. That error is not exported; its text is
// pinned by a test.
func escapes(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// open checks the type with stat before opening, so that a device is never
// opened (opening one can have effects of its own) and a socket, which
// cannot be opened, is named as such; then it opens with O_NONBLOCK and
// checks again with fstat, which is what holds against a swap between the
// two.
func open(name string, stat func(string) (fs.FileInfo, error), openWith func(int) (*os.File, error), flag int, want Kind) (*os.File, fs.FileInfo, error) {
	fi, err := stat(name)
	if err == nil && !matches(fi.Mode(), want) {
		return nil, nil, &TypeError{Path: name, Mode: fi.Mode(), Want: want}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	// A missing file may be created by flag; the open says.
	f, err := openWith(flag | syscall.O_NONBLOCK)
	if err != nil {
		return nil, nil, err
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, err
	}
	if !matches(fi.Mode(), want) {
		f.Close()
		return nil, nil, &TypeError{Path: name, Mode: fi.Mode(), Want: want}
	}
	// O_NONBLOCK means nothing for a regular file or a directory on the
	// file systems we know, but a network file system may honour it: clear
	// it so reads behave as for any open.
	if err := setBlocking(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// setBlocking clears the O_NONBLOCK the open used.
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("%s: %w", f.Name(), serr)
	}
	return nil
}

// ReadHead reads at most limit bytes of the regular file at path; cut
// reports that the file holds more. It never reads more than limit+1 bytes,
// whatever the file's size says.
func ReadHead(path string, limit int) (head []byte, cut bool, err error) {
	f, _, err := Open(path, Regular)
	if err != nil {
		return nil, false, err
	}
	return readHead(f, path, limit)
}

// ReadHeadIn is ReadHead of name inside root (see OpenIn).
func ReadHeadIn(root *os.Root, name string, limit int) (head []byte, cut bool, err error) {
	f, _, err := OpenIn(root, name, Regular)
	if err != nil {
		return nil, false, err
	}
	return readHead(f, f.Name(), limit)
}

// readHead reads at most limit bytes of f, which it closes.
func readHead(f *os.File, path string, limit int) (head []byte, cut bool, err error) {
	defer f.Close()
	// The size fstat gave is no bound (the file may grow meanwhile, and
	// /proc files say 0): the limit is.
	buf, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if len(buf) > limit {
		return buf[:limit], true, nil
	}
	return buf, false, nil
}

// OpenDir opens the directory dir as a root, creating it (0700) first when
// create is set. A dir inside within (the workspace) is reached through a
// root of within, so a link planted on the way (the data dir, its memory
// or sessions directory, made a link to ~/.config) cannot lead it out: that
// is an *EscapeError. A dir elsewhere is the operator's own, and its path
// may pass through links (/tmp -> /private/tmp): it is opened as it is.
func OpenDir(within, dir string, create bool) (*os.Root, error) {
	rel, err := filepath.Rel(within, dir)
	if within == "" || err != nil || !filepath.IsLocal(rel) {
		if create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
		}
		return OpenRoot(dir)
	}
	outer, err := OpenRoot(within)
	if err != nil {
		return nil, err
	}
	defer outer.Close()
	if create {
		if err := outer.MkdirAll(rel, 0o700); err != nil {
			return nil, InRoot(outer, rel, err)
		}
	}
	root, err := openRoot(rel, outer.Stat, outer.OpenRoot)
	return root, InRoot(outer, rel, err)
}

// OpenRoot is os.OpenRoot, but what is not a directory is refused with a
// *TypeError and never opened: os.OpenRoot opens without O_NONBLOCK, so a
// named pipe would block it until a writer comes.
func OpenRoot(dir string) (*os.Root, error) {
	return openRoot(dir, os.Stat, os.OpenRoot)
}

func openRoot(dir string, stat func(string) (fs.FileInfo, error), openWith func(string) (*os.Root, error)) (*os.Root, error) {
	if fi, err := stat(dir); err == nil && !fi.IsDir() {
		return nil, &TypeError{Path: dir, Mode: fi.Mode(), Want: Dir}
	}
	// The trailing "/." makes the kernel refuse, with ENOTDIR, anything
	// but a directory swapped in after the stat, instead of opening it.
	return openWith(dir + string(filepath.Separator) + ".")
}
