// Package session is the transcript store: one JSONL file per
// session (<id>.jsonl, one Message per line) and a meta file beside it
// (<id>.meta.json), with an in-memory index rebuilt at startup.
//
// Concurrency: all methods are safe for concurrent use. Appends to one
// session are serialised in process by a per-session mutex and across
// processes by an flock on the JSONL file, held only for the write, never for
// a turn. A process killed while holding the lock releases it with its file
// descriptors, so no crash leaves a session stuck.
package session

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miniclaw/miniclaw/internal/protocol"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// ErrNotFound is returned for a session ID the store does not hold.
var ErrNotFound = errors.New("session not found")

// ErrInvalidID is returned for an ID that cannot name a session file.
var ErrInvalidID = errors.New("invalid session ID")

// ErrAmbiguous is returned by Resolve for a prefix of more than one session ID.
var ErrAmbiguous = errors.New("ambiguous session ID prefix")

const (
	jsonlExt   = ".jsonl"
	metaExt    = ".meta.json"
	archiveDir = "archive"
)

// Options configure a Store.
type Options struct {
	// Fsync makes every append durable against power loss before it returns.
	// Without it an append survives a process crash but not a kernel crash.
	Fsync bool
	// Logger receives repair warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Workspace, when the sessions directory lies inside it (the default
	// data dir does), is the directory it is reached through, so that a
	// link the model's shell planted in place of the data dir or the
	// sessions directory cannot lead the store out of the workspace.
	Workspace string
}

// Store is the session store rooted at one sessions directory.
type Store struct {
	dir string
	// root is dir, opened once by Open: every file of the store is opened
	// in it, so a link the model planted (the data dir is in the workspace
	// by default, and the gateway is not confined as its shell is) to a
	// file outside (~/.bashrc) is refused, never read or written, and a
	// directory swapped for a link after Open is not followed.
	root  *os.Root
	fsync bool
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	sessions map[string]*entry
	dirty    map[string]*entry // appended to since their meta file was written
	// diskMu serialises index misses with creation, so that no lookup in
	// this process indexes a new JSONL before its creator has written its
	// meta and indexed it (which would cost the creator created=true and
	// the session its channel).
	diskMu sync.Mutex
	// flushMu makes Flush calls one at a time, so none returns while
	// another is still writing metas it took from dirty.
	flushMu sync.Mutex

	// changes counts what the index snapshot must follow: every meta file
	// written, every append, every session indexed after Open. snapshotOf
	// is its value when the snapshot on disk was last known to be current
	// (noSnapshot when it is not), so Close writes a snapshot only when one
	// is due: a read-only CLI command leaves a current one alone.
	changes    atomic.Uint64
	snapshotOf atomic.Uint64

	// cacheMu guards the Recent caches of the sessions (entry.recent),
	// kept in recentLRU, most recently used first, holding recentBytes
	// of transcript in all. It is never held while taking mu.
	cacheMu     sync.Mutex
	recentLRU   list.List
	recentBytes int64

	closeOnce sync.Once
	stop      chan struct{} // closed by Close: the flusher and the watch end
	flusher   sync.WaitGroup
	watching  sync.WaitGroup // the goroutine of Watch
}

// noSnapshot is snapshotOf while the snapshot on disk is not current.
const noSnapshot = ^uint64(0)

// metaFlushInterval is how long a meta file may lag behind its transcript
// while the process runs. Close writes every pending meta.
const metaFlushInterval = time.Second

// entry is one indexed session. mu serialises writers in this process; meta
// is guarded by Store.mu for readers and by mu for the writer that updates it.
type entry struct {
	mu   sync.Mutex
	meta Meta
	// recentMu makes one Recent at a time use the session's cache.
	// recent and recentSlot are guarded by Store.cacheMu.
	recentMu   sync.Mutex
	recent     *recentCache
	recentSlot *list.Element
}

