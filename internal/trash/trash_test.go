package trash

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveMovesAndDeletes(t *testing.T) {
	root := t.TempDir()
	b, err := Open(filepath.Join(root, ".trash"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "c1")
	if err := os.MkdirAll(filepath.Join(victim, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "sub/b"} {
		if err := os.WriteFile(filepath.Join(victim, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Fatalf("%s still there after Remove: %v", victim, err)
	}
	b.Wait()
	ents, err := os.ReadDir(filepath.Join(root, ".trash"))
	if err != nil || len(ents) != 0 {
		t.Fatalf("trash not emptied: %v %v", ents, err)
	}
	if err := b.Remove(filepath.Join(root, "missing")); err != nil {
		t.Fatalf("missing path: %v", err)
	}
}

func TestOpenEmptiesLeftovers(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, ".trash")
	if err := os.MkdirAll(filepath.Join(dir, "7-left", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("leftovers not removed: %v %v", ents, err)
	}
}

func TestOtherFileSystemIsDeletedInPlace(t *testing.T) {
	// /dev/shm is a tmpfs: a directory there cannot be renamed into a trash on the test's
	// temp dir unless that is the same tmpfs.
	shm, err := os.MkdirTemp("/dev/shm", "trash-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(shm)
	b, err := Open(filepath.Join(t.TempDir(), ".trash"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(shm, "c")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", victim, err)
	}
}
