package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// read_file streams the file: reading a 10 MB file of newlines (ten
// million lines) allocates a small part of the file, wherever the window
// is, while the note still counts the lines after it.
func TestReadFileStreams(t *testing.T) {
	ws, dir := newWS(t)
	putFile(t, filepath.Join(dir, "nl.txt"), strings.Repeat("\n", MaxReadBytes), 0o644)
	window := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "%6d\t\n", i)
		}
		return b.String()
	}
	cases := []struct{ input, want string }{
		{`{"path":"nl.txt"}`, window(1, 2000) + fmt.Sprintf("[%d more lines; read on with offset=2001]\n", MaxReadBytes-2000)},
		{fmt.Sprintf(`{"path":"nl.txt","offset":%d,"limit":3}`, MaxReadBytes-1), window(MaxReadBytes-1, MaxReadBytes)},
		{`{"path":"nl.txt","offset":5000000,"limit":2}`, window(5000000, 5000001) + fmt.Sprintf("[%d more lines; read on with offset=5000002]\n", MaxReadBytes-5000001)},
	}
	for _, tc := range cases {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := call(t, ws, "read_file", tc.input)
		runtime.ReadMemStats(&after)
		if err != nil || got != tc.want {
			t.Errorf("read_file %s = (…%q, %v), want …%q", tc.input, tail(got), err, tail(tc.want))
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
			t.Errorf("read_file %s of a %d-byte file allocated %d bytes", tc.input, MaxReadBytes, n)
		}
	}
}

// offset and limit are bounded by the most lines a readable file can have,
// so no sum of them overflows (a limit of 2^63-1 used to print a negative
// count of "more lines").
func TestReadFileRanges(t *testing.T) {
	ws, dir := newWS(t)
	putFile(t, filepath.Join(dir, "abc.txt"), "a\nb\nc\n", 0o644)
	cases := []struct{ input, want string }{
		{`{"path":"abc.txt","offset":2,"limit":9223372036854775807}`, `read_file: "limit" 9223372036854775807 is over the maximum 10485760`},
		{`{"path":"abc.txt","limit":4611686018427387904}`, `read_file: "limit" 4611686018427387904 is over the maximum 10485760`},
		{`{"path":"abc.txt","offset":4611686018427387904,"limit":4611686018427387904}`, `read_file: "offset" 4611686018427387904 is over the maximum 10485760`},
		{`{"path":"abc.txt","offset":-9223372036854775808}`, `read_file: "offset" must be 1 or more, got -9223372036854775808`},
	}
	for _, tc := range cases {
		out, err := call(t, ws, "read_file", tc.input)
		if err == nil || err.Error() != tc.want {
			t.Errorf("read_file %s = (%q, %v), want the error %q", tc.input, out, err, tc.want)
		}
	}
	if got := mustCall(t, ws, "read_file", `{"path":"abc.txt","offset":2,"limit":10485760}`); got != "     2\tb\n     3\tc\n" {
		t.Errorf("the largest limit: %q", got)
	}
}

// A name with a newline or another control character is shown quoted, so
// one name cannot pass for several entries (or hide an escape sequence);
// plain names are shown as they are.
func TestListFilesEscapesNames(t *testing.T) {
	ws, dir := newWS(t)
	for _, name := range []string{"a\nb.txt", "\x1b]52;c;aGk=\x07", "tab\tname", `"quoted"`, "plain é.txt"} {
		putFile(t, filepath.Join(dir, name), "x", 0o644)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir\rx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("plain é.txt", filepath.Join(dir, "link\n")); err != nil {
		t.Fatal(err)
	}
	want := `"\x1b]52;c;aGk=\a"` + "\t1 bytes\n" +
		`"\"quoted\""` + "\t1 bytes\n" +
		`"a\nb.txt"` + "\t1 bytes\n" +
		`"dir\rx"/` + "\n" +
		`"link\n"@` + "\n" +
		"plain é.txt\t1 bytes\n" +
		`"tab\tname"` + "\t1 bytes\n"
	if got := mustCall(t, ws, "list_files", `{}`); got != want {
		t.Errorf("list_files =\n%s\nwant\n%s", got, want)
	}
}