// Open opens (creating if needed) the store in dir and rebuilds its index
// from the index snapshot and the meta files, repairing any meta that is
// missing, corrupt or stale. The store writes meta files in the background:
// call Close when done with it.
func Open(dir string, opt Options) (*Store, error) {
	root, err := safeopen.OpenDir(opt.Workspace, dir, true)
	if err != nil {
		return nil, fmt.Errorf("session store %s: %w", dir, err)
	}
	s := &Store{dir: dir, root: root, fsync: opt.Fsync, log: opt.Logger, now: opt.Now,
		sessions: map[string]*entry{}, dirty: map[string]*entry{}, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	stale, check, err := s.rebuildIndex()
	if err != nil {
		root.Close()
		return nil, err
	}
	s.snapshotOf.Store(noSnapshot)
	if !stale {
		s.snapshotOf.Store(s.changes.Load())
	}
	s.flusher.Go(func() { s.flushLoop(stale, check) })
	return s, nil
}

// flushLoop writes pending meta files every metaFlushInterval until Close.
// First, off the startup path, it repairs the meta files of sessions
// indexed from the snapshot that changed since (check), and writes a fresh
// snapshot when the old one did not describe every session.
func (s *Store) flushLoop(snapshotStale bool, check []*snapEntry) {
	s.repairMetaFiles(check)
	if snapshotStale {
		s.writeSnapshot()
	}
	t := time.NewTicker(metaFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Flush()
		case <-s.stop:
			return
		}
	}
}

// Flush writes the meta file of every session appended to since its meta
// was last written. When it returns they are written, also those a
// concurrent Flush (the background one) had taken on.
func (s *Store) Flush() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	pending := s.dirty
	s.dirty = map[string]*entry{}
	s.mu.Unlock()
	for id, e := range pending {
		s.writeEntryMeta(id, e)
	}
}

// writeEntryMeta writes the meta file of a session, unless it left the
// index or the directory (archived, here or by another process) meanwhile.
// Holding e.mu orders it with appends in this process; holding the
// transcript's flock, which Archive holds while it moves the files, orders
// it with archives in any process, so a meta is only ever written beside
// the transcript it describes, never back after it was archived.
func (s *Store) writeEntryMeta(id string, e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	m, indexed := e.meta, s.sessions[id] == e
	delete(s.dirty, id)
	s.mu.Unlock()
	if !indexed {
		return
	}
	f, size, err := s.openLocked(id, e)
	if errors.Is(err, ErrNotFound) {
		return
	}
	if err != nil {
		s.log.Warn("session meta not written", "session", id, "err", err)
		return
	}
	defer f.Close()
	if size != m.Size {
		// Another process appended since (and writes its own meta), or the
		// transcript is another file now: this meta would describe neither.
		return
	}
	m = s.withRename(id, m)
	s.mu.Lock()
	e.meta.Title, e.meta.TitledAt = m.Title, m.TitledAt
	s.mu.Unlock()
	if err := s.saveMeta(id, m); err != nil {
		// The transcript holds the messages; a stale meta is repaired from it.
		s.log.Warn("session meta not written", "session", id, "err", err)
	}
}

// saveMeta writes a session's meta file; the snapshot is then due.
func (s *Store) saveMeta(id string, m Meta) error {
	s.changes.Add(1)
	return writeMeta(s.root, id+metaExt, m)
}

// Close writes every pending meta file and, when anything changed since the
// last one, the index snapshot, so the next Open is fast; and stops the
// background writer. The store must not be
// used afterwards. It is safe to call more than once.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.flusher.Wait()
		s.watching.Wait()
		s.Flush()
		if s.changes.Load() != s.snapshotOf.Load() {
			s.writeSnapshot()
		}
		s.root.Close()
	})
}

// Dir is the sessions directory.
func (s *Store) Dir() string { return s.dir }

// Where is the sessions directory.
func (s *Store) Where() string { return s.dir }

// ArchiveWhere is the directory of archived transcripts.
func (s *Store) ArchiveWhere() string { return filepath.Join(s.dir, archiveDir) }

// The paths of a session's files, for messages; the store opens them by
// name in its root.
func (s *Store) jsonlPath(id string) string { return filepath.Join(s.dir, id+jsonlExt) }
func (s *Store) metaPath(id string) string  { return filepath.Join(s.dir, id+metaExt) }

