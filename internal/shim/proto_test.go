package shim

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFrames(t *testing.T) {
	var b []byte
	b = appendFrame(b, frameStdout, []byte("hello"))
	b = appendFrame(b, frameStderr, nil)
	b = append(b, encodeResize(80, 24)...)
	big := bytes.Repeat([]byte("x"), maxFrame)
	b = appendFrame(b, frameStdin, big)
	r := bufio.NewReader(bytes.NewReader(b))
	buf := make([]byte, 4)
	for _, want := range []struct {
		typ byte
		p   string
	}{{frameStdout, "hello"}, {frameStderr, ""}} {
		typ, p, err := readFrame(r, buf)
		if err != nil || typ != want.typ || string(p) != want.p {
			t.Fatalf("got %q %q %v", typ, p, err)
		}
	}
	typ, p, err := readFrame(r, buf)
	if w, h, ok := decodeResize(p); err != nil || typ != frameResize || !ok || w != 80 || h != 24 {
		t.Fatalf("resize %q %v %d %d", typ, err, w, h)
	}
	typ, p, err = readFrame(r, buf)
	if err != nil || typ != frameStdin || len(p) != maxFrame {
		t.Fatalf("big frame %q %d %v", typ, len(p), err)
	}
	if _, _, err := readFrame(r, buf); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestFrameErrors(t *testing.T) {
	tooBig := []byte{frameStdout, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(tooBig)), nil); err == nil {
		t.Fatal("oversized frame accepted")
	}
	short := appendFrame(nil, frameStdout, []byte("abcdef"))[:8]
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(short)), nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v", err)
	}
	if _, ok := func() (uint16, bool) { w, _, ok := decodeResize([]byte{1, 2, 3}); return w, ok }(); ok {
		t.Fatal("bad resize accepted")
	}
}

func TestRequestLine(t *testing.T) {
	in := `{"op":"exec","exec_id":"x","process":{"args":["sh"],"terminal":true},"stdin":true}` + "\n" + "rest"
	r := bufio.NewReaderSize(strings.NewReader(in), 16) // line longer than the buffer
	req, err := readRequest(r)
	if err != nil || req.Op != opExec || req.ExecID != "x" || !req.Stdin || !strings.Contains(string(req.Process), `"terminal":true`) {
		t.Fatalf("%+v %v", req, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("rest %q", rest)
	}
	if _, err := readRequest(bufio.NewReader(strings.NewReader("not json\n"))); err == nil {
		t.Fatal("bad request accepted")
	}
}

func socketpair(t *testing.T) (*os.File, *os.File) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
}

// A client that does not read holds the writer back and then gets every byte (issue 10,
// defect 11: one 1 MiB behind for 500ms was dropped).
func TestSlowClientPacesWriter(t *testing.T) {
	a, b := socketpair(t)
	defer b.Close()
	var bc broadcaster
	sk := newSink(a)
	bc.add(sk)
	chunk := bytes.Repeat([]byte("y"), 32<<10)
	const n = 2*maxQueued/(32<<10) + 64
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			bc.write(frameStdout, chunk)
		}
		for _, s := range bc.end() {
			s.finish(resultFrame(result{}))
		}
		close(done)
	}()
	time.Sleep(time.Second) // the client reads nothing for a while
	r := bufio.NewReader(b)
	got := 0
	for {
		typ, p, err := readFrame(r, nil)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if typ == frameResult {
			break
		}
		got += len(p)
	}
	if got != n*len(chunk) {
		t.Fatalf("client got %d bytes, want %d", got, n*len(chunk))
	}
	<-done
}

// A client that goes away releases a writer that waits for it.
func TestGoneClientDropped(t *testing.T) {
	a, b := socketpair(t)
	var bc broadcaster
	sk := newSink(a)
	bc.add(sk)
	chunk := bytes.Repeat([]byte("y"), 32<<10)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 2*maxQueued/len(chunk)+64; i++ {
			bc.write(frameStdout, chunk)
		}
		close(done)
	}()
	b.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer blocked by a client that went away")
	}
	select {
	case <-sk.done:
	case <-time.After(5 * time.Second):
		t.Fatal("gone client not dropped")
	}
	if len(bc.sinks) != 0 {
		t.Fatal("dropped client still registered")
	}
}

// A client that reads gets every frame, then the final one, then EOF.
func TestSinkDelivers(t *testing.T) {
	a, b := socketpair(t)
	defer b.Close()
	var bc broadcaster
	bc.gated = true
	sk := newSink(a)
	bc.add(sk)
	bc.write(frameStderr, []byte("runtime error"))
	bc.open(false) // held output dropped
	bc.gated = true
	bc.write(frameStdout, []byte("early"))
	bc.open(true) // held output delivered
	for i := 0; i < 100; i++ {
		bc.write(frameStdout, []byte("line\n"))
	}
	for _, s := range bc.end() {
		s.finish(resultFrame(result{Code: 3}))
	}
	r := bufio.NewReader(b)
	typ, p, err := readFrame(r, nil)
	if err != nil || typ != frameStdout || string(p) != "early" {
		t.Fatalf("first frame %q %q %v", typ, p, err)
	}
	n := 0
	for {
		typ, p, err := readFrame(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if typ == frameResult {
			if !strings.Contains(string(p), `"code":3`) {
				t.Fatalf("result %s", p)
			}
			break
		}
		n++
	}
	if n != 100 {
		t.Fatalf("%d frames", n)
	}
	if _, _, err := readFrame(r, nil); err != io.EOF {
		t.Fatalf("after result: %v", err)
	}
	sk.wait(time.Second)
}

func TestRuntimeErrors(t *testing.T) {
	for _, tc := range []struct{ log, want string }{
		{`{"level":"warning","msg":"w","time":"x"}` + "\n" + `{"level":"error","msg":"runc run failed: boom","time":"x"}` + "\n", "runc run failed: boom"},
		{`{"msg": "executable file ` + "`x`" + ` not found", "level": "error", "time": "t"}` + "\n", "executable file `x` not found"},
		{"plain text\n", "plain text"},
		{"", ""},
	} {
		if got := runtimeErrors(strings.NewReader(tc.log)); got != tc.want {
			t.Errorf("%q: got %q want %q", tc.log, got, tc.want)
		}
	}
}

func TestSocketPath(t *testing.T) {
	p := SocketPath("/var/run/isulad", strings.Repeat("a", 64))
	if !strings.HasPrefix(p, "/var/run/isulad/s/") || len(filepath.Base(p)) != len("123456789012.sock") {
		t.Fatal(p)
	}
	if SocketPath("/x", "a") == SocketPath("/x", "b") {
		t.Fatal("same socket for two ids")
	}
}

func TestReadExitFile(t *testing.T) {
	dir := t.TempDir()
	if st, err := ReadExitFile(dir); st != nil || err != nil {
		t.Fatalf("%v %v", st, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ExitFile), []byte(`{"code":137,"exited_at":"2024-01-02T03:04:05Z","signal":9,"oom_killed":true}`)); err != nil {
		t.Fatal(err)
	}
	st, err := ReadExitFile(dir)
	if err != nil || st.Code != 137 || st.Signal != 9 || !st.OOMKilled || st.ExitedAt.Year() != 2024 {
		t.Fatalf("%+v %v", st, err)
	}
}
