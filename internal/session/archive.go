package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/miniclaw/miniclaw/internal/protocol"
)

// Archive moves a session's files to <sessions>/archive/<id>.<UTC time>.jsonl
// (and .meta.json) and removes it from the index. Nothing is deleted. It
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
	if err := s.saveMeta(id, m); err != nil {
		s.log.Warn("session meta not written", "session", id, "err", err)
	}
	dir := filepath.Join(s.dir, archiveDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("session %s: archive: %w", id, err)
	}
	stamp := s.now().UTC().Format("20060102T150405.000Z")
	base := filepath.Join(dir, id+"."+stamp)
	if err := os.Rename(s.jsonlPath(id), base+jsonlExt); err != nil {
		return "", fmt.Errorf("session %s: archive: %w", id, err)
	}
	if err := os.Rename(s.metaPath(id), base+metaExt); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("session archived without its meta", "session", id, "err", err)
	}
	if s.fsync {
		syncDir(s.dir)
		syncDir(dir)
	}
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
	return base + jsonlExt, nil
}

// Fork creates a new session holding the first n messages of id (all of them
// when n <= 0). Tool records live inside their assistant message, so a cut
// at any message keeps every tool_use with its result. newID may be "" for a
// fresh UUID. Lines that cannot be decoded are not copied and are returned.
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
	_, created, err := s.create(newID, src.Channel, id)
	if err != nil {
		return Meta{}, nil, err
	}
	if !created {
		return Meta{}, nil, fmt.Errorf("session %s: fork: target ID %s already exists", id, newID)
	}
	m, err := s.Append(newID, res.messages...)
	return m, res.corrupt, err
}
