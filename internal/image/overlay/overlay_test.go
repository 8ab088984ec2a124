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