// openFile opens name (a file of the sessions directory, or of its archive
// directory) in the store's root, as safeopen.OpenFileIn.
func (s *Store) openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, _, err := safeopen.OpenFileIn(s.root, name, flag, perm, safeopen.Regular)
	return f, err
}

// Export copies the transcript's complete lines. An append is one write
// of whole lines, so stopping at the last newline leaves out only an append
// still being written, never part of a line. The file is opened in the
// store's root (a pipe swapped in is refused, not waited on, and a link out
// of the sessions directory is not followed) and read up to the size fstat
// gave, so a file that keeps growing ends the copy too.
func (s *Store) Export(w io.Writer, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	f, fi, err := safeopen.OpenFileIn(s.root, id+jsonlExt, os.O_RDONLY, 0, safeopen.Regular)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, fi.Size()))
	if err != nil {
		return fmt.Errorf("session %s: export: %w", id, err)
	}
	_, err = w.Write(b[:bytes.LastIndexByte(b, '\n')+1])
	return err
}

// stat stats name in the store's root, following links that stay inside
// it; errors name the full path, and a link out is an EscapeError.
func (s *Store) stat(name string) (os.FileInfo, error) {
	fi, err := s.root.Stat(name)
	return fi, safeopen.InRoot(s.root, name, err)
}

// rebuildIndex indexes every session in the directory. A session the
// snapshot describes (same JSONL size and modification time, meta file
// present) costs one fstatat; any other has its meta file read, and
// repaired when missing, corrupt or stale. stale reports that the snapshot
// did not describe every session; check holds, for the sessions taken from
// it, the meta file stamps it recorded, for repairMetaFiles.
func (s *Store) rebuildIndex() (stale bool, check []*snapEntry, err error) {
	d, _, err := safeopen.OpenIn(s.root, ".", safeopen.Dir)
	if err != nil {
		return false, nil, fmt.Errorf("session store %s: %w", s.dir, err)
	}
	defer d.Close()
	snapc := make(chan map[string]*snapEntry, 1)
	go func() { snapc <- s.readSnapshot() }() // meanwhile, list the directory
	names, err := d.Readdirnames(-1)          // unsorted: sorting 20,000 names is wasted work
	snap := <-snapc
	if err != nil {
		return false, nil, fmt.Errorf("session store %s: %w", s.dir, err)
	}
	var ids []string
	for _, name := range names {
		if isTempName(name) {
			s.removeIfStale(name)
			continue
		}
		if id, ok := strings.CutSuffix(name, metaExt); ok {
			if e := snap[id]; e != nil {
				e.hasMeta = true
			}
		} else if id, ok := strings.CutSuffix(name, jsonlExt); ok && protocol.ValidateSessionID(id) == nil {
			ids = append(ids, id)
		}
	}
	// One pass of fstatat over the transcripts: parallel calls in one
	// directory contend in the kernel and gain nothing. Misses (sessions the
	// snapshot does not describe) read files, and those run in parallel.
	s.sessions = make(map[string]*entry, len(ids))
	check = make([]*snapEntry, 0, len(snap))
	var misses []string
	for _, id := range ids {
		st, ok := statAt(d, id+jsonlExt)
		if !ok {
			s.warnIrregular(id) // or it is gone
			continue
		}
		e := snap[id]
		if e == nil || e.jsonl != st || !e.hasMeta {
			misses = append(misses, id)
			continue
		}
		s.sessions[id] = &e.e
		check = append(check, e)
	}
	work := make(chan string, len(misses))
	for _, id := range misses {
		work <- id
	}
	close(work)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(misses)) {
		wg.Go(func() {
			for id := range work {
				m, err := s.loadMeta(id)
				if err != nil {
					s.log.Warn("session skipped: cannot read transcript", "session", id, "err", err)
					continue
				}
				s.mu.Lock()
				s.sessions[id] = &entry{meta: m}
				s.mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.log.Info("session index loaded", "sessions", len(s.sessions), "from_snapshot", len(check), "from_meta_files", len(misses))
	return len(misses) > 0 || len(snap) != len(s.sessions), check, nil
}

// warnIrregular logs a session left out of the index because its
// transcript is not a regular file: a named pipe, a socket or a device
// (the data dir may lie in the workspace, where the model's shell can put
// one) would block or never end, and a link leading out of the directory
// would serve or take another file, so it is not opened, and every
// operation on the ID says why.
func (s *Store) warnIrregular(id string) {
	fi, err := s.stat(id + jsonlExt)
	switch {
	case err == nil:
		err = &safeopen.TypeError{Path: s.jsonlPath(id), Mode: fi.Mode(), Want: safeopen.Regular}
	case errors.Is(err, fs.ErrNotExist):
		return // it is gone
	}
	s.log.Warn("session skipped: its transcript is not a regular file", "session", id, "err", err)
}

// repairMetaFiles rewrites, from the index, the meta file of each session
// taken from the snapshot whose meta file is no longer the one the snapshot
// recorded (damaged or replaced while the gateway was down). The index was
// right regardless; this keeps the files a reader sees right too.
func (s *Store) repairMetaFiles(check []*snapEntry) {
	if len(check) == 0 {
		return
	}
	d, _, err := safeopen.OpenIn(s.root, ".", safeopen.Dir)
	if err != nil {
		return
	}
	defer d.Close()
	for _, snap := range check {
		s.mu.Lock()
		id := snap.e.meta.SessionID
		e, ok := s.sessions[id]
		s.mu.Unlock()
		if st, found := statAt(d, id+metaExt); found && st == snap.file || !ok {
			continue
		}
		s.log.Warn("session meta file changed while the gateway was down: rewritten from the index", "session", id)
		s.writeEntryMeta(id, e)
	}
}

// staleTempAge is how old a temp file must be before startup removes it: a
// meta write or a readiness probe lasts milliseconds, so one this old was
// left by a process that died between creating and renaming it, and no live
// writer (in this process or another gateway on the same dir) can own it.
const staleTempAge = 10 * time.Minute

// isTempName reports whether name is one of the store's own temp files: a
// meta or the snapshot being written (.<name>.tmp*, see writeFileAtomic)
// or a writability probe (.probe*).
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".tmp") || strings.HasPrefix(name, ".probe"))
}

