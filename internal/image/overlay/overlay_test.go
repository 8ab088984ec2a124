package overlay

import (
	"os"
	"path/filepath"
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
