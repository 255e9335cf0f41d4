//go:build unix

package session

import (
	"os"

	"golang.org/x/sys/unix"
)

// linkThenUnlink is a rename inside root that refuses to replace newname,
// for file systems without RENAME_NOREPLACE: link(2) fails with EEXIST
// where rename would overwrite. A crash between the two calls leaves the
// file under both names, which loses nothing.
func linkThenUnlink(root *os.Root, oldname, newname string) error {
	if err := root.Link(oldname, newname); err != nil {
		return err
	}
	if err := root.Remove(oldname); err != nil {
		root.Remove(newname)
		return err
	}
	return nil
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