// removeIfStale deletes a temp file left behind by a crashed writer, so they
// do not pile up in the sessions directory with every crash.
func (s *Store) removeIfStale(name string) {
	fi, err := s.root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || s.now().Sub(fi.ModTime()) < staleTempAge {
		return
	}
	if err := s.root.Remove(name); err == nil {
		s.log.Info("stale temp file removed", "file", name)
	}
}

// loadMeta returns the meta of a session on disk, rebuilding it from the
// JSONL when the meta file is missing, corrupt or describes another size.
func (s *Store) loadMeta(id string) (Meta, error) {
	path := s.jsonlPath(id)
	fi, err := s.stat(id + jsonlExt)
	if err != nil {
		return Meta{}, err
	}
	if !fi.Mode().IsRegular() {
		return Meta{}, &safeopen.TypeError{Path: path, Mode: fi.Mode(), Want: safeopen.Regular}
	}
	m, merr := s.readMeta(id)
	if merr == nil && m.SessionID == id && m.Size == fi.Size() {
		return m, nil
	}
	if merr == nil && m.SessionID == id && m.Size < fi.Size() {
		// Lines were appended after the meta was written (it is written
		// lazily, and a crash can cut that short): read only those.
		if grown, ok := s.extendMeta(id, m); ok {
			s.log.Info("session meta caught up with its transcript", "session", id, "messages", grown.MessageCount)
			if err := s.saveMeta(id, grown); err != nil {
				s.log.Warn("session meta not written", "session", id, "err", err)
			}
			return grown, nil
		}
	}
	reason := "stale"
	if merr != nil {
		reason = merr.Error()
		if errors.Is(merr, fs.ErrNotExist) {
			reason = "missing"
		}
	}
	rebuilt, err := s.scanMeta(id, id, m)
	if err != nil {
		return Meta{}, err
	}
	s.log.Warn("session meta rebuilt from transcript", "session", id, "reason", reason, "messages", rebuilt.MessageCount)
	if err := s.saveMeta(id, rebuilt); err != nil {
		s.log.Warn("session meta not written", "session", id, "err", err)
	}
	return rebuilt, nil
}

