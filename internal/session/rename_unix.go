//go:build unix

package session

import (
	"os"

	"golang.org/x/sys/unix"
)

// linkThenUnlink is a rename that refuses to replace newpath, for file
// systems without RENAME_NOREPLACE: link(2) fails with EEXIST where rename
// would overwrite. A crash between the two calls leaves the file under both
// names, which loses nothing.
func linkThenUnlink(oldpath, newpath string) error {
	if err := ignoringEINTR(func() error { return unix.Link(oldpath, newpath) }); err != nil {
		return pathError("link", oldpath, newpath, err)
	}
	if err := os.Remove(oldpath); err != nil {
		os.Remove(newpath)
		return err
	}
	return nil
}

func pathError(op, oldpath, newpath string, err error) error {
	if err == nil {
		return nil
	}
	return &os.LinkError{Op: op, Old: oldpath, New: newpath, Err: err}
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
