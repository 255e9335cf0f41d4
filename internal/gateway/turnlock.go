package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/session"
)

// endCode is the error code of a turn that failed, and the level to log it
// at: aborted or shutting_down when its context was cancelled, else
// otherwise.
func (s *Server) endCode(ctx context.Context, otherwise protocol.Code) (protocol.Code, func(string, ...any)) {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, core.ErrInterrupted):
		return protocol.CodeShuttingDown, s.log.Warn
	case errors.Is(cause, core.ErrAborted):
		return protocol.CodeAborted, s.log.Info
	}
	return otherwise, s.log.Warn
}

// waitTurn takes the session's cross-process turn lock (see
// session.TurnLock) before the turn touches the transcript, so a turn of the
// same session in another process on the data dir never interleaves with
// this one. While it waits, the session's clients get a status event. On
// failure it returns the error event that ends the turn; nothing was saved.
func (s *Server) waitTurn(ctx context.Context, id string, log *slog.Logger) (*session.TurnLock, []byte) {
	waited := false
	lock, err := s.store.LockTurn(ctx, id, s.opt.TurnLockTimeout, func() {
		waited = true
		log.Info("turn waits for another process's turn on the session")
		s.broadcastStatus(id, protocol.StatusWaiting, "waiting for another process's turn on this session")
	})
	if err == nil {
		if waited {
			s.broadcastStatus(id, protocol.StatusRunning, "another process's turn on this session is over: this one runs")
		}
		return lock, nil
	}
	code, level := s.endCode(ctx, protocol.CodeInternal)
	msg := "stopped while waiting for another process's turn on this session; the message was not saved"
	switch {
	case errors.Is(err, session.ErrTurnLockTimeout):
		code, level = protocol.CodeConflict, s.log.Warn
		msg = fmt.Sprintf("another process has been running a turn of this session for over %s; the message was not saved, try again later", s.opt.TurnLockTimeout)
	case code == protocol.CodeInternal:
		msg = "the turn could not start: " + err.Error()
	}
	level("turn not run: no turn lock", "session", id, "code", code, "err", err)
	return nil, errorEvent(code, msg, id)
}

func (s *Server) broadcastStatus(id, state, message string) {
	s.hub.broadcast(id, protocol.Encode(protocol.Status{Type: protocol.TypeStatus, SessionID: id, State: state, Message: message}))
}
