package shim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/unixsock"
)

// A first start's pid file is written in place; one already there is replaced by a rename.
func TestWritePidFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), InitPidFile)
	if err := writePidFile(p, 1234); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "1234" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%q, mode %v", b, fi.Mode().Perm())
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	if err := writePidFile(p, 56); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "56" {
		t.Fatalf("second write: %q", b)
	}
	if fi.Sys().(*syscall.Stat_t).Ino == ino {
		t.Error("the file there was written through, not replaced")
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("left beside it: %v", ents)
	}
}

// The shim's socket: a stale file (its listener gone) is replaced; a live shim's is not
// taken, and that shim keeps it.
func TestListenStaleAndLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// stale: a socket file nobody listens on
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	l, err := listen(path)
	if err != nil {
		t.Fatalf("stale socket file not replaced: %v", err)
	}
	defer l.Close()
	// live: refused, with the path in the error
	if _, err := listen(path); err == nil || !strings.Contains(err.Error(), "already listens on "+path) {
		t.Fatalf("second listen: %v", err)
	}
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := unixsock.Dial(context.Background(), path)
	if err != nil {
		t.Fatalf("the live listener lost its socket: %v", err)
	}
	c.Close()
}
