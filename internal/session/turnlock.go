package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/miniclaw/miniclaw/internal/filelock"
)

// lockExt names a session's turn lock file, <id>.lock. It is neither a
// transcript nor a meta file, so the index, listings and Archive never see
// it.
const lockExt = ".lock"

// ErrTurnLockTimeout is returned by LockTurn when another process held the
// session's turn for longer than the caller was willing to wait.
var ErrTurnLockTimeout = errors.New("another process is running a turn of this session")

// TurnLock is a session's turn lock, held from before a turn appends the
// user message until its reply is written, so two processes on one data dir
// (two gateways, or a gateway and a one-shot agent) never interleave turns
// of one session: each reply answers its own message.
//
// It is an flock on sessions/<id>.lock, apart from the transcript's own
// append lock, so reads, appends and the CLI never wait for a turn. The
// kernel releases it when its holder dies. The file is created 0600 and
// left in place: deleting it would race, since a process that opened it
// just before could then lock the deleted file while another creates and
// locks a new one, and both would run a turn.
type TurnLock struct{ f *os.File }

// LockTurn takes the turn lock of session id. When another process holds
// it, waiting is called once (to tell the session's clients) and LockTurn
// waits until it is free, ctx ends (it returns context.Cause(ctx)) or,
// when timeout > 0, timeout passes (an error matching ErrTurnLockTimeout).
// Within one process, turns of a session are ordered by the caller: a
// second LockTurn on the same session would wait like another process.
func (s *Store) LockTurn(ctx context.Context, id string, timeout time.Duration, waiting func()) (Lease, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	path := filepath.Join(s.dir, id+lockExt)
	f, err := s.openFile(id+lockExt, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("session %s: turn lock: %w", id, err)
	}
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrTurnLockTimeout)
		defer cancel()
	}
	if err := filelock.LockContext(wctx, f, waiting); err != nil {
		f.Close()
		if errors.Is(err, ErrTurnLockTimeout) {
			return nil, fmt.Errorf("session %s: %w: gave up after waiting %s for %s", id, err, timeout, path)
		}
		return nil, fmt.Errorf("session %s: waiting for the turn lock: %w", id, err)
	}
	return &TurnLock{f: f}, nil
}

// Unlock releases the lock. It must be called exactly once.
func (l *TurnLock) Unlock() { l.f.Close() }

// Lost is nil: the kernel keeps an flock for as long as its holder lives.
func (l *TurnLock) Lost() <-chan struct{} { return nil }
