package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/internal/errdefs"
)

func TestCreateGetListRemove(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create("data", map[string]string{"a": "b"})
	if err != nil || !created || v.Mountpoint != filepath.Join(dir, "data", "_data") || v.Labels["a"] != "b" {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("no data dir: %v", err)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644)
	if v2, created, err := s.Create("data", nil); err != nil || created || v2.Labels["a"] != "b" {
		t.Fatalf("second create: %+v %v %v", v2, created, err)
	}
	anon, _, err := s.Create("", nil)
	if err != nil || len(anon.Name) != 64 {
		t.Fatalf("random name: %+v %v", anon, err)
	}
	if vs, _ := s.List(); len(vs) != 2 {
		t.Fatalf("list: %+v", vs)
	}
	for _, bad := range []string{"a", "-x", "../x", "a/b", ".hidden", "x y"} {
		if _, _, err := s.Create(bad, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if err := s.Remove("data", []string{"web"}); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("in use: %v", err)
	}
	if err := s.Remove("data", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after rm: %v", err)
	}
	if err := s.Remove("data", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("rm twice: %v", err)
	}
	// What a crash leaves (a half-made volume, one half-removed) goes at the next Open.
	os.MkdirAll(filepath.Join(dir, ".new-x-123/_data"), 0o755)
	os.MkdirAll(filepath.Join(dir, ".rm-y-456/_data"), 0o755)
	Open(dir)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != anon.Name {
		t.Fatalf("left after reopen: %v", ents)
	}
}

func TestAcquire(t *testing.T) {
	s, _ := Open(t.TempDir())
	s.Create("old", nil)
	release, err := s.Acquire([]string{"old", "new"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("new", nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove while a create holds it: %v", err)
	}
	if n, _ := s.Prune(func(string) bool { return false }); len(n) != 0 {
		t.Fatalf("prune took held volumes: %v", n)
	}
	release(true) // the create failed: what it made goes, what was there stays
	if _, err := s.Get("new"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("made by a failed create, still there: %v", err)
	}
	if _, err := s.Get("old"); err != nil {
		t.Fatalf("existing volume removed by a failed create: %v", err)
	}
	release, _ = s.Acquire([]string{"kept"})
	release(false)
	if _, err := s.Get("kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire([]string{"ok1", "b/d"}); err == nil {
		t.Fatal("bad name acquired")
	}
	if _, err := s.Get("ok1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a failed Acquire left what it made: %v", err)
	}
}
