package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestReadFile(t *testing.T) {
	ws, dir := newWS(t)
	putFile(t, filepath.Join(dir, "abc.txt"), "alpha\nbeta\ngamma\n", 0o644)
	putFile(t, filepath.Join(dir, "noeol.txt"), "one\ntwo", 0o644)
	putFile(t, filepath.Join(dir, "crlf.txt"), "one\r\ntwo\r\n", 0o644)
	putFile(t, filepath.Join(dir, "blank.txt"), "\n\nx\n", 0o644)
	putFile(t, filepath.Join(dir, "tabs.txt"), "\tindented\n", 0o644)
	putFile(t, filepath.Join(dir, "empty.txt"), "", 0o644)
	putFile(t, filepath.Join(dir, "sub", "x.txt"), "x\n", 0o644)
	var many strings.Builder
	for i := 1; i <= 2500; i++ {
		fmt.Fprintf(&many, "line %d\n", i)
	}
	putFile(t, filepath.Join(dir, "many.txt"), many.String(), 0o644)
	// The 8 KiB sniff window cuts a two-byte character in half: still text.
	// Lines of 100 bytes; the last one starts at 8100 and its "é" takes
	// bytes 8191 and 8192, across the window's end.
	var boundary, boundaryWant strings.Builder
	for i := 1; i <= 81; i++ {
		boundary.WriteString(strings.Repeat("a", 99) + "\n")
		fmt.Fprintf(&boundaryWant, "%6d\t%s\n", i, strings.Repeat("a", 99))
	}
	boundary.WriteString(strings.Repeat("a", 91) + "é\n")
	fmt.Fprintf(&boundaryWant, "%6d\t%sé\n", 82, strings.Repeat("a", 91))
	putFile(t, filepath.Join(dir, "boundary.txt"), boundary.String(), 0o644)
	putFile(t, filepath.Join(dir, "longline.txt"), strings.Repeat("x", maxLineChars+500)+"\n", 0o644)

	numbered := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "%6d\tline %d\n", i, i)
		}
		return b.String()
	}
	cases := []struct {
		name  string
		input string
		want  string
	}{
		{"cat -n format", `{"path":"abc.txt"}`, "     1\talpha\n     2\tbeta\n     3\tgamma\n"},
		{"no final newline", `{"path":"noeol.txt"}`, "     1\tone\n     2\ttwo\n"},
		{"crlf", `{"path":"crlf.txt"}`, "     1\tone\n     2\ttwo\n"},
		{"blank lines kept", `{"path":"blank.txt"}`, "     1\t\n     2\t\n     3\tx\n"},
		{"tabs kept", `{"path":"tabs.txt"}`, "     1\t\tindented\n"},
		{"subdir", `{"path":"sub/x.txt"}`, "     1\tx\n"},
		{"offset", `{"path":"abc.txt","offset":2}`, "     2\tbeta\n     3\tgamma\n"},
		{"offset and limit", `{"path":"abc.txt","offset":2,"limit":1}`, "     2\tbeta\n[1 more lines; read on with offset=3]\n"},
		{"limit", `{"path":"abc.txt","limit":1}`, "     1\talpha\n[2 more lines; read on with offset=2]\n"},
		{"last line", `{"path":"abc.txt","offset":3}`, "     3\tgamma\n"},
		{"limit past end", `{"path":"abc.txt","offset":3,"limit":100}`, "     3\tgamma\n"},
		{"default limit 2000", `{"path":"many.txt"}`, numbered(1, 2000) + "[500 more lines; read on with offset=2001]\n"},
		{"read on", `{"path":"many.txt","offset":2001}`, numbered(2001, 2500)},
		{"wide numbers", `{"path":"many.txt","offset":2499,"limit":1}`, "  2499\tline 2499\n[1 more lines; read on with offset=2500]\n"},
		{"empty file", `{"path":"empty.txt"}`, "(empty file)"},
		{"utf-8 across the sniff window", `{"path":"boundary.txt"}`, boundaryWant.String()},
		{"long line cut", `{"path":"longline.txt"}`, "     1\t" + strings.Repeat("x", maxLineChars) + " … [line cut]\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCall(t, ws, "read_file", tc.input)
			if got != tc.want {
				if len(got) > 400 || len(tc.want) > 400 {
					t.Fatalf("output differs (len %d, want %d); got tail %q, want tail %q", len(got), len(tc.want), tail(got), tail(tc.want))
				}
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-120):] }

