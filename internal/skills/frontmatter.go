package skills

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Frontmatter is the YAML header of a SKILL.md. Other keys (license,
// allowed-tools, metadata, ...) are allowed and ignored.
type Frontmatter struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// ErrNoFrontmatter: the file does not start with a "---" line.
var ErrNoFrontmatter = errors.New("no YAML frontmatter: the file must start with a --- line, then name: and description:, then a --- line")

const bom = "\xef\xbb\xbf" // the UTF-8 byte order mark

// ParseFrontmatter splits a SKILL.md into its frontmatter and body. A UTF-8
// byte order mark is skipped and CRLF line ends are read as LF (the body is
// returned normalised). The frontmatter runs from a first line "---" to the
// next line that is "---" or "..." (trailing blanks allowed), and is parsed
// as YAML: quoted values, colons inside values, block scalars (| and >) and
// comments all work as YAML says; a scalar such as `name: 42` is read as the
// string "42", while a list or mapping where a string belongs is an error.
func ParseFrontmatter(data []byte) (Frontmatter, []byte, error) {
	data = bytes.TrimPrefix(data, []byte(bom))
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(bytes.TrimRight(first, " \t")) != "---" {
		return Frontmatter{}, data, ErrNoFrontmatter
	}
	for off := 0; ; {
		line, _, more := bytes.Cut(rest[off:], []byte("\n"))
		if end := string(bytes.TrimRight(line, " \t")); end == "---" || end == "..." {
			var fm Frontmatter
			if err := yaml.Unmarshal(rest[:off], &fm); err != nil {
				hint := "" // the most common slip, worth a word
				if strings.Contains(err.Error(), "mapping values are not allowed") {
					hint = ` (a value holding ": " must be quoted)`
				}
				return Frontmatter{}, data, fmt.Errorf("frontmatter (line 1 is the first after ---): %w%s", err, hint)
			}
			return fm, rest[min(len(rest), off+len(line)+1):], nil
		}
		if !more {
			return Frontmatter{}, data, errors.New("frontmatter: no closing --- line")
		}
		off += len(line) + 1
	}
}
