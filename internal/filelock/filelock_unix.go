//go:build unix

// Package filelock takes the exclusive advisory locks that serialise
// appends across processes (two gateways, or the CLI beside a gateway).
// They are flock locks: they belong to the open file and vanish when the
// holder closes it or dies, so a crashed process can never leave a file
// locked.
package filelock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive lock on f, blocking until it is free. Closing f
// releases it.
func Lock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			return err
		}
	}
}
