package session

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/core"
	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Meta is the content of <id>.meta.json: a cache of facts about a session
// that can always be rebuilt from its JSONL. Size is the JSONL length the
// meta describes; when the file on disk differs (a crash between the append
// and the meta write, or another process appended) the meta is recounted.
type Meta struct {
	SessionID    string `json:"sessionId"`
	Channel      string `json:"channel"`
	CreatedAt    int64  `json:"createdAt"`
	UpdatedAt    int64  `json:"updatedAt"`
	MessageCount int    `json:"messageCount"`
	Title        string `json:"title"`
	Size         int64  `json:"size"`
	ForkedFrom   string `json:"forkedFrom,omitempty"`
	// TitledAt is when Rename last set Title (Unix ms; 0: never), so that a
	// process writing the meta keeps a newer title another one set.
	TitledAt int64 `json:"titledAt,omitempty"`
}

const (
	maxTitleLen = 80
	// maxTitleScan bounds the bytes of a line that TitleFrom reads: the
	// title keeps maxTitleLen runes of it, and the Markdown regexps over a
	// whole line of a message of megabytes took the first append of a
	// session hundreds of milliseconds (seconds under -race).
	maxTitleScan = 4 << 10
)

// TitleFrom derives a session title from the first user message: its first
// line with text, as plain text (lists and sidebars show titles verbatim,
// so "**miniclaw**" would show its asterisks), cut to maxTitleLen runes.
// Only the first maxTitleScan bytes of a line are read: markup that
// starts in them and ends past them (a link with a URL of kilobytes) is
// kept as text.
func TitleFrom(content string) string {
	for line := range strings.Lines(content) {
		if title := plainText(headOf(line, maxTitleScan)); title != "" {
			return cutTitle(title)
		}
	}
	return ""
}

var (
	// mdLink is a link or an image, [text](url) or ![alt](url), whose URL
	// may hold one level of parentheses (as Wikipedia's do).
	mdLink = regexp.MustCompile(`!?\[([^\]]*)\]\((?:[^()\s]|\([^()\s]*\))*\)`)
	// mdQuote is a line's quote marks.
	mdQuote = regexp.MustCompile(`^(?:>\s*)+`)
	// mdHeading is a heading line, its text in $1 without the opening and
	// closing #s (#hashtag, without a space, is no heading).
	mdHeading = regexp.MustCompile(`^#{1,6}\s+(.*?)(?:\s+#+)?$`)
	// mdMarks are the emphasis and code marks around words. A single * or
	// _ is left alone: 2*3*4 and snake_case are text far more often.
	mdMarks = strings.NewReplacer("**", "", "__", "", "~~", "", "`", "")
)

// plainText is one line of Markdown without its markup, trimmed.
func plainText(line string) string {
	line = mdQuote.ReplaceAllString(strings.TrimSpace(line), "")
	line = mdHeading.ReplaceAllString(line, "$1")
	line = mdLink.ReplaceAllString(line, "$1")
	return strings.TrimSpace(mdMarks.Replace(line))
}

// headOf is the first n bytes of s, or fewer so as not to split a rune.
func headOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ForkTitle says what a fork is a fork of: the source's title, or its ID
// when it has none yet.
func ForkTitle(src Meta) string {
	of := src.Title
	if of == "" {
		of = src.SessionID
	}
	return cutTitle("Fork of " + of)
}

// cutTitle cuts a title to maxTitleLen runes.
func cutTitle(title string) string {
	if utf8.RuneCountInString(title) <= maxTitleLen {
		return title
	}
	r := []rune(title)
	return string(r[:maxTitleLen-1]) + "…"
}

// observe updates m for messages appended after the ones it already counts.
// MessageCount counts transcript lines, so it matches line numbers.
func (m *Meta) observe(msgs []core.Message) {
	for _, msg := range msgs {
		m.MessageCount++
		m.observeOne(msg)
	}
}

// observeOne folds one message's timestamp and title into m.
func (m *Meta) observeOne(msg core.Message) {
	if msg.Timestamp > m.UpdatedAt {
		m.UpdatedAt = msg.Timestamp
	}
	if m.CreatedAt == 0 {
		m.CreatedAt = msg.Timestamp
	}
	if m.Title == "" && msg.Role == core.RoleUser {
		m.Title = TitleFrom(msg.Content)
	}
}

// maxMetaBytes bounds a meta file: one is a few hundred bytes (the title
// is cut to maxTitleLen runes), so a bigger one is damage, rebuilt from the
// transcript rather than read whole.
const maxMetaBytes = 64 << 10

// readMeta reads the meta file <base>.meta.json: base is a session ID, or
// an archived copy's name in the archive directory.
func (s *Store) readMeta(base string) (Meta, error) {
	path := s.metaPath(base)
	b, err := readLimited(s.root, base+metaExt, maxMetaBytes)
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("%s: %w", path, err)
	}
	if m.SessionID == "" || !plausible(m) {
		return Meta{}, fmt.Errorf("%s: missing or invalid fields", path)
	}
	return m, nil
}

// readLimited reads the regular file name in root whole when it holds at
// most limit bytes, and refuses it otherwise without reading it: the
// store's caches (meta files, the snapshot) are small, so a big one is
// damage, and a pipe or a device (which fstat gives no size) is refused by
// type.
func readLimited(root *os.Root, name string, limit int64) ([]byte, error) {
	f, fi, err := safeopen.OpenIn(root, name, safeopen.Regular)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	path := f.Name()
	tooBig := func(size int64) error {
		return fmt.Errorf("%s: %d bytes is over the limit of %d", path, size, limit)
	}
	if fi.Size() > limit {
		return nil, tooBig(fi.Size())
	}
	// The file may grow after the fstat: the limit bounds the read too.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, tooBig(int64(len(b)))
	}
	return b, nil
}

// minLineLen is the shortest transcript line that counts as a message: one
// non-blank byte and its newline (a corrupt line is counted too).
const minLineLen = 2

// plausible reports whether m could describe a transcript: a count that no
// file of its size can hold is damage, and sends the reader back to the
// transcript.
func plausible(m Meta) bool {
	return m.Size >= 0 && m.MessageCount >= 0 && int64(m.MessageCount) <= m.Size/minLineLen
}

// writeFileAtomic writes name in root through a temp file and a rename, so
// a reader sees the old content or the new, never a mix; write produces the
// content. The rename replaces whatever name was, a planted link included,
// without following it. Metas and the snapshot are caches (rebuilt from the
// JSONL if lost), so they are not fsynced.
func writeFileAtomic(root *os.Root, name string, write func(io.Writer) error) error {
	tmp, tmpName, err := createTemp(root, "."+filepath.Base(name)+".tmp")
	if err != nil {
		return err
	}
	werr := write(tmp)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		root.Remove(tmpName)
		return err
	}
	if err := root.Rename(tmpName, name); err != nil {
		root.Remove(tmpName)
		return err
	}
	return nil
}

// createTemp creates a new file in root named prefix and a random suffix,
// private to the user, as os.CreateTemp does in a directory.
func createTemp(root *os.Root, prefix string) (*os.File, string, error) {
	for range 100 {
		name := prefix + rand.Text()[:10]
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, name, err
		}
	}
	return nil, "", fmt.Errorf("%s: no free temp file name", filepath.Join(root.Name(), prefix))
}

func writeMeta(root *os.Root, name string, m Meta) error {
	b, err := core.MarshalJSONIndent(m, "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(root, name, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