func TestReadFileOutputCap(t *testing.T) {
	ws, dir := newWS(t)
	line := strings.Repeat("y", 1999)
	putFile(t, filepath.Join(dir, "wide.txt"), strings.Repeat(line+"\n", 100), 0o644)
	got := mustCall(t, ws, "read_file", `{"path":"wide.txt"}`)
	// Each output line is 6+1+1999+1 = 2007 bytes; the 50th passes 100,000.
	var want strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&want, "%6d\t%s\n", i, line)
	}
	want.WriteString("[output cut at 100000 characters; read on with offset=51]\n")
	if got != want.String() {
		t.Fatalf("output (len %d) ends %q, want (len %d) ending %q", len(got), tail(got), want.Len(), tail(want.String()))
	}
}

func TestReadFileErrors(t *testing.T) {
	ws, dir := newWS(t)
	putFile(t, filepath.Join(dir, "abc.txt"), "a\nb\nc\n", 0o644)
	putFile(t, filepath.Join(dir, "nul.bin"), "text\x00more text\n", 0o644)
	putFile(t, filepath.Join(dir, "latin1.txt"), "caf\xe9\n", 0o644)
	putFile(t, filepath.Join(dir, "lateNUL.txt"), strings.Repeat("a", 9000)+"\x00", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(dir, "big.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxReadBytes + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	big.Close()

	cases := []struct {
		name  string
		input string
		parts []string
	}{
		{"offset past the end", `{"path":"abc.txt","offset":4}`, []string{"read_file: offset 4 is past the end of abc.txt (3 lines)"}},
		{"offset zero", `{"path":"abc.txt","offset":0}`, []string{`"offset" must be 1 or more, got 0`}},
		{"negative limit", `{"path":"abc.txt","limit":-1}`, []string{`"limit" must be 1 or more, got -1`}},
		{"binary NUL", `{"path":"nul.bin"}`, []string{"nul.bin looks like a binary file", "binary"}},
		{"invalid utf-8", `{"path":"latin1.txt"}`, []string{"binary"}},
		{"oversized", `{"path":"big.log"}`, []string{"big.log is 10485761 bytes, over the 10485760-byte limit of read_file"}},
		{"directory", `{"path":"adir"}`, []string{"adir is a directory: use list_files"}},
		{"workspace itself", `{"path":"."}`, []string{"use list_files"}},
		{"missing", `{"path":"nope.txt"}`, []string{"nope.txt: no such file or directory"}},
		{"missing path", `{}`, []string{`"path" is required`}},
		{"empty input", ``, []string{`"path" is required`}},
		{"wrong type", `{"path": 3}`, []string{`read_file: field "path" must be a string`}},
		{"wrong type offset", `{"path":"abc.txt","offset":"2"}`, []string{`field "offset" must be a whole number`}},
		{"fractional offset", `{"path":"abc.txt","offset":1.5}`, []string{`field "offset"`}},
		{"unknown field", `{"path":"abc.txt","file":"x"}`, []string{"read_file: invalid arguments", `unknown field "file"`}},
		{"not an object", `["abc.txt"]`, []string{"read_file:"}},
		{"broken json", `{"path":`, []string{"read_file: invalid arguments"}},
		{"NUL in path", `{"path":"abc.txt\u0000x"}`, []string{"NUL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := call(t, ws, "read_file", tc.input)
			wantErr(t, tc.input, err, tc.parts...)
			if out != "" {
				t.Errorf("output with an error: %q", out)
			}
		})
	}
	// A NUL past the sniff window is not looked for: the file reads as text.
	if _, err := call(t, ws, "read_file", `{"path":"lateNUL.txt"}`); err != nil {
		t.Errorf("late NUL: %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	t.Run("creates parents", func(t *testing.T) {
		ws, dir := newWS(t)
		out := mustCall(t, ws, "write_file", map[string]any{"path": "a/b/c.txt", "content": "hello\n"})
		if want := "wrote 6 bytes to a/b/c.txt"; out != want {
			t.Errorf("output %q, want %q", out, want)
		}
		if got := getFile(t, filepath.Join(dir, "a", "b", "c.txt")); got != "hello\n" {
			t.Errorf("content %q", got)
		}
		fi, _ := os.Stat(filepath.Join(dir, "a", "b", "c.txt"))
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("new file mode %v, want 0644", fi.Mode().Perm())
		}
		for _, d := range []string{"a", "a/b"} {
			if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
				t.Errorf("%s not a directory: %v", d, err)
			}
		}
	})
	t.Run("empty content", func(t *testing.T) {
		ws, dir := newWS(t)
		if out := mustCall(t, ws, "write_file", `{"path":"e.txt","content":""}`); out != "wrote 0 bytes to e.txt" {
			t.Errorf("output %q", out)
		}
		if fi, err := os.Stat(filepath.Join(dir, "e.txt")); err != nil || fi.Size() != 0 {
			t.Errorf("e.txt: %v %v", fi, err)
		}
	})
	t.Run("overwrites atomically", func(t *testing.T) {
		ws, dir := newWS(t)
		p := filepath.Join(dir, "f.txt")
		putFile(t, p, strings.Repeat("old content\n", 100), 0o644)
		before, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		mustCall(t, ws, "write_file", map[string]any{"path": "f.txt", "content": "new"})
		if got := getFile(t, p); got != "new" {
			t.Errorf("content %q", got)
		}
		after, _ := os.Stat(p)
		if os.SameFile(before, after) {
			t.Error("the file was rewritten in place, not replaced by a rename")
		}
		if got := names(t, dir); !slices.Equal(got, []string{"f.txt"}) {
			t.Errorf("directory holds %q after the write: temp files left behind", got)
		}
	})
	t.Run("overwrite keeps the mode", func(t *testing.T) {
		ws, dir := newWS(t)
		p := filepath.Join(dir, "run.sh")
		putFile(t, p, "#!/bin/sh\necho old\n", 0o755)
		mustCall(t, ws, "write_file", map[string]any{"path": "run.sh", "content": "#!/bin/sh\necho new\n"})
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("mode after overwrite %v, want 0755", fi.Mode().Perm())
		}
	})
	t.Run("stale temp file of a crashed writer", func(t *testing.T) {
		// A gateway that crashed mid-write, with the same pid as this one
		// (pid 1 in a container), must not block writes to the file forever.
		ws, dir := newWS(t)
		stale := fmt.Sprintf(".f.txt.miniclaw-tmp-%d", os.Getpid())
		putFile(t, filepath.Join(dir, stale), "half", 0o644)
		mustCall(t, ws, "write_file", map[string]any{"path": "f.txt", "content": "whole"})
		if got := getFile(t, filepath.Join(dir, "f.txt")); got != "whole" {
			t.Errorf("content %q", got)
		}
	})
	t.Run("concurrent writers", func(t *testing.T) {
		ws, dir := newWS(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				in, _ := json.Marshal(map[string]any{"path": "shared.txt", "content": fmt.Sprintf("writer %d\n", i)})
				_, errs[i] = tool(t, ws, "write_file").Run(context.Background(), in)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		got := getFile(t, filepath.Join(dir, "shared.txt"))
		var ok bool
		for i := range n {
			ok = ok || got == fmt.Sprintf("writer %d\n", i)
		}
		if !ok {
			t.Errorf("content %q is not one whole write", got)
		}
		if got := names(t, dir); !slices.Equal(got, []string{"shared.txt"}) {
			t.Errorf("directory holds %q", got)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		ws, dir := newWS(t)
		_, err := call(t, ws, "write_file", map[string]any{"path": "huge.txt", "content": strings.Repeat("z", MaxWriteBytes+1)})
		wantErr(t, "huge", err, "huge.txt: content is 10485761 bytes, over the 10485760-byte limit")
		if got := names(t, dir); len(got) != 0 {
			t.Errorf("directory holds %q after a refused write", got)
		}
	})
	errCases := []struct {
		name, input string
		parts       []string
	}{
		{"missing content", `{"path":"x.txt"}`, []string{`write_file: "path" and "content" are required`}},
		{"missing path", `{"content":"x"}`, []string{`"path" and "content" are required`}},
		{"null content", `{"path":"x.txt","content":null}`, []string{`"content" are required`}},
		{"empty path", `{"path":"","content":"x"}`, []string{`"path" is required`}},
		{"wrong type", `{"path":"x.txt","content":42}`, []string{`write_file: field "content" must be a string`}},
		{"unknown field", `{"path":"x.txt","content":"x","mode":"0777"}`, []string{`unknown field "mode"`}},
		{"workspace dir", `{"path":".","content":"x"}`, []string{". is the workspace directory, not a file"}},
		{"a directory", `{"path":"adir","content":"x"}`, []string{"adir is a directory"}},
		{"parent is a file", `{"path":"plain.txt/x","content":"x"}`, []string{"plain.txt/x"}},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			ws, dir := newWS(t)
			putFile(t, filepath.Join(dir, "adir", "keep.txt"), "keep", 0o644)
			putFile(t, filepath.Join(dir, "plain.txt"), "plain", 0o644)
			before := snapshot(t, dir)
			_, err := call(t, ws, "write_file", tc.input)
			wantErr(t, tc.input, err, tc.parts...)
			if after := snapshot(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("workspace changed by a refused write:\n%v\n%v", before, after)
			}
		})
	}
}

