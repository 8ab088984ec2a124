package rootfs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/testenv"
)

func TestLookupUser(t *testing.T) {
	root, _ := setup(t)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\n"), 0o644)
	u, err := LookupUser(root, "alice")
	if err != nil || u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{10}) {
		t.Errorf("alice: %+v, %v", u, err)
	}
	if u, err := LookupUser(root, "2000:3000"); err != nil || u.UID != 2000 || u.GID != 3000 {
		t.Errorf("2000:3000: %+v, %v", u, err)
	}
}

// TestLookupUserHostile: a passwd or group file that is a FIFO, a directory, a link out or
// huge gives one error naming --user and the file, at once.
func TestLookupUserHostile(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		plant      func(t *testing.T, p string)
		want       string
	}{
		{"passwd fifo", "etc/passwd", func(t *testing.T, p string) { unix.Mkfifo(p, 0o644) }, "/etc/passwd in the rootfs %ROOT% is a FIFO: want a regular file"},
		{"group fifo", "etc/group", func(t *testing.T, p string) { unix.Mkfifo(p, 0o644) }, "/etc/group in the rootfs %ROOT% is a FIFO: want a regular file"},
		{"passwd directory", "etc/passwd", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }, "/etc/passwd in the rootfs %ROOT% is a directory: want a regular file"},
		{"passwd link out", "etc/passwd", func(t *testing.T, p string) { os.Symlink("../../../../../../../etc/passwd", p) }, "/etc/passwd in the rootfs %ROOT%: escapes the rootfs"},
		{"passwd huge", "etc/passwd", func(t *testing.T, p string) {
			f, _ := os.Create(p)
			defer f.Close()
			f.WriteString("alice:x:1000:1000::/:/bin/sh\n")
			if err := f.Truncate(10 << 30); err != nil {
				testenv.Missing(t, "no sparse file here: %v", err)
			}
		}, "/etc/passwd in the rootfs %ROOT% is larger than 33554432 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _ := setup(t)
			os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("alice:x:1000:1000::/:/bin/sh\n"), 0o644)
			os.WriteFile(filepath.Join(root, "etc/group"), []byte("wheel:x:10:alice\n"), 0o644)
			p := filepath.Join(root, tc.file)
			os.Remove(p)
			tc.plant(t, p)
			err := quick(t, "LookupUser", func() error { _, err := LookupUser(root, "alice"); return err })
			want(t, "LookupUser", err, root, `--user "alice": `+tc.want)
			if k := errdefs.Kind(err); k != errdefs.ErrFailedPrecondition && k != errdefs.ErrInvalidArgument {
				t.Errorf("category %v", k)
			}
			if strings.Count(err.Error(), "--user") != 1 {
				t.Errorf("flag named more than once: %v", err)
			}
		})
	}
}
