package daemon

import (
	"bufio"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/lightproto"
)

type lightConn struct {
	c    net.Conn
	rest string // the line after Magic
}

func sniffed(t *testing.T, timeout time.Duration) (*sniffListener, string, chan lightConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	light := make(chan lightConn, 4)
	s := newSniffListener(l, func(c net.Conn, r *bufio.Reader) {
		line, _ := r.ReadString('\n')
		light <- lightConn{c, line}
	})
	s.timeout = timeout
	t.Cleanup(func() { s.Close() })
	return s, path, light
}

func dial(t *testing.T, path string, parts ...string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, p := range parts {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // separate reads on the other side
	}
	return c
}

func accept(t *testing.T, s *sniffListener, within time.Duration) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := s.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.c
	case <-time.After(within):
		t.Fatalf("no connection accepted within %v", within)
	}
	return nil
}

// A client that sends nothing does not hold up the next one; the bytes read to tell gRPC
// from the light protocol are read again by gRPC; a light connection (even with Magic split
// over reads) goes to the light handler with the bytes after Magic.
func TestSniffListener(t *testing.T) {
	s, path, light := sniffed(t, time.Second)
	dial(t, path) // silent
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	dial(t, path, preface+"more")
	g := accept(t, s, time.Second)
	buf := make([]byte, len(preface)+4)
	if _, err := io.ReadFull(g, buf); err != nil || string(buf) != preface+"more" {
		t.Fatalf("gRPC connection read %q, %v", buf, err)
	}

	dial(t, path, lightproto.Magic+"{\"create\":{}}\n")
	dial(t, path, lightproto.Magic[:3], lightproto.Magic[3:]+"second\n")
	for _, want := range []string{"{\"create\":{}}\n", "second\n"} {
		select {
		case lc := <-light:
			if lc.rest != want {
				t.Fatalf("light connection read %q, want %q", lc.rest, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the light handler got no connection")
		}
	}

	// A prefix of Magic that goes no further is not gRPC's either.
	dial(t, path, "ISULA-")
	// Once the timeout passes, the silent client goes to gRPC (which has its own).
	silent := accept(t, s, 3*time.Second)
	silent.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := silent.Read(make([]byte, 8)); n != 0 || !errors.Is(err, errTimeout(err)) {
		t.Fatalf("silent connection read %d bytes, %v", n, err)
	}
	ch := make(chan net.Conn, 1)
	go func() {
		if c, err := s.Accept(); err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		t.Fatalf("a half Magic went to gRPC (local %v)", c.LocalAddr())
	case <-time.After(1500 * time.Millisecond):
	}

	s.Close()
	if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func errTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errors.New("not a timeout")
}
