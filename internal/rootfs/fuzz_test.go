package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary archives to Extract, as a hostile container (cp to the host) or
// client (cp into a container) would: nothing may appear outside the destination, nothing
// may panic, and a refusal is one line.
func FuzzExtract(f *testing.F) {
	for _, entries := range [][]string{
		{"d/", "d/f"},
		{"d/", "d/evil->/", "d/evil/x"},
		{"d/", "d/evil->../..", "d/evil/x"},
		{"d/", "d/../../x"},
		{"d/", "d/p|", "d/f"},
		{"d/f", "d/f->x", "d/f"},
	} {
		f.Add(tarOf(f, entries...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dst, outside := filepath.Join(base, "dst"), filepath.Join(base, "outside")
		os.Mkdir(dst, 0o755)
		os.Mkdir(outside, 0o755)
		_, err := extractInto(dst, "/new", "d", true, data, ExtractOptions{UID: os.Getuid(), GID: os.Getgid()})
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("written outside the destination: %v", ents)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Fatalf("written beside the destination: %v", ents)
		}
	})
}
