package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// dirUsage counts a hard-linked file once and every directory; a missing root is nothing.
func TestDirUsage(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "f"), make([]byte, 64<<10), 0o644)
	if err := os.Link(filepath.Join(dir, "a", "f"), filepath.Join(dir, "a", "b", "g")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "l")) // not followed
	used, inodes, err := dirUsage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// dir, a, a/b, the file (once), the link.
	if inodes != 5 || used < 64<<10 || used > 64<<10+64<<10 {
		t.Errorf("used %d inodes %d, want 5 inodes and about 64 KiB", used, inodes)
	}
	if used, inodes, _ := dirUsage(context.Background(), filepath.Join(dir, "none")); used != 0 || inodes != 0 {
		t.Errorf("missing dir: %d %d", used, inodes)
	}
}

// A writable layer's usage is walked at most once per layerUsageTTL.
func TestLayerUsageCache(t *testing.T) {
	dir := t.TempDir()
	var c layerUsageCache
	_, n1, ok := c.get("c1", dir)
	if !ok || n1 != 1 {
		t.Fatalf("empty layer: %d inodes %v", n1, ok)
	}
	os.WriteFile(filepath.Join(dir, "new"), []byte("x"), 0o644)
	if _, n, _ := c.get("c1", dir); n != n1 {
		t.Errorf("walked again within the TTL: %d inodes", n)
	}
	c.mu.Lock()
	c.entries["c1"].at = time.Now().Add(-2 * layerUsageTTL)
	c.entries["gone"] = &layerUsage{at: time.Now().Add(-2 * time.Minute)}
	c.mu.Unlock()
	if _, n, _ := c.get("c1", dir); n != 2 {
		t.Errorf("after the TTL: %d inodes, want 2", n)
	}
	if _, ok := c.entries["gone"]; ok {
		t.Error("an entry unused for minutes is kept")
	}
}
