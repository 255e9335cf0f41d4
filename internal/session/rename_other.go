//go:build unix && !linux

package session

import "os"

// renameNoReplace renames oldname to newname inside root, failing with an
// error that matches fs.ErrExist when newname exists: a rename(2) would
// replace it.
func renameNoReplace(root *os.Root, oldname, newname string) error {
	return linkThenUnlink(root, oldname, newname)
}
