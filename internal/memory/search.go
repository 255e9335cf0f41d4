package memory

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Bounds of a search.
const (
	// MaxSearchBytes is how much of each file a search reads: its head,
	// so a huge or sparse file costs a bounded time.
	MaxSearchBytes = 8 << 20
	// maxSearchLine is how much of a line is searched; the rest of a longer
	// line is skipped. Lines are streamed, so this bounds the memory a
	// search holds.
	maxSearchLine = 64 << 10
	maxHitChars   = 500 // cuts long lines in search results
)

// Hit is one line that matched a search.
type Hit struct {
	File  string // as Display shows it
	Line  int    // 1-based
	Text  string
	Score float64
}

// Search ranks the lines of both MEMORY.md files and every daily log by the
// keywords of query (case-insensitive; a keyword also matches inside a
// longer word, so "deploy" finds "deployment"). A line scores, for each
// keyword it holds, the keyword's rarity (idf over all lines searched)
// times 1+ln(occurrences), plus a bonus when it holds the whole query as a
// phrase. Ties go to the newer source: today's log before older logs, the
// MEMORY.md files first of all. At most limit hits are returned.
//
// Files are streamed line by line, each up to MaxSearchBytes; one that
// cannot be read (a FIFO, a device, no permission) is skipped and logged.
func (s *Store) Search(query string, limit int) ([]Hit, error) {
	words := keywords(query)
	if len(words) == 0 {
		return nil, errors.New("the query has no keywords (letters or digits)")
	}
	terms := make([][]byte, len(words))
	for i, w := range words {
		terms[i] = []byte(w)
	}
	phrase := []byte(strings.ToLower(oneLine(query)))
	type cand struct {
		hit    Hit
		rank   int // of the file: lower is newer
		counts []int
	}
	var cands []cand
	df := make([]int, len(terms)) // lines holding each term
	lines := 0
	var lower []byte // the current line in lower case, reused
	var sc lineScanner
	for rank, path := range s.searchFiles() {
		display, n := s.Display(path), 0
		err := sc.each(s, path, func(line []byte) {
			n++
			lines++
			lower = appendLower(lower[:0], line)
			var counts []int
			matched := 0
			for i, term := range terms {
				if c := bytes.Count(lower, term); c > 0 {
					if counts == nil {
						counts = make([]int, len(terms))
					}
					counts[i] = c
					df[i]++
					matched++
				}
			}
			if counts != nil {
				c := cand{hit: Hit{File: display, Line: n, Text: cut(strings.TrimSpace(string(line)), maxHitChars)}, rank: rank, counts: counts}
				if matched == len(terms) && len(terms) > 1 && bytes.Contains(lower, phrase) {
					c.hit.Score = 2 // the phrase bonus
				}
				cands = append(cands, c)
			}
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.warn("memory file left out of the search", err)
		}
	}
	for i := range cands {
		for j, c := range cands[i].counts {
			if c > 0 {
				idf := math.Log(1 + float64(lines)/float64(df[j]))
				cands[i].hit.Score += idf * (1 + math.Log(float64(c)))
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(b.hit.Score, a.hit.Score), cmp.Compare(a.rank, b.rank), cmp.Compare(a.hit.Line, b.hit.Line))
	})
	hits := make([]Hit, 0, min(limit, len(cands)))
	for _, c := range cands[:min(limit, len(cands))] {
		hits = append(hits, c.hit)
	}
	return hits, nil
}

// lineScanner streams the lines of files through one buffer.
type lineScanner struct{ r *bufio.Reader }

// each calls fn with each line of the regular file at path, without its
// newline, up to MaxSearchBytes of the file; a line longer than
// maxSearchLine is cut to that. line is valid only during the call.
func (sc *lineScanner) each(s *Store, path string, fn func(line []byte)) error {
	f, _, err := s.open(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if sc.r == nil {
		sc.r = bufio.NewReaderSize(nil, maxSearchLine)
	}
	r := sc.r
	r.Reset(io.LimitReader(f, MaxSearchBytes))
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			fn(bytes.TrimSuffix(line, []byte("\n")))
		}
		for err == bufio.ErrBufferFull { // the rest of a long line
			_, err = r.ReadSlice('\n')
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// appendLower appends s in lower case to dst: without allocating for
// ASCII, the common case of a search's many lines.
func appendLower(dst, s []byte) []byte {
	for i, c := range s {
		if c >= utf8.RuneSelf {
			return append(dst, bytes.ToLower(s[i:])...)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// searchFiles lists the files a search reads, newest source first: the two
// MEMORY.md files, then the daily logs from the latest day back. A log
// directory that cannot be listed is logged and leaves the logs out.
func (s *Store) searchFiles() []string {
	files := []string{s.WorkspaceFile(), s.File()}
	d, err := s.openLogDir()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.warn("daily logs left out of the search", err)
		}
		return files
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		s.warn("daily logs left out of the search", err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for i := len(entries) - 1; i >= 0; i-- { // by name: by date
		if e := entries[i]; !e.IsDir() && strings.HasSuffix(e.Name(), ".md") {
			files = append(files, filepath.Join(s.LogDir(), e.Name()))
		}
	}
	return files
}

// openLogDir opens LogDir for listing, through the same roots as open.
func (s *Store) openLogDir() (*os.File, error) {
	root, err := safeopen.OpenDir(s.Workspace, s.Dir, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	d, _, err := safeopen.OpenIn(root, filepath.Base(s.LogDir()), safeopen.Dir)
	return d, err
}

// keywords splits a query into its distinct lower-case words.
func keywords(query string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(query), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
