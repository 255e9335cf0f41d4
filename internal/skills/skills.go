// Package skills indexes the workspace's skills: every
// <skills>/<name>/SKILL.md with a YAML frontmatter naming the skill and
// describing when to use it. The index goes into the system prompt as
// <available_skills>; the model loads a skill's instructions itself, with
// read_file on the skill's location.
//
// The index is refreshed on every prompt but costs one stat per skill when
// nothing changed: the directory listing is cached by the skills
// directory's mtime, each SKILL.md by its mtime and size, and the rendered
// section until one of them changes. Added, edited and removed skills are
// picked up on the next turn without a restart.
//
// A skill with a problem (no frontmatter, bad YAML, no description,
// unreadable, a FIFO or a device instead of a file, over MaxFileBytes) is
// left out of the prompt and logged once per change of its file, naming
// the file; `miniclaw skills list` shows every problem.
//
// The prompt budget: skills are listed sorted by name (then location), and
// the first ones are taken while both MaxSkills and MaxChars (the
// characters of the <skill> entries) hold; the first skill that does not
// fit ends the list, and a note says how many were left out.
package skills

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/miniclaw/miniclaw/internal/safeopen"
)

// Defaults and limits.
const (
	DefaultMaxSkills = 100    // skills listed in the prompt
	DefaultMaxChars  = 20_000 // characters of <skill> entries in the prompt
	MaxDescription   = 1024   // longer descriptions are cut in the prompt
	MaxFileBytes     = 1 << 20
	maxNameChars     = 128
)

// FileName is the file that makes a directory a skill.
const FileName = "SKILL.md"

// Skill is one skill directory.
type Skill struct {
	Name        string // from the frontmatter; the directory name when absent
	Description string // whitespace collapsed to single spaces
	Path        string // the SKILL.md, absolute
	// Location is the path the model passes to read_file: relative to the
	// workspace when the skill lies inside it (file tools are confined to
	// the workspace), else absolute.
	Location string
	// Problem says why the skill is left out of the prompt; "" when it is
	// usable.
	Problem string
}

// Index is the skills of one directory. Its zero value is not usable; make
// one with New. It is safe for concurrent use.
type Index struct {
	dir, workspace string
	log            *slog.Logger
	// MaxSkills and MaxChars bound the prompt section (see the package
	// comment); set them before the first use.
	MaxSkills, MaxChars int

	mu      sync.Mutex
	dirStat stamp               // of dir when names was listed
	names   []string            // skill directory names, sorted
	files   map[string]cacheEnt // by directory name
	list    []Skill             // every skill, sorted; nil when stale
	section string              // rendered from list
}

// stamp identifies a version of a file cheaply.
type stamp struct {
	mtime, size int64 // mtime in Unix nanoseconds
	ok          bool  // false: the file could not be stat'ed
}

func stampOf(fi fs.FileInfo) stamp {
	return stamp{mtime: fi.ModTime().UnixNano(), size: fi.Size(), ok: true}
}

type cacheEnt struct {
	st    stamp
	skill Skill
}

// New indexes the skills under dir (<workspace>/.openclaw/skills); locations
// are made relative to workspace. Problems are logged to log (nil: not
// logged).
func New(dir, workspace string, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Index{
		dir: dir, workspace: workspace, log: log,
		MaxSkills: DefaultMaxSkills, MaxChars: DefaultMaxChars,
		files: map[string]cacheEnt{},
	}
}

// Skills returns every skill, usable or not, sorted by name, as of now.
func (x *Index) Skills() []Skill {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refresh()
	return slices.Clone(x.list)
}

// SkillsSection is the prompt's skills index ("" when there is no usable
// skill); it implements half of agent.Knowledge.
func (x *Index) SkillsSection() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refresh()
	return x.section
}

// refresh brings the cache up to date with the disk; x.mu is held.
func (x *Index) refresh() {
	changed := x.list == nil
	root, rel, err := x.openRoot()
	var d *os.File
	switch {
	case root != nil:
		defer root.Close()
		d, _, err = safeopen.OpenIn(root, rel, safeopen.Dir)
	case err == nil:
		d, _, err = safeopen.Open(x.dir, safeopen.Dir)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		x.log.Warn("skills directory not readable", "dir", x.dir, "err", err)
	}
	var st stamp
	if d != nil {
		defer d.Close()
		if fi, err := d.Stat(); err == nil {
			st = stampOf(fi)
		}
	}
	if st != x.dirStat {
		x.dirStat, x.names = st, x.listNames(d)
	}
	seen := make(map[string]bool, len(x.names))
	for _, name := range x.names {
		cur, err := statAt(d, name+"/"+FileName)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue // a directory without SKILL.md, or a link to a file, is not a skill
		}
		// A file that cannot be stat'ed keeps the zero stamp: it is loaded
		// (and reported) once, and again when it can be.
		seen[name] = true
		if old, ok := x.files[name]; ok && old.st == cur {
			continue
		}
		path := filepath.Join(x.dir, name, FileName)
		s := x.load(name, path, func() ([]byte, error) {
			return readCapped(root, filepath.Join(rel, name, FileName), path, err)
		})
		if s.Problem != "" {
			x.log.Warn("skill left out of the prompt", "file", path, "problem", s.Problem)
		}
		x.files[name] = cacheEnt{st: cur, skill: s}
		changed = true
	}
	for name := range x.files {
		if !seen[name] {
			delete(x.files, name)
			changed = true
		}
	}
	if changed {
		x.rebuild()
	}
}

