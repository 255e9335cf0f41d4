package session

import (
	"context"
	"io"
	"time"

	"github.com/miniclaw/miniclaw/internal/core"
)

// Backend is where sessions live: the files store of this package (Store:
// JSONL transcripts in a sessions directory, the default) or PostgreSQL
// (package pgstore, for several gateways on one database). Everything above
// the store (lanes, the agent, the API, the CLI) goes through it, so it
// runs on either, and what users see of a transcript (Export, Page) is the
// same bytes on both.
//
// Errors: a session that does not exist matches ErrNotFound, a bad ID
// ErrInvalidID, an ambiguous prefix ErrAmbiguous, an ID taken by a live
// session ErrLive, a turn that waited too long ErrTurnLockTimeout.
type Backend interface {
	// Create creates session id with channel, or returns the existing one
	// (created false) unchanged.
	Create(id, channel string) (m Meta, created bool, err error)
	Get(id string) (Meta, error)
	// Resolve is the ID that id names exactly or as the unique prefix of a
	// live session.
	Resolve(id string) (string, error)
	// List is every live session's meta, most recently updated first.
	List() ([]Meta, error)
	// Len is the number of live sessions (0 when it cannot be counted).
	Len() int
	// Latest is the most recently updated session of channel.
	Latest(channel string) (m Meta, found bool, err error)

	// Append adds msgs at the end of session id's transcript, all or
	// none; the session must exist (Create).
	Append(id string, msgs ...core.Message) (Meta, error)
	Load(id string) ([]core.Message, []LineError, error)
	// Page is up to limit lines from line index offset; offset < 0 means
	// the last limit lines.
	Page(id string, offset, limit int) (Page, error)
	// Tail is the last n messages.
	Tail(id string, n int) ([]core.Message, []LineError, error)
	// Recent is what a turn sends to the model (see Recent).
	Recent(id string, n int) (Recent, error)
	// Export writes the transcript as JSONL, one line per message, as
	// stored: `miniclaw sessions export` prints it.
	Export(w io.Writer, id string) error

	Rename(id, title string) (Meta, error)
	// Archive takes a session out of the live ones, keeping every message;
	// it returns the archived copy's name (Archived.File).
	Archive(id string) (string, error)
	// Fork creates newID (a new UUID when empty) holding the first n
	// messages of id (n = 0: all).
	Fork(id string, n int, newID string) (Meta, []LineError, error)
	// ListArchived is every archived copy, most recently archived first.
	ListArchived() ([]Archived, error)
	ResolveArchived(id string) (string, error)
	// Unarchive makes the newest archived copy of id live again, and says
	// how many archived copies of id there were.
	Unarchive(id string) (Archived, int, error)

	// LockTurn takes session id's turn: one turn of a session at a time
	// across every process on the store. When another holds it, waiting is
	// called once and LockTurn waits, in order, until it is free, ctx ends
	// (context.Cause(ctx) is returned) or, when timeout > 0, timeout passes
	// (an error matching ErrTurnLockTimeout).
	LockTurn(ctx context.Context, id string, timeout time.Duration, waiting func()) (Lease, error)

	// Where names the store for people: its sessions directory, or the
	// database (without its password). ArchiveWhere names where archived
	// copies are.
	Where() string
	ArchiveWhere() string
	// CheckWritable reports whether the store can take a write now, for
	// readiness probes.
	CheckWritable() error
	// Watch follows the changes other processes make (the files store
	// watches its directory; a database needs nothing).
	Watch() error
	Close()
}

// Lease is a session's turn, held from before the turn appends its user
// message until its reply is stored.
type Lease interface {
	// Lost is closed when the store can no longer vouch for the lease (the
	// database connection holding it broke): another process may take the
	// session, so the turn must stop. nil when it cannot be lost.
	Lost() <-chan struct{}
	// Unlock releases the lease. It must be called exactly once.
	Unlock()
}

var _ Backend = (*Store)(nil)
