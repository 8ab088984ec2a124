package hostchannel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResize(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	// Not mounted: only the record changes, and the next mount uses it.
	ch2, err := m.Resize("c1", ch, 2*MiB)
	if err != nil || ch2.Size != 2*MiB {
		t.Fatalf("Resize unmounted: %+v %v", ch2, err)
	}
	if _, err := m.Mount("c1", ch2); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		var st unix.Statfs_t
		unix.Statfs(hp, &st)
		return int64(st.Blocks) * int64(st.Bsize)
	}
	if size() != 2*MiB {
		t.Fatalf("mounted at %d bytes, want the recorded 2 MiB", size())
	}
	id := mountsOn(t, hp)[0].ID
	if err := os.WriteFile(filepath.Join(hp, "f"), make([]byte, 3*MiB/2), 0o644); err != nil {
		t.Fatal(err)
	}
	// Live: same mount, new size, data kept, flags kept.
	ch3, err := m.Resize("c1", ch2, 4*MiB)
	if err != nil || size() != 4*MiB || ch3.Size != 4*MiB {
		t.Fatalf("grow: %v, size %d", err, size())
	}
	ms := mountsOn(t, hp)
	if len(ms) != 1 || ms[0].ID != id || !strings.Contains(ms[0].Options, "nosuid") || !strings.Contains(ms[0].Options, "noexec") || !strings.Contains(ms[0].Options, "nodev") {
		t.Fatalf("after the remount: %+v", ms)
	}
	if b, err := os.ReadFile(filepath.Join(hp, "f")); err != nil || int64(len(b)) != 3*MiB/2 {
		t.Fatalf("data lost: %d %v", len(b), err)
	}
	if _, err := m.Resize("c1", ch3, MiB); err == nil || !strings.Contains(err.Error(), "in use") || !errors.Is(err, ErrInvalid) {
		t.Fatalf("shrink below use: %v", err)
	}
	if size() != 4*MiB {
		t.Fatalf("a refused shrink changed the size: %d", size())
	}
	if _, err := m.Resize("c1", ch3, 100); err == nil {
		t.Fatalf("below a page: accepted")
	}
	if _, err := m.Resize("c2", ch3, 8*MiB); err == nil {
		t.Fatalf("another container's channel resized")
	}
	if err := m.Remove("c1", ch3); err != nil {
		t.Fatal(err)
	}
}
