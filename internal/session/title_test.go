package session

import "testing"

// TestTitleFrom: a title is the first line of the first user message as
// plain text, without the Markdown markup around its words.
func TestTitleFrom(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello world", "hello world"},
		{"  first line  \nsecond line", "first line"},
		{"What is **miniclaw**?", "What is miniclaw?"},
		{"# Plan for __today__", "Plan for today"},
		{"### deep heading ###", "deep heading"},
		{"#hashtag stays", "#hashtag stays"},
		{"fix issue #", "fix issue #"},
		{"> ## quoted heading", "quoted heading"},
		{"run `go test ./...` please", "run go test ./... please"},
		{"read [the docs](https://example.com/a_(b)) first", "read the docs first"},
		{"see ![a diagram](x.png) and [b] (c)", "see a diagram and [b] (c)"},
		{"> quoted ~~old~~ text", "quoted old text"},
		{"snake_case and 2*3*4 stay", "snake_case and 2*3*4 stay"},
		{"**\n\nbody", "body"},
	} {
		if got := titleFrom(tc.in); got != tc.want {
			t.Errorf("titleFrom(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
