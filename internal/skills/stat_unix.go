//go:build unix

package skills

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// statAt stats rel inside the open directory dir. It is what keeps a warm
// refresh of hundreds of skills cheap: no path walk from the root and no
// os.FileInfo to allocate per skill.
func statAt(dir *os.File, rel string) (stamp, error) {
	var st unix.Stat_t
	var err error
	for {
		if err = unix.Fstatat(int(dir.Fd()), rel, &st, 0); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return stamp{}, &fs.PathError{Op: "stat", Path: rel, Err: err}
	}
	return stamp{mtime: st.Mtim.Nano(), size: st.Size, ok: true}, nil
}