// openRoot opens the workspace as the root skills are read in when the
// skills directory lies inside it, and gives the directory's path in it: a
// SKILL.md the model's shell made a link to ~/.ssh/id_rsa is then refused
// rather than read into the prompt (links that stay inside the workspace
// are followed). A skills directory elsewhere is the operator's: it is read
// by path (root nil), and links in it are followed.
func (x *Index) openRoot() (*os.Root, string, error) {
	if rel, err := filepath.Rel(x.workspace, x.dir); x.workspace != "" && err == nil && filepath.IsLocal(rel) {
		root, err := safeopen.OpenRoot(x.workspace)
		return root, rel, err
	}
	return nil, "", nil
}

// listNames lists the candidate skill directories of the open directory d
// (nil: there is none): directories, or links to them, whose name does not
// start with a dot.
func (x *Index) listNames(d *os.File) []string {
	if d == nil {
		return nil
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		x.log.Warn("skills directory not readable", "dir", x.dir, "err", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// load checks one SKILL.md, which read reads.
func (x *Index) load(dirName, path string, read func() ([]byte, error)) Skill {
	s := Skill{Name: dirName, Path: path, Location: path}
	if rel, err := filepath.Rel(x.workspace, path); err == nil && filepath.IsLocal(rel) {
		s.Location = filepath.ToSlash(rel)
	}
	data, err := read()
	if err != nil {
		s.Problem = err.Error()
		return s
	}
	fm, _, err := ParseFrontmatter(data)
	if err != nil {
		s.Problem = err.Error()
		return s
	}
	if name := strings.TrimSpace(fm.Name); name != "" {
		s.Name = name
	}
	s.Description = strings.Join(strings.Fields(fm.Description), " ")
	switch {
	case strings.ContainsFunc(s.Name, unicode.IsControl):
		s.Problem = "name must be one line of text"
	case utf8.RuneCountInString(s.Name) > maxNameChars:
		s.Problem = fmt.Sprintf("name is longer than %d characters", maxNameChars)
	case s.Description == "":
		s.Problem = "missing description: the model reads it to decide when to use the skill"
	}
	return s
}

// readCapped reads a SKILL.md of at most MaxFileBytes: name in root, or
// path when root is nil; statErr is the error of its stat. A FIFO or a
// device is refused without waiting on it, and so is a link leading out of
// root.
func readCapped(root *os.Root, name, path string, statErr error) ([]byte, error) {
	if statErr != nil {
		return nil, statErr
	}
	var data []byte
	var cut bool
	var err error
	if root != nil {
		data, cut, err = safeopen.ReadHeadIn(root, name, MaxFileBytes)
	} else {
		data, cut, err = safeopen.ReadHead(path, MaxFileBytes)
	}
	if cut {
		return nil, fmt.Errorf("%s is over the %d-byte limit", FileName, MaxFileBytes)
	}
	return data, err
}

// rebuild sorts the skills, marks duplicate names and renders the section;
// x.mu is held.
func (x *Index) rebuild() {
	x.list = make([]Skill, 0, len(x.files))
	for _, e := range x.files {
		x.list = append(x.list, e.skill)
	}
	slices.SortFunc(x.list, func(a, b Skill) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Location, b.Location))
	})
	var prev *Skill // the last usable skill
	for i := range x.list {
		s := &x.list[i]
		switch {
		case s.Problem != "":
		case prev != nil && s.Name == prev.Name:
			s.Problem = fmt.Sprintf("duplicate name %q (also %s)", s.Name, prev.Location)
		default:
			prev = s
		}
	}
	x.section = render(x.list, x.MaxSkills, x.MaxChars)
}

// loadHint is the line that tells the model how to use the index.
const loadHint = "Skills are instructions for specific tasks. When a task matches a skill's description, load the skill first: read the file at its <location> with read_file, then follow it."

// render writes the prompt section for the usable skills, within the budget.
func render(list []Skill, maxSkills, maxChars int) string {
	var entries strings.Builder
	usable, listed, full := 0, 0, false
	for _, s := range list {
		if s.Problem != "" {
			continue
		}
		usable++
		if full {
			continue
		}
		desc := s.Description
		if utf8.RuneCountInString(desc) > MaxDescription {
			desc = string([]rune(desc)[:MaxDescription-1]) + "…"
		}
		e := fmt.Sprintf("<skill>\n<name>%s</name>\n<description>%s</description>\n<location>%s</location>\n</skill>\n",
			escape(s.Name), escape(desc), escape(s.Location))
		if listed == maxSkills || entries.Len()+len(e) > maxChars {
			full = true
			continue
		}
		entries.WriteString(e)
		listed++
	}
	if usable == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(loadHint)
	b.WriteString("\n<available_skills>\n")
	b.WriteString(entries.String())
	b.WriteString("</available_skills>")
	if left := usable - listed; left > 0 {
		fmt.Fprintf(&b, "\n[%d more skills left out of this list (prompt budget: %d skills, %d characters); list_files on the skills directory shows them all]", left, maxSkills, maxChars)
	}
	return b.String()
}

// escape makes s safe as XML character data: &, < and > become entities and
// characters XML does not allow are dropped.
func escape(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r != 0xFFFE && r != 0xFFFF && r != utf8.RuneError {
			return r
		}
		return -1
	}, s)
	return xmlEscaper.Replace(s)
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
