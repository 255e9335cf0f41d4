package pgstore

import (
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lease is a session's turn held by this process: the connection that
// holds the session's advisory lock. mu makes one user of conn at a time
// (a pgx connection is not safe for concurrent use).
type lease struct {
	mu   sync.Mutex
	conn *pgxpool.Conn
}

// heldLease is the lease this process holds on session id, or nil.
func (s *Store) heldLease(id string) *lease {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.leases[id]
}
