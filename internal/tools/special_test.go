package tools

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

// A named pipe, a socket or a device in the workspace is refused at once
// with an error naming it and its type: opening a FIFO for reading blocks
// until a writer comes, which would hang the turn (and abort could not
// stop it).
func TestFileToolsRefuseSpecialFiles(t *testing.T) {
	ws, dir := newWS(t)
	testutil.Mkfifo(t, filepath.Join(dir, "notes.txt"))
	testutil.Mkfifo(t, filepath.Join(dir, "sub", "pipe"))
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cases := []struct{ tool, input, want string }{
		{"read_file", `{"path":"notes.txt"}`, "read_file: notes.txt is a named pipe, not a regular file"},
		{"read_file", `{"path":"./sub/pipe"}`, "read_file: ./sub/pipe is a named pipe, not a regular file"},
		{"read_file", `{"path":"sock"}`, "read_file: sock is a socket, not a regular file"},
		{"edit_file", `{"path":"notes.txt","old_string":"a","new_string":"b"}`, "edit_file: notes.txt is a named pipe, not a regular file"},
		{"list_files", `{"directory":"notes.txt"}`, "list_files: notes.txt is a named pipe, not a directory"},
		{"list_files", `{"directory":"sock"}`, "list_files: sock is a socket, not a directory"},
	}
	// A character device (the numbers of /dev/zero) where the test may make one.
	listing := "notes.txt\tnamed pipe\nsock\tsocket\nsub/\n"
	if syscall.Mknod(filepath.Join(dir, "zero"), syscall.S_IFCHR|0o666, 1<<8|5) == nil {
		cases = append(cases, struct{ tool, input, want string }{"read_file", `{"path":"zero"}`, "read_file: zero is a character device, not a regular file"})
		listing += "zero\tcharacter device\n"
	}
	for _, tc := range cases {
		t.Run(tc.tool+" "+tc.input, func(t *testing.T) {
			var out string
			var err error
			testutil.Within(t, 5*time.Second, tc.tool+" "+tc.input, func() {
				out, err = tool(t, ws, tc.tool).Run(t.Context(), []byte(tc.input))
			})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got (%q, %v), want the error %q", out, err, tc.want)
			}
		})
	}
	// The listing shows what the entries are instead of a size.
	var out string
	testutil.Within(t, 5*time.Second, "list_files", func() { out, err = call(t, ws, "list_files", `{}`) })
	if err != nil || out != listing {
		t.Errorf("list_files = (%q, %v), want %q", out, err, listing)
	}
}
