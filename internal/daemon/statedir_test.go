package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// A container's state directory is fresh only when this start made it.
func TestMakeStateDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "containers", "abc") // the parent is made too
	fresh, err := makeStateDir(dir)
	if err != nil || !fresh {
		t.Fatalf("first: fresh %v, %v", fresh, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v, %v", fi, err)
	}
	if fresh, err := makeStateDir(dir); err != nil || fresh {
		t.Fatalf("again: fresh %v, %v", fresh, err)
	}
	// a file in the way: an error, not a fresh directory
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o600)
	if fresh, err := makeStateDir(file); err == nil || fresh {
		t.Fatalf("a file: fresh %v, %v", fresh, err)
	}
	// a symlink to a directory is not the directory
	link := filepath.Join(root, "link")
	os.Symlink(dir, link)
	if fresh, err := makeStateDir(link); err == nil || fresh {
		t.Fatalf("a symlink: fresh %v, %v", fresh, err)
	}
}
