package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Archive moves a session's files to <sessions>/archive/<id>.<UTC time>.jsonl
// (and .meta.json; <UTC time>-<n> when that name is taken) and removes it
// from the index. Nothing is deleted or replaced. It
// returns the archived transcript's path. The caller makes sure no turn is
// running on the session; appends that race with it fail with ErrNotFound.
func (s *Store) Archive(id string) (string, error) {
	e, err := s.lookup(id)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	f, _, err := s.openLocked(id)
	if err != nil {
		return "", err
	}
	defer f.Close()

	// The archived meta must describe the whole transcript.
	s.mu.Lock()
	m := e.meta
	delete(s.dirty, id)
	s.mu.Unlock()
	if err := s.saveMeta(id, s.withRename(id, m)); err != nil {
		s.log.Warn("session meta not written", "session", id, "err", err)
	}
	if err := s.root.MkdirAll(archiveDir, 0o700); err != nil {
		return "", fmt.Errorf("session %s: archive: %w", id, safeopen.InRoot(s.root, archiveDir, err))
	}
	base, err := s.archiveTranscript(id)
	if err != nil {
		return "", fmt.Errorf("session %s: archive: %w", id, err)
	}
	if err := renameNoReplace(s.root, id+metaExt, base+metaExt); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("session archived without its meta", "session", id, "err", err)
	}
	if s.fsync {
		s.syncDir(".")
		s.syncDir(archiveDir)
	}
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
	s.keepRecent(e, nil)
	return filepath.Join(s.dir, base+jsonlExt), nil
}

// maxArchiveSuffix bounds the search for a free archive name: more
// archives of one ID in one millisecond than this is not a clock tick.
const maxArchiveSuffix = 1000

// archiveTranscript moves a session's JSONL into the archive directory
// under <id>.<UTC time>.jsonl, or <id>.<UTC time>-<n>.jsonl when archives
// of the same ID in the same millisecond took the names before: never over
// an existing archive. It returns the name, in the store's root, without
// its extension.
func (s *Store) archiveTranscript(id string) (string, error) {
	stamp := filepath.Join(archiveDir, id+"."+s.now().UTC().Format("20060102T150405.000Z"))
	base := stamp
	for n := 1; ; n++ {
		err := renameNoReplace(s.root, id+jsonlExt, base+jsonlExt)
		if !errors.Is(err, fs.ErrExist) {
			return base, err
		}
		if n > maxArchiveSuffix {
			return "", fmt.Errorf("%s and %d more names are taken: %w", stamp+jsonlExt, maxArchiveSuffix, err)
		}
		base = fmt.Sprintf("%s-%d", stamp, n)
	}
}

// Fork creates a new session holding the first n messages of id (all of them
// when n <= 0). Tool records live inside their assistant message, so a cut
// at any message keeps every tool_use with its result. newID may be "" for a
// fresh UUID. Lines that cannot be decoded are not copied and are returned.
// The fork's title says what it is a fork of ("Fork of <title>").
func (s *Store) Fork(id string, n int, newID string) (Meta, []LineError, error) {
	if _, err := s.lookup(id); err != nil {
		return Meta{}, nil, err
	}
	if newID == "" {
		newID = uuid.NewString()
	} else if err := protocol.ValidateSessionID(newID); err != nil {
		return Meta{}, nil, fmt.Errorf("%w: %v", ErrInvalidID, err)
	}
	res, err := s.scan(id, func(i int) bool { return n <= 0 || i < n })
	if err != nil {
		return Meta{}, nil, fmt.Errorf("session %s: fork: %w", id, err)
	}
	src, _ := s.Get(id)
	_, created, err := s.create(Meta{SessionID: newID, Channel: src.Channel, ForkedFrom: id, Title: forkTitle(src)})
	if err != nil {
		return Meta{}, nil, err
	}
	if !created {
		return Meta{}, nil, fmt.Errorf("session %s: fork: target ID %s already exists", id, newID)
	}
	m, err := s.Append(newID, res.messages...)
	return m, res.corrupt, err
}
