//go:build unix && !linux

package session

// renameNoReplace renames oldpath to newpath, failing with an error that
// matches fs.ErrExist when newpath exists: a rename(2) would replace it.
func renameNoReplace(oldpath, newpath string) error { return linkThenUnlink(oldpath, newpath) }
