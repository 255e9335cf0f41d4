//go:build unix

package session

import (
	"os"

	"golang.org/x/sys/unix"
)

// statAt stats name inside the open directory dir: one fstatat, without
// resolving the directory's path again, which makes indexing thousands of
// sessions at startup several times cheaper than os.Stat. ok is false when
// name is missing or not a regular file.
func statAt(dir *os.File, name string) (st fileStamp, ok bool) {
	var s unix.Stat_t
	for {
		err := unix.Fstatat(int(dir.Fd()), name, &s, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || s.Mode&unix.S_IFMT != unix.S_IFREG {
			return fileStamp{}, false
		}
		return fileStamp{size: s.Size, mtime: s.Mtim.Nano()}, true
	}
}
