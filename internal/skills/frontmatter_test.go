package skills

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseFrontmatter(t *testing.T) {
	for _, tc := range []struct {
		name, in      string
		want          Frontmatter
		body          string
		err           string // a substring of the error; "" for none
		noFrontmatter bool
	}{
		{name: "plain", in: "---\nname: pdf\ndescription: Fill PDF forms\n---\n# PDF\nbody\n",
			want: Frontmatter{"pdf", "Fill PDF forms"}, body: "# PDF\nbody\n"},
		{name: "quoted", in: "---\nname: \"my: skill\"\ndescription: 'it''s \"fine\"'\n---\n",
			want: Frontmatter{"my: skill", `it's "fine"`}},
		{name: "colon without space", in: "---\nname: web\ndescription: fetch https://example.com/x at 10:30\n---\n",
			want: Frontmatter{"web", "fetch https://example.com/x at 10:30"}},
		{name: "colon and space unquoted", in: "---\nname: x\ndescription: Use when: asked\n---\n",
			err: `must be quoted`},
		{name: "literal block", in: "---\nname: multi\ndescription: |\n  line one\n  line two\n---\nbody",
			want: Frontmatter{"multi", "line one\nline two\n"}, body: "body"},
		{name: "folded block", in: "---\nname: fold\ndescription: >-\n  folded\n  text\n---\n",
			want: Frontmatter{"fold", "folded text"}},
		{name: "missing fields", in: "---\nlicense: MIT\nmetadata:\n  a: [1, 2]\n---\n", want: Frontmatter{}},
		{name: "empty frontmatter", in: "---\n---\nbody\n", want: Frontmatter{}, body: "body\n"},
		{name: "number as name", in: "---\nname: 42\ndescription: yes\n---\n", want: Frontmatter{"42", "yes"}},
		{name: "comments", in: "---\n# a comment\nname: c # trailing\ndescription: d\n---\n", want: Frontmatter{"c", "d"}},
		{name: "dots end", in: "---\nname: d\ndescription: e\n...\nbody", want: Frontmatter{"d", "e"}, body: "body"},
		{name: "trailing blanks on fences", in: "--- \t\nname: t\ndescription: u\n---  \n", want: Frontmatter{"t", "u"}},
		{name: "BOM", in: "\ufeff---\nname: bom\ndescription: byte order mark\n---\n", want: Frontmatter{"bom", "byte order mark"}},
		{name: "CRLF", in: "---\r\nname: crlf\r\ndescription: |\r\n  a\r\n  b\r\n---\r\nbody\r\n",
			want: Frontmatter{"crlf", "a\nb\n"}, body: "body\n"},
		{name: "dashes inside a block", in: "---\nname: b\ndescription: |\n  ---\n  x\n---\n", want: Frontmatter{"b", "---\nx\n"}},
		{name: "no end newline", in: "---\nname: n\ndescription: m\n---", want: Frontmatter{"n", "m"}},
		{name: "no frontmatter", in: "# Just markdown\n", noFrontmatter: true},
		{name: "empty file", in: "", noFrontmatter: true},
		{name: "fence not first", in: "\n---\nname: x\n---\n", noFrontmatter: true},
		{name: "not closed", in: "---\nname: x\ndescription: y\n", err: "no closing --- line"},
		{name: "list as name", in: "---\nname: [a, b]\ndescription: y\n---\n", err: "cannot unmarshal"},
		{name: "top-level list", in: "---\n- a\n- b\n---\n", err: "cannot unmarshal"},
		{name: "duplicate key", in: "---\nname: a\nname: b\n---\n", err: "already defined"},
		{name: "bad indentation", in: "---\nname: a\n  description: b\n---\n", err: "frontmatter"},
		{name: "tab indentation", in: "---\nname: a\ndescription: |\n\tb\n---\n", err: "frontmatter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, body, err := ParseFrontmatter([]byte(tc.in))
			switch {
			case tc.noFrontmatter:
				if !errors.Is(err, ErrNoFrontmatter) {
					t.Fatalf("err = %v, want ErrNoFrontmatter", err)
				}
				return
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatalf("err = %v", err)
			}
			if fm != tc.want {
				t.Errorf("frontmatter = %#v, want %#v", fm, tc.want)
			}
			if string(body) != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
		})
	}
}

// FuzzParseFrontmatter: any input parses or fails without panicking; a
// parsed body is the tail of the normalised input; and a parsed
// frontmatter survives a YAML round trip.
func FuzzParseFrontmatter(f *testing.F) {
	f.Add([]byte("---\nname: pdf\ndescription: Fill PDF forms\n---\nbody\n"))
	f.Add([]byte("\ufeff---\r\nname: \"a: b\"\r\ndescription: |\r\n  x\r\n---\r\n"))
	f.Add([]byte("---\n&a [*a]\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fm, body, err := ParseFrontmatter(data)
		if err != nil {
			return
		}
		norm := strings.ReplaceAll(strings.TrimPrefix(string(data), "\ufeff"), "\r\n", "\n")
		if !strings.HasSuffix(norm, string(body)) {
			t.Fatalf("body %q is not the tail of the input %q", body, norm)
		}
		out, err := yaml.Marshal(fm)
		if err != nil {
			t.Fatalf("marshal %#v: %v", fm, err)
		}
		again, _, err := ParseFrontmatter([]byte("---\n" + string(out) + "---\n"))
		if err != nil || again != fm {
			t.Fatalf("round trip of %#v through\n%s\ngave %#v, %v", fm, out, again, err)
		}
	})
}
