package session

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rename sets a session's title (trimmed; one line of at most maxTitleLen
// runes) and writes its meta file at once. The title is kept in the meta:
// a meta rebuilt from the transcript keeps the title of the meta it
// replaces (see scanMeta), as it keeps the channel; a store that has the
// session open takes it up when it next writes the meta (TitledAt, see
// withRename) rather than writing its older title back.
func (s *Store) Rename(id, title string) (Meta, error) {
	title = strings.TrimSpace(title)
	if err := ValidateTitle(title); err != nil {
		return Meta{}, fmt.Errorf("session %s: rename: %w", id, err)
	}
	// The transcript's lock orders the meta write with appends and
	// archives in other processes, as writeEntryMeta's.
	h, err := s.hold(id)
	if err != nil {
		return Meta{}, err
	}
	defer h.release()
	meta, err := s.caughtUp(id, h)
	if err != nil {
		return Meta{}, err
	}
	meta.Title, meta.TitledAt = title, max(s.now().UnixMilli(), meta.TitledAt+1)
	s.mu.Lock()
	h.e.meta = meta
	delete(s.dirty, id)
	s.mu.Unlock()
	if err := s.saveMeta(id, meta); err != nil {
		return Meta{}, fmt.Errorf("session %s: rename: %w", id, err)
	}
	return meta, nil
}

// withRename is m with the title of the session's meta file when another
// process renamed the session after m's title was set: m is about to be
// written over that file, under the transcript's lock.
func (s *Store) withRename(id string, m Meta) Meta {
	disk, err := s.readMeta(id)
	if err == nil && disk.SessionID == id && disk.TitledAt > m.TitledAt {
		m.Title, m.TitledAt = disk.Title, disk.TitledAt
	}
	return m
}

// ValidateTitle checks a title a user gives (already trimmed): shown on one
// line in lists. Its errors name the field and the limit.
func ValidateTitle(title string) error {
	if title == "" {
		return fmt.Errorf("title is empty")
	}
	if n := utf8.RuneCountInString(title); n > maxTitleLen {
		return fmt.Errorf("title is %d characters, the limit is %d", n, maxTitleLen)
	}
	for i, r := range title {
		if unicode.IsControl(r) {
			return fmt.Errorf("title has %q at byte %d; control characters are not allowed", r, i)
		}
	}
	return nil
}
