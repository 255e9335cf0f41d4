package session

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// renameNoReplace renames oldname to newname inside root, failing with an
// error that matches fs.ErrExist when newname exists: a rename(2) would
// replace it. The names' directories are opened in root, so neither the
// file nor its new name can be reached through a link leading out; the
// last components are names in them, which renameat2 never follows.
func renameNoReplace(root *os.Root, oldname, newname string) error {
	od, _, err := safeopen.OpenIn(root, filepath.Dir(oldname), safeopen.Dir)
	if err != nil {
		return err
	}
	defer od.Close()
	nd, _, err := safeopen.OpenIn(root, filepath.Dir(newname), safeopen.Dir)
	if err != nil {
		return err
	}
	defer nd.Close()
	err = ignoringEINTR(func() error {
		return unix.Renameat2(int(od.Fd()), filepath.Base(oldname), int(nd.Fd()), filepath.Base(newname), unix.RENAME_NOREPLACE)
	})
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// The file system (or the kernel) has no RENAME_NOREPLACE.
		return linkThenUnlink(root, oldname, newname)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(root.Name(), oldname), New: filepath.Join(root.Name(), newname), Err: err}
	}
	return nil
}
