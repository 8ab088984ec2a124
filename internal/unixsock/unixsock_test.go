package unixsock

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLongPath(t *testing.T) {
	for _, n := range []int{10, 150, 300} {
		dir := filepath.Join(t.TempDir(), strings.Repeat("x", n%100), strings.Repeat("y", n/100*50), strings.Repeat("z", n/100*50))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "s.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatalf("len %d: %v", len(path), err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", st.Mode())
		}
		done := make(chan string)
		go func() {
			c, err := l.Accept()
			if err != nil {
				done <- err.Error()
				return
			}
			uid, err := PeerUID(c)
			if err != nil || uid != uint32(os.Getuid()) {
				done <- "peer uid"
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			done <- string(b)
		}()
		c, err := Dial(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hello"))
		c.Close()
		if got := <-done; got != "hello" {
			t.Fatalf("got %q", got)
		}
		l.Close()
	}
}

func TestDialMissing(t *testing.T) {
	_, err := Dial(context.Background(), filepath.Join(t.TempDir(), strings.Repeat("y", 200), "x.sock"))
	if err == nil {
		t.Fatal("expected error")
	}
}

func TestListenNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := ListenNew(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v", st, err)
	}
	// a file there: EADDRINUSE, and the file (the first listener's) left alone
	if _, err := ListenNew(path); !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("second ListenNew: %v, want EADDRINUSE", err)
	}
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatalf("the first listener lost its socket: %v", err)
	}
	c.Close()
	// Listen replaces it
	l2, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
}
