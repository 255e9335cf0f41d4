package session

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

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
	h, err := s.hold(id)
	if err != nil {
		return "", err
	}
	defer h.release()
	e := h.e

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
	stamp := filepath.Join(archiveDir, id+"."+s.now().UTC().Format(ArchiveStamp))
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
	e, err := s.lookup(id)
	if err != nil {
		return Meta{}, nil, err
	}
	if newID == "" {
		newID = uuid.NewString()
	} else if err := protocol.ValidateSessionID(newID); err != nil {
		return Meta{}, nil, fmt.Errorf("%w: %v", ErrInvalidID, err)
	}
	res, err := s.scan(id, func(i int) bool { return n <= 0 || i < n })
	if err != nil {
		return Meta{}, nil, s.readFailed(id, e, "fork", err)
	}
	src, _ := s.Get(id)
	_, created, err := s.create(Meta{SessionID: newID, Channel: src.Channel, ForkedFrom: id, Title: ForkTitle(src)})
	if err != nil {
		return Meta{}, nil, err
	}
	if !created {
		return Meta{}, nil, fmt.Errorf("session %s: fork: target ID %s already exists", id, newID)
	}
	m, err := s.Append(newID, res.messages...)
	return m, res.corrupt, err
}

// ErrLive is returned by Unarchive when a live session has the ID.
var ErrLive = errors.New("a live session has this ID")

// ErrBusy is returned by Archive when a store that knows of the session's
// running turns (PostgreSQL: any gateway's) has one running.
var ErrBusy = errors.New("a turn of this session is running")

// Archived is one archived copy of a session: its meta (rebuilt from the
// transcript when the archived meta file is missing or stale), when it was
// archived, and its transcript's name in the sessions directory.
type Archived struct {
	Meta
	ArchivedAt int64  `json:"archivedAt"` // Unix ms, from the file name
	File       string `json:"file"`       // archive/<id>.<UTC time>[-n].jsonl
	seq        int    // the -n of archives of one ID in one millisecond
}

// ArchiveStamp is the time format in archived file names.
const ArchiveStamp = "20060102T150405.000Z"

// archivedName parses an archived transcript's name, <id>.<UTC time>.jsonl
// or <id>.<UTC time>-<n>.jsonl (see archiveTranscript).
var archivedName = regexp.MustCompile(`^(.+)\.(\d{8}T\d{6}\.\d{3}Z)(?:-(\d+))?\.jsonl$`)

// ListArchived returns the archived copies of every session, newest first.
func (s *Store) ListArchived() ([]Archived, error) {
	d, _, err := safeopen.OpenIn(s.root, archiveDir, safeopen.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session store %s: archive: %w", s.dir, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("session store %s: archive: %w", s.dir, err)
	}
	var out []Archived
	for _, name := range names {
		a, ok := s.archived(name)
		if ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Archived) int {
		return cmp.Or(cmp.Compare(b.ArchivedAt, a.ArchivedAt), cmp.Compare(b.seq, a.seq), strings.Compare(a.SessionID, b.SessionID))
	})
	return out, nil
}

// archived describes the archived transcript name; ok is false for any
// other file of the archive directory, and for one that cannot be read
// (logged).
func (s *Store) archived(name string) (Archived, bool) {
	p := archivedName.FindStringSubmatch(name)
	if p == nil || protocol.ValidateSessionID(p[1]) != nil {
		return Archived{}, false
	}
	at, err := time.Parse(ArchiveStamp, p[2])
	if err != nil {
		return Archived{}, false
	}
	seq, _ := strconv.Atoi(p[3]) // "" (no suffix) is 0
	id, base := p[1], filepath.Join(archiveDir, strings.TrimSuffix(name, jsonlExt))
	fi, err := s.stat(base + jsonlExt)
	if err != nil || !fi.Mode().IsRegular() {
		return Archived{}, false
	}
	m, err := s.readMeta(base)
	if err != nil || m.SessionID != id || m.Size != fi.Size() {
		if m, err = s.scanMeta(id, base, m); err != nil {
			s.log.Warn("archived session skipped: cannot read transcript", "file", base+jsonlExt, "err", err)
			return Archived{}, false
		}
	}
	return Archived{Meta: m, ArchivedAt: at.UnixMilli(), File: base + jsonlExt, seq: seq}, true
}

// ResolveArchived returns the archived session ID that id names: exactly,
// else as the unique prefix of one (as Resolve for live sessions).
func (s *Store) ResolveArchived(id string) (string, error) {
	all, err := s.ListArchived()
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(all))
	for _, a := range all {
		if a.SessionID == id {
			return id, nil
		}
		if !slices.Contains(ids, a.SessionID) {
			ids = append(ids, a.SessionID)
		}
	}
	return PickPrefix(id, ids, fmt.Errorf("archived session %s: %w", id, ErrNotFound))
}

// Unarchive moves the newest archived copy of session id back to the live
// sessions, and indexes it. It returns that copy and how many copies there
// were (the others stay archived). A live session with the ID is ErrLive:
// nothing is replaced.
//
// The meta file goes first, so that a process that sees the transcript
// arrive (a gateway's Watch) finds its meta beside it rather than rebuild
// one without its channel and title; the transcript's move, which refuses
// to replace a file, is what decides against a session created with the ID
// meanwhile.
func (s *Store) Unarchive(id string) (Archived, int, error) {
	all, err := s.ListArchived()
	if err != nil {
		return Archived{}, 0, err
	}
	var copies []Archived // newest first, as all
	for _, a := range all {
		if a.SessionID == id {
			copies = append(copies, a)
		}
	}
	if len(copies) == 0 {
		return Archived{}, 0, fmt.Errorf("archived session %s: %w", id, ErrNotFound)
	}
	live := func() error { return fmt.Errorf("session %s: unarchive: %w", id, ErrLive) }
	s.refresh(id) // an index entry whose transcript was archived elsewhere goes
	if _, err := s.root.Lstat(id + jsonlExt); !errors.Is(err, fs.ErrNotExist) {
		return Archived{}, 0, live()
	}
	a := copies[0]
	base := strings.TrimSuffix(a.File, jsonlExt)
	err = renameNoReplace(s.root, base+metaExt, id+metaExt)
	if errors.Is(err, fs.ErrExist) {
		// A meta without its transcript (a crash between an archive's two
		// moves): a cache of nothing, replaced.
		err = s.root.Rename(base+metaExt, id+metaExt)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Archived{}, 0, fmt.Errorf("session %s: unarchive: %w", id, err)
	}
	if err := renameNoReplace(s.root, a.File, id+jsonlExt); err != nil {
		renameNoReplace(s.root, id+metaExt, base+metaExt) // best effort: back beside its transcript
		if errors.Is(err, fs.ErrExist) {
			return Archived{}, 0, live()
		}
		return Archived{}, 0, fmt.Errorf("session %s: unarchive: %w", id, err)
	}
	if s.fsync {
		s.syncDir(".")
		s.syncDir(archiveDir)
	}
	m, err := s.Get(id)
	if err != nil {
		return Archived{}, 0, err
	}
	a.Meta = m
	return a, len(copies), nil
}
