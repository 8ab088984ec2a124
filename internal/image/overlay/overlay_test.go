package overlay

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMountLayersOrder(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	dir := t.TempDir()
	var lowers []string
	for i, content := range []string{"base", "top"} {
		l := filepath.Join(dir, "l", string(rune('0'+i)))
		os.MkdirAll(l, 0o755)
		os.WriteFile(filepath.Join(l, "f"), []byte(content), 0o644)
		lowers = append(lowers, l)
	}
	target, upper, work := filepath.Join(dir, "m"), filepath.Join(dir, "u"), filepath.Join(dir, "w")
	for _, d := range []string{target, upper, work} {
		os.Mkdir(d, 0o755)
	}
	if err := Mount(target, upper, work, lowers); err != nil {
		t.Fatal(err)
	}
	defer Unmount(target)
	if !Mounted(target) {
		t.Fatal("not mounted")
	}
	if b, _ := os.ReadFile(filepath.Join(target, "f")); string(b) != "top" {
		t.Fatalf("the last layer is not on top: %q", b)
	}
	os.WriteFile(filepath.Join(target, "new"), []byte("x"), 0o644)
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if Mounted(target) {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Fatal("the write did not go to the upper directory")
	}
	if err := Unmount(target); err != nil {
		t.Fatalf("a second unmount: %v", err)
	}
}

func TestMountMapped(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	dir := t.TempDir()
	l := filepath.Join(dir, "l")
	os.MkdirAll(l, 0o755)
	os.WriteFile(filepath.Join(l, "f"), []byte("x"), 0o644)
	target, upper, work := filepath.Join(dir, "m"), filepath.Join(dir, "u"), filepath.Join(dir, "w")
	for _, d := range []string{target, upper, work} {
		os.Mkdir(d, 0o755)
	}
	if err := MountMapped(target, upper, work, []string{l}, IDMap{UID: 100000, GID: 100000, Size: 65536}); err != nil {
		t.Fatal(err)
	}
	defer Unmount(target)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(target, "f"), &st); err != nil || st.Uid != 100000 || st.Gid != 100000 {
		t.Fatalf("a root-owned layer file seen through the id-mapped mount: uid %d gid %d (%v), want 100000", st.Uid, st.Gid, err)
	}
	if err := syscall.Stat(filepath.Join(l, "f"), &st); err != nil || st.Uid != 0 {
		t.Fatalf("the layer itself changed owner: %d", st.Uid)
	}
}

// An image mounted read-only: its layers merged, nothing writable; one layer works too.
func TestMountReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	l1, l2, empty := filepath.Join(dir, "l1"), filepath.Join(dir, "l2"), filepath.Join(dir, "empty")
	for _, d := range []string{l1, l2, empty} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(l1, "a"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(l2, "a"), []byte("2"), 0o644)
	os.WriteFile(filepath.Join(l1, "b"), []byte("b"), 0o644)
	for name, lowers := range map[string][]string{"two": {l1, l2}, "one": {l1}} {
		target := filepath.Join(dir, "m-"+name)
		os.Mkdir(target, 0o755)
		if err := MountReadOnly(target, empty, lowers); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"two": "2", "one": "1"}[name]
		if b, _ := os.ReadFile(filepath.Join(target, "a")); string(b) != want {
			t.Errorf("%s: a = %q, want %q (the top layer's)", name, b, want)
		}
		if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err == nil {
			t.Errorf("%s: a write succeeded", name)
		}
		if err := Unmount(target); err != nil {
			t.Fatal(err)
		}
	}
}
