//go:build unix

package session

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Both ways of renaming without replacing (renameat2, and link-then-unlink
// where the file system refuses renameat2) keep an existing target intact.
func TestRenameNoReplace(t *testing.T) {
	for name, rename := range map[string]func(*os.Root, string, string) error{
		"renameNoReplace": renameNoReplace,
		"linkThenUnlink":  linkThenUnlink,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			src, dst, free := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "free")
			writeFile(t, src, []byte("new"))
			writeFile(t, dst, []byte("old"))
			if err := rename(root, "src", "dst"); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("rename over an existing file: %v, want an fs.ErrExist error", err)
			}
			if got := readFile(t, dst); string(got) != "old" || !exists(src) {
				t.Fatalf("target now %q, source exists %v", got, exists(src))
			}
			if err := rename(root, "src", "free"); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, free); string(got) != "new" || exists(src) {
				t.Fatalf("renamed file holds %q, source still exists %v", got, exists(src))
			}
		})
	}
}