func TestEditFile(t *testing.T) {
	setup := func(t *testing.T, content string, perm os.FileMode) (*Workspace, string) {
		ws, dir := newWS(t)
		p := filepath.Join(dir, "f.txt")
		putFile(t, p, content, perm)
		if err := os.Chmod(p, perm); err != nil { // no umask
			t.Fatal(err)
		}
		return ws, p
	}
	t.Run("unique replace", func(t *testing.T) {
		ws, p := setup(t, "hello world\nbye world!\n", 0o644)
		out := mustCall(t, ws, "edit_file", map[string]any{"path": "f.txt", "old_string": "bye world", "new_string": "see you"})
		if want := "edited f.txt: replaced 9 bytes with 7 bytes"; out != want {
			t.Errorf("output %q, want %q", out, want)
		}
		if got := getFile(t, p); got != "hello world\nsee you!\n" {
			t.Errorf("content %q", got)
		}
		if got := names(t, filepath.Dir(p)); !slices.Equal(got, []string{"f.txt"}) {
			t.Errorf("directory holds %q", got)
		}
	})
	t.Run("multi-line and deletion", func(t *testing.T) {
		ws, p := setup(t, "a\nb\nc\n", 0o644)
		mustCall(t, ws, "edit_file", map[string]any{"path": "f.txt", "old_string": "a\nb\n", "new_string": ""})
		if got := getFile(t, p); got != "c\n" {
			t.Errorf("content %q", got)
		}
	})
	t.Run("mode preserved", func(t *testing.T) {
		for _, perm := range []os.FileMode{0o600, 0o755, 0o640} {
			ws, p := setup(t, "secret=1\n", perm)
			mustCall(t, ws, "edit_file", map[string]any{"path": "f.txt", "old_string": "1", "new_string": "2"})
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != perm {
				t.Errorf("mode %v after edit, want %v", fi.Mode().Perm(), perm)
			}
			if got := getFile(t, p); got != "secret=2\n" {
				t.Errorf("content %q", got)
			}
		}
	})
	errCases := []struct {
		name, content, input string
		parts                []string
	}{
		{"not found", "hello\n", `{"path":"f.txt","old_string":"bye","new_string":"x"}`, []string{"edit_file: old_string was not found in f.txt"}},
		{"two occurrences", "ab ab\n", `{"path":"f.txt","old_string":"ab","new_string":"x"}`, []string{"old_string occurs 2 times in f.txt"}},
		{"three occurrences", "a a a", `{"path":"f.txt","old_string":"a","new_string":"b"}`, []string{"occurs 3 times"}},
		{"empty old_string", "x", `{"path":"f.txt","old_string":"","new_string":"y"}`, []string{`"old_string" must not be empty`}},
		{"missing new_string", "x", `{"path":"f.txt","old_string":"x"}`, []string{`"old_string" and "new_string" are required`}},
		{"missing file", "x", `{"path":"g.txt","old_string":"x","new_string":"y"}`, []string{"g.txt: no such file or directory"}},
		{"binary file", "x\x00x", `{"path":"f.txt","old_string":"x","new_string":"y"}`, []string{"binary"}},
		{"wrong type", "x", `{"path":"f.txt","old_string":1,"new_string":"y"}`, []string{`edit_file: field "old_string" must be a string`}},
		{"unknown field", "x", `{"path":"f.txt","old":"x","new_string":"y"}`, []string{`unknown field "old"`}},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			ws, p := setup(t, tc.content, 0o644)
			_, err := call(t, ws, "edit_file", tc.input)
			wantErr(t, tc.input, err, tc.parts...)
			if got := getFile(t, p); got != tc.content {
				t.Errorf("file changed by a failed edit: %q", got)
			}
		})
	}
}

