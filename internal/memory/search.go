package memory

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// maxHitChars cuts long lines in search results.
const maxHitChars = 500

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
func (s *Store) Search(query string, limit int) ([]Hit, error) {
	terms := keywords(query)
	if len(terms) == 0 {
		return nil, errors.New("the query has no keywords (letters or digits)")
	}
	phrase := strings.ToLower(oneLine(query))
	files, err := s.searchFiles()
	if err != nil {
		return nil, err
	}
	type cand struct {
		hit    Hit
		rank   int // of the file: lower is newer
		counts []int
	}
	var cands []cand
	df := make([]int, len(terms)) // lines holding each term
	lines := 0
	for rank, path := range files {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("memory: search: %w", err)
		}
		lower := strings.ToLower(string(data))
		if !containsAny(lower, terms) {
			lines += strings.Count(lower, "\n") + 1
			continue
		}
		text, display := string(data), s.Display(path)
		for n := 1; len(lower) > 0; n++ {
			l, restLower, _ := strings.Cut(lower, "\n")
			t, restText, _ := strings.Cut(text, "\n")
			lower, text = restLower, restText
			lines++
			var counts []int
			matched := 0
			for i, term := range terms {
				if c := strings.Count(l, term); c > 0 {
					if counts == nil {
						counts = make([]int, len(terms))
					}
					counts[i] = c
					df[i]++
					matched++
				}
			}
			if counts != nil {
				c := cand{hit: Hit{File: display, Line: n, Text: t}, rank: rank, counts: counts}
				if matched == len(terms) && len(terms) > 1 && strings.Contains(l, phrase) {
					c.hit.Score = 2 // the phrase bonus
				}
				cands = append(cands, c)
			}
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
		c.hit.Text = cut(strings.TrimSpace(c.hit.Text), maxHitChars)
		hits = append(hits, c.hit)
	}
	return hits, nil
}

// searchFiles lists the files a search reads, newest source first: the two
// MEMORY.md files, then the daily logs from the latest day back.
func (s *Store) searchFiles() ([]string, error) {
	files := []string{s.WorkspaceFile(), s.File()}
	entries, err := os.ReadDir(s.LogDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("memory: search: %w", err)
	}
	for i := len(entries) - 1; i >= 0; i-- { // ReadDir sorts by name: by date
		if e := entries[i]; !e.IsDir() && strings.HasSuffix(e.Name(), ".md") {
			files = append(files, filepath.Join(s.LogDir(), e.Name()))
		}
	}
	return files, nil
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

func containsAny(s string, terms []string) bool {
	return slices.ContainsFunc(terms, func(t string) bool { return strings.Contains(s, t) })
}
