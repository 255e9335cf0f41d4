package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/filelock"
)

// Append adds messages to the end of a session's transcript in one write:
// either all of them reach the file or, after a crash, a torn tail that the
// next append cuts off. It returns once the bytes are written (and fsynced
// when the store was opened with Fsync). Writers to one session are
// serialised in this process and, through flock, across processes.
func (s *Store) Append(id string, msgs ...core.Message) (Meta, error) {
	if len(msgs) == 0 {
		return s.Get(id)
	}
	var buf bytes.Buffer
	for i, m := range msgs {
		if m.Role == "" {
			return Meta{}, fmt.Errorf("session %s: append: message %d has no role", id, i)
		}
		b, err := core.MarshalJSON(m)
		if err != nil {
			return Meta{}, fmt.Errorf("session %s: append: %w", id, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	h, err := s.hold(id)
	if err != nil {
		return Meta{}, err
	}
	defer h.release()
	meta, err := s.caughtUp(id, h)
	if err != nil {
		return Meta{}, err
	}
	if _, err := h.f.Write(buf.Bytes()); err != nil {
		// Cut off whatever part was written so the file ends on a line.
		h.f.Truncate(meta.Size)
		return Meta{}, fmt.Errorf("session %s: append: %w", id, err)
	}
	if s.fsync {
		if err := h.f.Sync(); err != nil {
			return Meta{}, fmt.Errorf("session %s: append: fsync: %w", id, err)
		}
	}
	meta.Size += int64(buf.Len())
	meta.observe(msgs)
	// The meta file is a cache, written later by the flusher (a temp file
	// and a rename cost several times the append itself). Until then it
	// describes a shorter file, and whoever reads it folds in the lines
	// past its size (see extend).
	s.mu.Lock()
	h.e.meta = meta
	s.dirty[id] = h.e
	s.mu.Unlock()
	s.changes.Add(1)
	return meta, nil
}

// held is a session held for a write: its entry's mutex (against this
// process's writers) and its transcript's flock (against every process's),
// with the transcript open for appending.
type held struct {
	e    *entry
	f    *os.File
	size int64 // the transcript's size under the lock
}

// hold looks session id up and holds it for a write (see held).
func (s *Store) hold(id string) (held, error) {
	e, err := s.lookup(id)
	if err != nil {
		return held{}, err
	}
	e.mu.Lock()
	f, size, err := s.openLocked(id, e)
	if err != nil {
		e.mu.Unlock()
		return held{}, err
	}
	return held{e: e, f: f, size: size}, nil
}

// release closes the transcript, which drops the flock, then frees the
// entry for this process's other writers.
func (h held) release() {
	h.f.Close()
	h.e.mu.Unlock()
}

// caughtUp is the held session's meta brought in line with its transcript
// under the lock (see catchUp).
func (s *Store) caughtUp(id string, h held) (Meta, error) {
	s.mu.Lock()
	meta := h.e.meta
	s.mu.Unlock()
	return s.catchUp(id, h.f, h.size, meta)
}

// openLocked opens the JSONL of session id, indexed as e, for appending
// and takes its flock, and returns the file's size under the lock. If the
// file was renamed (archived) while this process waited for the lock, it
// refuses rather than write into the archive. A transcript that is gone
// (archived by another process) is ErrNotFound, and e leaves the index.
func (s *Store) openLocked(id string, e *entry) (*os.File, int64, error) {
	f, err := s.openFile(id+jsonlExt, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, s.vanished(id, e)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("session %s: open: %w", id, err)
	}
	if err := filelock.Lock(f); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("session %s: lock: %w", id, err)
	}
	held, err1 := f.Stat()
	onDisk, err2 := s.stat(id + jsonlExt)
	if err := errors.Join(err1, err2); err != nil || !os.SameFile(held, onDisk) {
		f.Close()
		s.forget(id, e)
		return nil, 0, fmt.Errorf("session %s: %w (archived while waiting)", id, ErrNotFound)
	}
	return f, held.Size(), nil
}

// catchUp brings meta in line with the file under the lock: it counts lines
// another process appended since this one last wrote, and cuts a torn tail
// left by a crashed writer (saving the bytes to <id>.jsonl.torn for
// inspection), so the next line starts on a line boundary. size is the
// file's size under the lock.
func (s *Store) catchUp(id string, f *os.File, size int64, meta Meta) (Meta, error) {
	if size == meta.Size && !tornTail(f, size) {
		return meta, nil
	}
	if size > meta.Size {
		// Another writer appended: fold its lines into the meta.
		grown, torn, ok, err := extend(f, meta, size)
		if err != nil {
			return meta, fmt.Errorf("session %s: read: %w", id, err)
		}
		if ok && torn > 0 {
			return s.cutTorn(id, f, grown, torn)
		}
		if ok {
			return grown, nil
		}
	}
	// Shrunk, or our own view was torn: recount from scratch.
	res, err := scanReader(io.NewSectionReader(f, 0, size), nil)
	if err != nil {
		return meta, fmt.Errorf("session %s: read: %w", id, err)
	}
	fresh := Meta{SessionID: id, Channel: meta.Channel, CreatedAt: meta.CreatedAt, ForkedFrom: meta.ForkedFrom, MessageCount: res.lines, Size: size}
	for _, m := range res.messages {
		fresh.observeOne(m)
	}
	if res.torn > 0 {
		return s.cutTorn(id, f, fresh, res.torn)
	}
	return fresh, nil
}

// extend folds the lines of f between meta.Size and size into meta, whose
// Size becomes size. torn is the length of an unfinished last line among
// them. ok is false when meta.Size does not end a line of f: the meta
// describes some other file, and the caller must recount from the start.
func extend(f *os.File, meta Meta, size int64) (grown Meta, torn int, ok bool, err error) {
	if meta.Size < 0 || meta.Size > size || tornTail(f, meta.Size) {
		return meta, 0, false, nil
	}
	res, err := scanReader(io.NewSectionReader(f, meta.Size, size-meta.Size), nil)
	if err != nil {
		return meta, 0, false, err
	}
	for _, m := range res.messages {
		meta.observeOne(m)
	}
	meta.MessageCount += res.lines
	meta.Size = size
	return meta, res.torn, true, nil
}

// tornTail reports whether the byte before size is not a newline.
func tornTail(f *os.File, size int64) bool {
	if size == 0 {
		return false
	}
	var b [1]byte
	_, err := f.ReadAt(b[:], size-1)
	return err == nil && b[0] != '\n'
}

func (s *Store) cutTorn(id string, f *os.File, meta Meta, torn int) (Meta, error) {
	good := meta.Size - int64(torn)
	frag := make([]byte, torn)
	if _, err := f.ReadAt(frag, good); err == nil {
		// A pipe there would block the append for good: it is refused.
		tf, err := s.openFile(id+jsonlExt+".torn", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			s.log.Warn("session torn tail not saved", "session", id, "err", err)
		} else {
			tf.Write(append(frag, '\n'))
			tf.Close()
		}
	}
	if err := f.Truncate(good); err != nil {
		return meta, fmt.Errorf("session %s: repair torn tail: %w", id, err)
	}
	s.log.Warn("session transcript repaired: torn last line removed", "session", id, "bytes", torn, "saved_to", s.jsonlPath(id)+".torn")
	meta.Size = good
	return meta, nil
}
