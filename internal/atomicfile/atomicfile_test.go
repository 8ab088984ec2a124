package atomicfile

import (
	"os"
	"path/filepath"
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
