package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Each writer leaves the new content under the name, with the mode asked for, and no
// temporary file beside it.
func TestWriters(t *testing.T) {
	for name, w := range map[string]func(string, []byte, os.FileMode) error{
		"Write": Write, "WriteSynced": WriteSynced, "Replace": Replace,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.json")
			if err := w(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := w(p, []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil || string(b) != "new" {
				t.Fatalf("content %q, %v", b, err)
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode().Perm())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("left beside the file: %v", ents)
			}
		})
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SyncDir of a missing directory: no error")
	}
}

func TestWriteNew(t *testing.T) {
	old := syscall.Umask(0o077) // the mode must not depend on the umask
	defer syscall.Umask(old)
	for _, durable := range []bool{false, true} {
		dir := t.TempDir()
		p := filepath.Join(dir, "hosts")
		// new: in place, with its mode
		if err := WriteNew(p, []byte("one"), 0o644, durable); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "one" {
			t.Fatalf("content %q", b)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", fi.Mode().Perm())
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		// there already: replaced by rename (a new inode), never written through
		if err := WriteNew(p, []byte("two"), 0o600, durable); err != nil {
			t.Fatal(err)
		}
		fi, _ = os.Stat(p)
		if b, _ := os.ReadFile(p); string(b) != "two" || fi.Mode().Perm() != 0o600 {
			t.Errorf("second write: %q, mode %v", b, fi.Mode().Perm())
		}
		if fi.Sys().(*syscall.Stat_t).Ino == ino {
			t.Error("second write went into the first file, not through a rename")
		}
		// a symlink at the path is replaced, its target untouched
		target := filepath.Join(dir, "target")
		os.WriteFile(target, []byte("keep"), 0o600)
		l := filepath.Join(dir, "link")
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
		if err := WriteNew(l, []byte("new"), 0o644, durable); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(target); string(b) != "keep" {
			t.Errorf("the symlink's target was written: %q", b)
		}
		if fi, _ := os.Lstat(l); fi.Mode()&os.ModeSymlink != 0 {
			t.Error("the symlink is still there")
		}
		// empty data: an empty file (a mark)
		m := filepath.Join(dir, "mark")
		if err := WriteNew(m, nil, 0o600, durable); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(m); err != nil || fi.Size() != 0 {
			t.Errorf("mark: %v, %v", fi, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 4 {
			t.Errorf("left in the directory: %v", ents)
		}
	}
	// a directory that is not there: the error, nothing made
	if err := WriteNew(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o600, false); err == nil {
		t.Error("no error for a missing directory")
	}
}
