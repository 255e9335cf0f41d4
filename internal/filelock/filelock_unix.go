//go:build unix

// Package filelock takes the exclusive advisory locks that serialise
// appends across processes (two gateways, or the CLI beside a gateway) and
// turns of one session across gateways. They are flock locks: they belong
// to the open file and vanish when the holder closes it or dies, so a
// crashed process can never leave a file locked.
package filelock

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive lock on f, blocking until it is free. Closing f
// releases it.
func Lock(f *os.File) error { return flock(f, unix.LOCK_EX) }

// Poll intervals of LockContext: short at first, so a lock released soon
// is taken soon, then at most maxPoll apart, which bounds how late a
// waiter notices a release.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// LockContext takes an exclusive lock on f like Lock, but gives up when ctx
// ends, returning context.Cause(ctx). When the lock is held elsewhere it
// calls waiting once, before it starts to wait. It polls (a blocked flock
// cannot be interrupted), so no goroutine is left behind.
func LockContext(ctx context.Context, f *os.File, waiting func()) error {
	poll := firstPoll
	for first := true; ; first = false {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK {
			return err
		}
		if first && waiting != nil {
			waiting()
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		poll = min(2*poll, maxPoll)
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