// extendMeta folds the lines past m.Size into m, without a lock: a torn
// last line is counted in Size but not as a message, as scanMeta does, and
// the next append cuts it. ok is false when m does not describe a prefix of
// the file.
func (s *Store) extendMeta(id string, m Meta) (Meta, bool) {
	f, fi, err := safeopen.OpenIn(s.root, id+jsonlExt, safeopen.Regular)
	if err != nil {
		return m, false
	}
	defer f.Close()
	grown, _, ok, err := extend(f, m, fi.Size())
	return grown, ok && err == nil
}

// scanMeta recomputes a meta from the whole JSONL, keeping the channel,
// fork origin and title of old: the transcript records none of them (a
// fork's title and one set by Rename are not its first message, and one
// derived from that message is the same anyway, as the transcript only
// grows). base names the transcript, as for scan.
func (s *Store) scanMeta(id, base string, old Meta) (Meta, error) {
	m := Meta{SessionID: id, Channel: old.Channel, ForkedFrom: old.ForkedFrom, CreatedAt: old.CreatedAt, Title: old.Title, TitledAt: old.TitledAt}
	if m.Channel == "" {
		m.Channel = DefaultChannel
	}
	res, err := s.scan(base, nil)
	if err != nil {
		return Meta{}, err
	}
	m.Size = res.size
	m.MessageCount = res.lines
	for _, msg := range res.messages {
		m.observeOne(msg)
	}
	if m.CreatedAt == 0 {
		if fi, err := s.stat(base + jsonlExt); err == nil {
			m.CreatedAt = fi.ModTime().UnixMilli()
		}
	}
	if m.UpdatedAt == 0 {
		m.UpdatedAt = m.CreatedAt
	}
	return m, nil
}

// DefaultChannel is the channel of sessions a WebSocket client opens without
// naming one, as the seed's getOrCreateSession('webchat').
const DefaultChannel = "webchat"

// Get returns the meta of a session.
func (s *Store) Get(id string) (Meta, error) {
	e, err := s.lookup(id)
	if err != nil {
		return Meta{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.meta, nil
}

// Resolve returns the session ID that id names: the session of that exact
// ID, else the one session whose ID starts with id, so that a user can type
// the first characters of a UUID. No match is ErrNotFound; several are
// ErrAmbiguous, naming them in order.
func (s *Store) Resolve(id string) (string, error) {
	_, err := s.lookup(id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.sessions))
	s.mu.Unlock()
	return PickPrefix(id, ids, err)
}

// PickPrefix is the one of ids that starts with prefix; notFound when none
// does, ErrAmbiguous naming them in order when several do.
func PickPrefix(prefix string, ids []string, notFound error) (string, error) {
	var matches []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return "", notFound
	case 1:
		return matches[0], nil
	}
	sort.Strings(matches)
	return "", fmt.Errorf("%w: %s starts %s", ErrAmbiguous, prefix, strings.Join(matches, ", "))
}

// CheckID is nil for a valid session ID, else an error matching
// ErrInvalidID that says why: every store checks IDs alike.
func CheckID(id string) error {
	if err := protocol.ValidateSessionID(id); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidID, err)
	}
	return nil
}

// lookup finds a session in the index, or on disk when another process
// created it after this one started.
func (s *Store) lookup(id string) (*entry, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.sessions[id]
	s.mu.Unlock()
	if ok {
		return e, nil
	}
	s.diskMu.Lock()
	defer s.diskMu.Unlock()
	s.mu.Lock()
	e, ok = s.sessions[id]
	s.mu.Unlock()
	if ok {
		return e, nil
	}
	m, err := s.loadMeta(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.sessions[id]; ok {
		return e, nil
	}
	e = &entry{meta: m}
	s.sessions[id] = e
	s.changes.Add(1)
	return e, nil
}

// Create makes a new, empty session with the given ID and channel. It
// returns created=false with the existing meta when the ID is already taken.
//
// A session whose transcript is gone from the directory (archived by
// another process, such as the CLI) is dropped from the index, and the ID
// is created anew.
func (s *Store) Create(id, channel string) (Meta, bool, error) {
	if e, err := s.lookup(id); err == nil {
		if _, err := s.root.Lstat(id + jsonlExt); !errors.Is(err, fs.ErrNotExist) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return e.meta, false, nil
		}
		s.forget(id, e)
	} else if !errors.Is(err, ErrNotFound) {
		return Meta{}, false, err
	}
	return s.create(Meta{SessionID: id, Channel: channel})
}

