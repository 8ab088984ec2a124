package rootfs

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/testenv"
)

// hostile is what a container's root (or an image author) can leave at /etc/x of a rootfs.
type hostile struct {
	name  string
	plant func(t *testing.T, root, host string) // makes root/etc/x; host is a directory outside
	read  string                                // error ReadFile must give ("" = reads "inside")
	write string                                // error WriteFile must give ("" = writes it)
	// For writes that succeed: where the data lands, relative to root.
	lands string
}

func plantFIFO(t *testing.T, root, _ string) {
	if err := unix.Mkfifo(filepath.Join(root, "etc/x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func plantSocket(t *testing.T, root, _ string) {
	l, err := net.Listen("unix", filepath.Join(root, "etc/x"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func plantDevice(t *testing.T, root, _ string) {
	// /dev/null's numbers: opening it would be harmless, but nothing may open it.
	if err := unix.Mknod(filepath.Join(root, "etc/x"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		testenv.Missing(t, "mknod needs CAP_MKNOD: %v", err)
	}
}

func plantLink(target string) func(*testing.T, string, string) {
	return func(t *testing.T, root, host string) {
		if err := os.Symlink(strings.ReplaceAll(target, "%HOST%", host), filepath.Join(root, "etc/x")); err != nil {
			t.Fatal(err)
		}
	}
}

var hostiles = []hostile{
	{name: "fifo", plant: plantFIFO, read: "/etc/x in the rootfs %ROOT% is a FIFO: want a regular file", write: "/etc/x in the rootfs %ROOT% is a FIFO: want a regular file"},
	{name: "socket", plant: plantSocket, read: "is a socket: want a regular file", write: "is a socket: want a regular file"},
	{name: "device", plant: plantDevice, read: "is a character device: want a regular file", write: "is a character device: want a regular file"},
	{name: "directory", plant: func(t *testing.T, root, _ string) { os.Mkdir(filepath.Join(root, "etc/x"), 0o755) },
		read: "is a directory: want a regular file", write: "is a directory: want a regular file"},
	{name: "symlink to a FIFO", plant: func(t *testing.T, root, host string) {
		unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644)
		plantLink("fifo")(t, root, host)
	}, read: "/etc/fifo in the rootfs %ROOT% is a FIFO", write: "/etc/fifo in the rootfs %ROOT% is a FIFO"},
	// An absolute target is the container's: /etc/shadow of the rootfs, not the host's.
	{name: "absolute symlink out", plant: plantLink("%HOST%/victim"), read: "no such file", lands: "%HOST%/victim"},
	{name: "absolute symlink to the rootfs' shadow", plant: plantLink("/etc/shadow"), lands: "etc/shadow"},
	{name: "relative symlink out", plant: plantLink("../../../../../../../../victim"), read: "escapes the rootfs", write: "escapes the rootfs"},
	{name: "relative symlink to the host dir", plant: plantLink("../../host/victim"), read: "escapes the rootfs", write: "escapes the rootfs"},
	{name: "symlink loop", plant: func(t *testing.T, root, host string) {
		os.Symlink("y", filepath.Join(root, "etc/y2"))
		os.Symlink("y2", filepath.Join(root, "etc/y"))
		plantLink("y")(t, root, host)
	}, read: "too many levels of symbolic links", write: "too many levels of symbolic links"},
	{name: "dangling symlink", plant: plantLink("/new/dir/file"), read: "no such file", lands: "new/dir/file"},
	{name: "regular", plant: func(t *testing.T, root, _ string) {
		os.WriteFile(filepath.Join(root, "etc/x"), []byte("inside\n"), 0o600)
	}, lands: "etc/x"},
	{name: "huge", plant: func(t *testing.T, root, _ string) {
		// 10 GB, sparse: the bound is checked before anything is read.
		f, err := os.Create(filepath.Join(root, "etc/x"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(10 << 30); err != nil {
			testenv.Missing(t, "no sparse file here: %v", err)
		}
	}, read: "/etc/x in the rootfs %ROOT% is larger than 1048576 bytes", lands: "etc/x"},
}

// setup makes base/rootfs with /etc and base/host with a victim file.
func setup(t *testing.T) (root, host string) {
	base := t.TempDir()
	root, host = filepath.Join(base, "rootfs"), filepath.Join(base, "host")
	for _, d := range []string{filepath.Join(root, "etc"), host} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(host, "victim"), []byte("host\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("inside\n"), 0o644)
	return root, host
}

// quick runs f and fails the test if it does not return within 5 s: the engine's old code
// blocked for ever opening a FIFO. The goroutine is left behind then (nothing can unblock it).
func quick(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked", what)
		return nil
	}
}

func want(t *testing.T, what string, err error, root, msg string) {
	t.Helper()
	msg = strings.ReplaceAll(msg, "%ROOT%", root)
	if err == nil || !strings.Contains(err.Error(), msg) {
		t.Fatalf("%s: err = %v, want one containing %q", what, err, msg)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error of more than one line: %q", what, err)
	}
	if errdefs.Kind(err) == errdefs.ErrUnknown && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ELOOP) {
		t.Errorf("%s: error without a category: %v", what, err)
	}
}

func TestReadFileHostile(t *testing.T) {
	for _, tc := range hostiles {
		t.Run(tc.name, func(t *testing.T) {
			root, host := setup(t)
			tc.plant(t, root, host)
			var data []byte
			err := quick(t, "ReadFile", func() (err error) {
				data, err = ReadFile(root, "/etc/x", 1<<20)
				return err
			})
			if tc.read != "" {
				want(t, "ReadFile", err, root, tc.read)
				return
			}
			if err != nil || string(data) != "inside\n" {
				t.Fatalf("ReadFile = %q, %v; want the rootfs' own file", data, err)
			}
		})
	}
}

func TestWriteFileHostile(t *testing.T) {
	for _, tc := range hostiles {
		t.Run(tc.name, func(t *testing.T) {
			root, host := setup(t)
			tc.plant(t, root, host)
			before, _ := os.Lstat(filepath.Join(root, "etc/x"))
			err := quick(t, "WriteFile", func() error { return WriteFile(root, "/etc/x", []byte("new\n"), 0o644) })
			if b, _ := os.ReadFile(filepath.Join(host, "victim")); string(b) != "host\n" {
				t.Fatalf("the host's file was written: %q", b)
			}
			if tc.write != "" {
				want(t, "WriteFile", err, root, tc.write)
				// Refused: left exactly as it was.
				after, _ := os.Lstat(filepath.Join(root, "etc/x"))
				if before == nil || after == nil || !os.SameFile(before, after) || before.Mode() != after.Mode() {
					t.Errorf("refused, but /etc/x changed: %v -> %v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			p := filepath.Join(root, strings.ReplaceAll(tc.lands, "%HOST%", host))
			fi, err := os.Stat(p)
			if b, _ := os.ReadFile(p); err != nil || string(b) != "new\n" || fi.Mode() != 0o644 {
				t.Errorf("%s: %q (%v, %v), want %q mode 0644", p, b, fi, err, "new\n")
			}
		})
	}
}

func TestWriteFileKeepsInode(t *testing.T) {
	root, _ := setup(t)
	p := filepath.Join(root, "etc/x")
	os.WriteFile(p, []byte(strings.Repeat("long old content\n", 100)), 0o600)
	before, _ := os.Stat(p)
	if err := WriteFile(root, "/etc/x", []byte("short\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "short\n" || !os.SameFile(before, after) {
		t.Errorf("content %q, same inode %v", b, os.SameFile(before, after))
	}
}

func TestReadFileMissing(t *testing.T) {
	root, _ := setup(t)
	if _, err := ReadFile(root, "/etc/nope", 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	if _, err := ReadFile(filepath.Join(root, "nope"), "/etc/x", 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing rootfs: %v, want ErrNotExist", err)
	}
	if _, err := ReadFile("relative", "/etc/x", 10); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative rootfs: %v, want invalid argument", err)
	}
}

// TestWriteFileRace swaps /etc/x between a regular file, a FIFO and a symlink to the host
// while writing: the host's file is never touched and no write blocks.
func TestWriteFileRace(t *testing.T) {
	root, host := setup(t)
	x := filepath.Join(root, "etc/x")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := filepath.Join(root, "etc/tmp")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(tmp)
			switch i % 3 {
			case 0:
				os.WriteFile(tmp, nil, 0o644)
			case 1:
				unix.Mkfifo(tmp, 0o644)
			case 2:
				os.Symlink("../../host/victim", tmp)
			}
			os.Rename(tmp, x)
		}
	}()
	deadline := time.Now().Add(300 * time.Millisecond)
	for n := 0; time.Now().Before(deadline) || n < 50; n++ {
		quick(t, "WriteFile", func() error { return WriteFile(root, "/etc/x", []byte("new\n"), 0o644) })
	}
	close(stop)
	wg.Wait()
	if b, _ := os.ReadFile(filepath.Join(host, "victim")); string(b) != "host\n" {
		t.Fatalf("the host's file was written: %q", b)
	}
}

func TestStat(t *testing.T) {
	root, host := setup(t)
	os.Symlink("../../../../shadow", filepath.Join(root, "etc/up"))
	os.Symlink(host, filepath.Join(root, "etc/abs"))
	unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644)
	for _, tc := range []struct {
		name, resolved string
		mode           uint32
	}{
		{"/etc/shadow", "/etc/shadow", unix.S_IFREG},
		{"/etc/up", "/shadow", 0},  // clamped at the root, like the kernel: missing
		{"/etc/abs/victim", "", 0}, // the host dir, taken inside the rootfs: missing
		{"/etc/fifo", "/etc/fifo", unix.S_IFIFO},
		{"/etc", "/etc", unix.S_IFDIR},
	} {
		r, mode, err := Stat(root, tc.name)
		if tc.mode == 0 {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(%s) = %q, %o, %v; want not found", tc.name, r, mode, err)
			}
			continue
		}
		if err != nil || r != tc.resolved || mode != tc.mode {
			t.Errorf("Stat(%s) = %q, %o, %v; want %q, %o", tc.name, r, mode, err, tc.resolved, tc.mode)
		}
	}
}
