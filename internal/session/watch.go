package session

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Watch makes the index follow what other processes (`miniclaw sessions`,
// `miniclaw agent`, another gateway) do in the sessions directory, as it
// happens: a session archived elsewhere leaves the index, one created or
// forked elsewhere joins it, a title set elsewhere replaces the one held
// here. Without it the index learns of such changes only when something
// touches the session. The watch runs until Close.
//
// It watches the directory with inotify (fsnotify) rather than checking
// the disk on each List: a list is then as cheap as before, and a change
// costs work for the files it names, where a check on each list would
// re-read the directory (and stat every meta file, to see a rename) each
// time the directory's modification time moved, which this store's own
// meta writes do every second while sessions are active, and the time's
// granularity can hide two changes in a row. Correctness does not depend
// on the watch: an operation on a session whose transcript is gone answers
// ErrNotFound and drops it from the index (see vanished), and when the
// kernel's event queue overflows the whole directory is compared with the
// index again.
func (s *Store) Watch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("session store %s: watch: %w", s.dir, err)
	}
	if err := w.Add(s.dir); err != nil {
		w.Close()
		return fmt.Errorf("session store %s: watch: %w", s.dir, err)
	}
	s.watching.Go(func() {
		defer w.Close()
		for {
			select {
			case ev := <-w.Events:
				// A write is an append (or a meta being written under
				// its temp name): the names that come and go say
				// everything the index follows.
				if ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
					if id, ok := sessionOfFile(ev.Name); ok {
						s.refresh(id)
					}
				}
			case err := <-w.Errors:
				if errors.Is(err, fsnotify.ErrEventOverflow) {
					s.log.Warn("sessions directory: too many changes at once to follow one by one; comparing it with the index", "dir", s.dir)
					s.resync()
				} else {
					s.log.Warn("sessions directory watch", "dir", s.dir, "err", err)
				}
			case <-s.stop:
				return
			}
		}
	})
	return nil
}

// sessionOfFile is the session whose transcript or meta file path names.
// Temp files, the snapshot, locks and torn tails name none.
func sessionOfFile(path string) (string, bool) {
	name := filepath.Base(path)
	id, ok := strings.CutSuffix(name, jsonlExt)
	if !ok {
		id, ok = strings.CutSuffix(name, metaExt)
	}
	return id, ok && protocol.ValidateSessionID(id) == nil
}

// refresh brings the index entry of id in line with the directory after a
// change to one of its files. A session whose transcript is gone leaves
// the index. A new one joins it once its meta file is there too: its
// creator writes the meta right after the transcript, and indexing it
// before would rebuild a meta without its channel or a fork's title. An
// indexed one takes up a newer title, or the counts of a longer transcript
// another process appended to, from its meta file.
func (s *Store) refresh(id string) {
	s.mu.Lock()
	e := s.sessions[id]
	s.mu.Unlock()
	_, err := s.root.Lstat(id + jsonlExt)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if e != nil {
			s.forget(id, e)
		}
	case err != nil:
	case e == nil:
		if _, err := s.root.Lstat(id + metaExt); err == nil {
			s.lookup(id) // errors (a transcript that is no regular file) are logged by operations on it
		}
	default:
		s.takeUp(id, e)
	}
}

// takeUp folds into e, the index entry of id, what another process wrote
// to its meta file: a title set later than e's, and the counts of a longer
// transcript when the meta describes the file as it is.
func (s *Store) takeUp(id string, e *entry) {
	e.mu.Lock() // no append of this process runs meanwhile
	defer e.mu.Unlock()
	disk, err := s.readMeta(id)
	if err != nil || disk.SessionID != id {
		return
	}
	fi, err := s.stat(id + jsonlExt)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[id] != e {
		return
	}
	m := e.meta
	if disk.TitledAt > m.TitledAt {
		m.Title, m.TitledAt = disk.Title, disk.TitledAt
	}
	if disk.Size > m.Size && disk.Size == fi.Size() {
		m.Size, m.MessageCount, m.UpdatedAt = disk.Size, disk.MessageCount, disk.UpdatedAt
		if m.Title == "" {
			m.Title = disk.Title
		}
	}
	if m != e.meta {
		e.meta = m
		s.changes.Add(1)
	}
}

// resync compares the whole directory with the index, refreshing every
// session either names: after the watch lost events.
func (s *Store) resync() {
	d, _, err := safeopen.OpenIn(s.root, ".", safeopen.Dir)
	if err != nil {
		s.log.Warn("sessions directory not read", "dir", s.dir, "err", err)
		return
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		s.log.Warn("sessions directory not read", "dir", s.dir, "err", err)
		return
	}
	ids := map[string]bool{}
	for _, name := range names {
		if id, ok := sessionOfFile(name); ok {
			ids[id] = true
		}
	}
	s.mu.Lock()
	for id := range s.sessions {
		ids[id] = true
	}
	s.mu.Unlock()
	for id := range ids {
		s.refresh(id)
	}
}