// forget drops e from the index when its transcript left the directory
// behind this store's back.
func (s *Store) forget(id string, e *entry) {
	s.mu.Lock()
	if s.sessions[id] == e {
		delete(s.sessions, id)
		delete(s.dirty, id)
		s.log.Info("session left the directory (archived by another process): dropped from the index", "session", id)
	}
	s.mu.Unlock()
	s.keepRecent(e, nil)
}

// vanished is the error for session id, indexed as e, whose transcript is
// gone from the directory (archived by another process since it was
// indexed): ErrNotFound, naming the ID and no file, and e leaves the index,
// so that callers answer "not found" and lists drop it.
func (s *Store) vanished(id string, e *entry) error {
	s.forget(id, e)
	return fmt.Errorf("session %s: %w", id, ErrNotFound)
}

// readFailed is err, from reading the transcript of session id indexed as
// e, or ErrNotFound when the transcript is gone (see vanished).
func (s *Store) readFailed(id string, e *entry, what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return s.vanished(id, e)
	}
	return fmt.Errorf("session %s: %s: %w", id, what, err)
}

// create makes the session m describes (its ID, channel, and a fork's
// origin and title), created now and empty.
func (s *Store) create(m Meta) (Meta, bool, error) {
	id := m.SessionID
	now := s.now().UnixMilli()
	m.CreatedAt, m.UpdatedAt = now, now
	s.diskMu.Lock()
	f, err := s.openFile(id+jsonlExt, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		s.diskMu.Unlock()
		// Lost a race with another creator (goroutine or process): use theirs.
		e, err := s.lookup(id)
		if err != nil {
			return Meta{}, false, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return e.meta, false, nil
	}
	defer s.diskMu.Unlock()
	if err != nil {
		return Meta{}, false, fmt.Errorf("session %s: create: %w", id, err)
	}
	if err := f.Close(); err != nil {
		return Meta{}, false, fmt.Errorf("session %s: create: %w", id, err)
	}
	if err := s.saveMeta(id, m); err != nil {
		return Meta{}, false, fmt.Errorf("session %s: create meta: %w", id, err)
	}
	if s.fsync {
		s.syncDir(".")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.sessions[id]; ok {
		return e.meta, false, nil
	}
	s.sessions[id] = &entry{meta: m}
	return m, true, nil
}

// syncDir makes a new directory entry durable. Best effort: some file
// systems refuse to fsync a directory, and the entry is then as durable as
// they make it.
func (s *Store) syncDir(dir string) {
	if d, _, err := safeopen.OpenIn(s.root, dir, safeopen.Dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// List returns the metas of all sessions, most recently updated first. It
// reads the index in memory and cannot fail.
func (s *Store) List() ([]Meta, error) {
	s.mu.Lock()
	out := make([]Meta, 0, len(s.sessions))
	for _, e := range s.sessions {
		out = append(out, e.meta)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].UpdatedAt != out[j].UpdatedAt {
			return out[i].UpdatedAt > out[j].UpdatedAt
		}
		return out[i].SessionID < out[j].SessionID
	})
	return out, nil
}

// Len is the number of sessions in the index.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Latest returns the most recently updated session of a channel.
func (s *Store) Latest(channel string) (Meta, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best Meta
	found := false
	for _, e := range s.sessions {
		m := e.meta
		if m.Channel != channel {
			continue
		}
		if !found || m.UpdatedAt > best.UpdatedAt || m.UpdatedAt == best.UpdatedAt && m.SessionID > best.SessionID {
			best, found = m, true
		}
	}
	return best, found, nil
}

// CheckWritable reports whether new files can be created in the store, for
// readiness probes.
func (s *Store) CheckWritable() error {
	f, name, err := createTemp(s.root, ".probe")
	if err != nil {
		return err
	}
	f.Close()
	return s.root.Remove(name)
}
