package safeopen

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miniclaw/miniclaw/internal/testutil"
)

func TestOpenRefusesWhatIsNotWanted(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	testutil.Mkfifo(t, fifo)
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		want Kind
		err  string // the error's end; "" when the open must succeed
	}{
		{"fifo", Regular, "is a named pipe, not a regular file"},
		{"fifo", Dir, "is a named pipe, not a directory"},
		{"sock", Regular, "is a socket, not a regular file"},
		{"zero", Regular, "is a character device, not a regular file"},
		{"file", Dir, "is a regular file, not a directory"},
		{".", Regular, "is a directory, not a regular file"},
		{"file", Regular, ""},
		{".", Dir, ""},
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range cases {
		for _, how := range []string{"Open", "OpenIn"} {
			if how == "OpenIn" && tc.name == "zero" {
				continue // the root refuses the link to /dev itself
			}
			var f *os.File
			var err error
			testutil.Within(t, 5*time.Second, how+" "+tc.name, func() {
				if how == "Open" {
					f, _, err = Open(filepath.Join(dir, tc.name), tc.want)
				} else {
					f, _, err = OpenIn(root, tc.name, tc.want)
				}
			})
			if tc.err == "" {
				if err != nil {
					t.Errorf("%s %s: %v", how, tc.name, err)
				} else {
					f.Close()
				}
				continue
			}
			var te *TypeError
			if err == nil || !errors.As(err, &te) || !strings.HasSuffix(err.Error(), tc.err) {
				t.Errorf("%s %s (want %s): err = %v, want a TypeError ending %q", how, tc.name, tc.want, err, tc.err)
			}
		}
	}
	if _, _, err := Open(filepath.Join(dir, "missing"), Regular); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	// OpenFile creates what is missing, and refuses a FIFO to append to.
	f, _, err := OpenFile(filepath.Join(dir, "new"), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600, Regular)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	testutil.Within(t, 5*time.Second, "append to a FIFO", func() {
		_, _, err = OpenFile(fifo, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600, Regular)
	})
	if err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("append to a FIFO: err = %v", err)
	}
}

// ReadHead costs the limit, not the file: a sparse 1 GiB file reads
// limit+1 bytes.
func TestReadHeadReadsOnlyTheLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("head"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	head, cut, err := ReadHead(p, 100)
	runtime.ReadMemStats(&after)
	if err != nil || !cut || len(head) != 100 || string(head[:4]) != "head" {
		t.Fatalf("ReadHead = (%q…, %v, %v)", head[:min(len(head), 8)], cut, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("ReadHead of 100 bytes allocated %d bytes", n)
	}
	small := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(small, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	for limit, want := range map[int]bool{4: true, 5: false, 6: false} {
		if head, cut, err := ReadHead(small, limit); err != nil || cut != want || string(head) != "12345"[:min(5, limit)] {
			t.Errorf("ReadHead(limit %d) = (%q, %v, %v), want cut %v", limit, head, cut, err, want)
		}
	}
}

// Inside a root, a symbolic link that stays inside is followed and one that
// leads out is refused, by name, whether it is read, created through or
// reached through a linked directory; the outside file is never opened.
// This also pins the text of os.Root's escape error, which InRoot matches.
func TestOpenInRefusesLinksOut(t *testing.T) {
	ws, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "real.md"), []byte("inside"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"out.md": secret, "in.md": "real.md", "outdir": outside} {
		if err := os.Symlink(target, filepath.Join(ws, link)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if b, _, err := ReadHeadIn(root, "in.md", 100); err != nil || string(b) != "inside" {
		t.Errorf("ReadHeadIn(in.md) = %q, %v", b, err)
	}
	for _, name := range []string{"out.md", "outdir/secret", "outdir/new"} {
		_, _, err := OpenFileIn(root, name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600, Regular)
		want := filepath.Join(ws, name) + " is a symbolic link leading out of " + ws
		var ee *EscapeError
		if !errors.As(err, &ee) || err.Error() != want {
			t.Errorf("OpenFileIn(%s): err = %v, want %q", name, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file was created outside the root: %v", err)
	}
}

// A named pipe in place of a directory that OpenDir opens as a root (the
// memory directory, the workspace) is refused at once: os.OpenRoot alone
// would wait for a writer.
func TestOpenDirRefusesAFIFO(t *testing.T) {
	ws := t.TempDir()
	fifo := filepath.Join(ws, "data")
	testutil.Mkfifo(t, fifo)
	for _, within := range []string{ws, ""} {
		var err error
		testutil.Within(t, 5*time.Second, "OpenDir", func() { _, err = OpenDir(within, fifo, false) })
		if want := fifo + " is a named pipe, not a directory"; err == nil || err.Error() != want {
			t.Errorf("OpenDir(%q, fifo): err = %v, want %q", within, err, want)
		}
	}
}
