package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/miniclaw/miniclaw/internal/session"
)

// LockTurn is a stand-in until lease.go has the real one (helper pglease
// deletes this file).
func (s *Store) LockTurn(ctx context.Context, id string, timeout time.Duration, waiting func()) (session.Lease, error) {
	return nil, errors.New("pgstore: LockTurn is not implemented yet")
}