func TestListFiles(t *testing.T) {
	ws, dir := newWS(t)
	putFile(t, filepath.Join(dir, "b.txt"), "abc", 0o644)
	putFile(t, filepath.Join(dir, "a.md"), "", 0o644)
	putFile(t, filepath.Join(dir, "sub", "inner.go"), "package x\n", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	root := "a.md\t0 bytes\nb.txt\t3 bytes\nempty/\nlink@\nsub/\n"
	cases := []struct{ input, want string }{
		{`{}`, root},
		{``, root},
		{`{"directory":""}`, root},
		{`{"directory":"."}`, root},
		{`{"directory":"` + dir + `"}`, root},
		{`{"directory":"sub"}`, "inner.go\t10 bytes\n"},
		{`{"directory":"sub/"}`, "inner.go\t10 bytes\n"},
		{`{"directory":"empty"}`, "(empty directory)"},
	}
	for _, tc := range cases {
		if got := mustCall(t, ws, "list_files", tc.input); got != tc.want {
			t.Errorf("list_files %s = %q, want %q", tc.input, got, tc.want)
		}
	}
	errCases := []struct{ input, part string }{
		{`{"directory":"b.txt"}`, "not a directory"},
		{`{"directory":"nope"}`, "nope: no such file or directory"},
		{`{"directory":7}`, `list_files: field "directory" must be a string`},
		{`{"path":"sub"}`, `unknown field "path"`},
	}
	for _, tc := range errCases {
		_, err := call(t, ws, "list_files", tc.input)
		wantErr(t, tc.input, err, tc.part)
	}
}

func TestListFilesCap(t *testing.T) {
	ws, dir := newWS(t)
	for i := range maxListEntries + 5 {
		putFile(t, filepath.Join(dir, fmt.Sprintf("f%04d", i)), "", 0o644)
	}
	got := mustCall(t, ws, "list_files", `{}`)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != maxListEntries+1 {
		t.Fatalf("%d lines, want %d", len(lines), maxListEntries+1)
	}
	if last := lines[len(lines)-1]; last != "[5 more entries not shown]" {
		t.Errorf("last line %q", last)
	}
	if lines[0] != "f0000\t0 bytes" || lines[maxListEntries-1] != "f0999\t0 bytes" {
		t.Errorf("entries not sorted: first %q, last shown %q", lines[0], lines[maxListEntries-1])
	}
}

func TestSet(t *testing.T) {
	ws, _ := newWS(t)
	s := NewSet(append(ws.FileTools(), Bash{Dir: ws.Dir()})...)
	var got []string
	for _, sp := range s.Specs() {
		got = append(got, sp.Name)
		var sch struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		if err := json.Unmarshal(sp.InputSchema, &sch); err != nil || sch.Type != "object" {
			t.Errorf("%s: schema %s: %v", sp.Name, sp.InputSchema, err)
		}
		for _, r := range sch.Required {
			if _, ok := sch.Properties[r]; !ok {
				t.Errorf("%s: required %q is not a property", sp.Name, r)
			}
		}
		if sp.Description == "" {
			t.Errorf("%s: no description", sp.Name)
		}
	}
	if want := []string{"bash", "edit_file", "list_files", "read_file", "write_file"}; !slices.Equal(got, want) {
		t.Errorf("Specs order %q, want %q", got, want)
	}
	for name, ro := range map[string]bool{"bash": false, "edit_file": false, "write_file": false, "read_file": true, "list_files": true} {
		if tl, _ := s.Get(name); tl.ReadOnly() != ro {
			t.Errorf("%s ReadOnly = %v", name, !ro)
		}
	}
	if _, ok := s.Get("nope"); ok {
		t.Error("Get of an unknown tool succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("NewSet with a duplicate name did not panic")
		}
	}()
	NewSet(readFile{ws}, readFile{ws})
}

func TestSetAdd(t *testing.T) {
	ws, _ := newWS(t)
	s := NewSet(ws.FileTools()...)
	s.Add(Bash{Dir: ws.Dir()})
	if _, ok := s.Get("bash"); !ok || len(s.Specs()) != 5 {
		t.Errorf("Add: bash %v, %d specs", ok, len(s.Specs()))
	}
}

// listSource is a Source whose list the test changes.
type listSource struct{ list []Tool }

func (l *listSource) Tools() []Tool { return l.list }

// A source's tools are read on every Specs and Get: a tool added or
// removed while the set is in use is seen by the next turn; a source's
// tool named like a fixed one does not replace it.
func TestSetSourceChanges(t *testing.T) {
	ws, _ := newWS(t)
	src := &listSource{}
	s := NewSet(ws.FileTools()...)
	s.AddSource(src)
	if _, ok := s.Get("bash"); ok || len(s.Specs()) != 4 {
		t.Fatalf("empty source: %d specs", len(s.Specs()))
	}
	src.list = []Tool{Bash{Dir: ws.Dir()}, readFile{ws}}
	if tl, ok := s.Get("bash"); !ok || tl.Spec().Name != "bash" || len(s.Specs()) != 5 {
		t.Errorf("source grew: bash %v, %d specs (read_file once)", ok, len(s.Specs()))
	}
	src.list = nil
	if _, ok := s.Get("bash"); ok || len(s.Specs()) != 4 {
		t.Errorf("source emptied: bash %v, %d specs", ok, len(s.Specs()))
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	ws, dir := newWS(t)
	p := filepath.Join(dir, "locked.txt")
	putFile(t, p, "x\n", 0o000)
	_, err := call(t, ws, "read_file", `{"path":"locked.txt"}`)
	wantErr(t, "locked", err, "locked.txt: permission denied")
}
