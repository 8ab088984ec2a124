package lightproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/internal/errdefs"
)

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	frames := []struct {
		typ     byte
		payload []byte
	}{
		{FrameReady, nil},
		{FrameStdout, []byte("out\n")},
		{FrameStderr, bytes.Repeat([]byte{0, 0xff}, 70000)},
		{FrameExit, []byte(`{"code":3}`)},
	}
	for _, f := range frames {
		if err := WriteFrame(&b, f.typ, f.payload); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != 4*5+4+140000+10 {
		t.Fatalf("%d bytes on the wire", b.Len())
	}
	for _, f := range frames {
		typ, p, err := ReadFrame(&b)
		if err != nil || typ != f.typ || !bytes.Equal(p, f.payload) {
			t.Fatalf("got %q %d bytes %v, want %q %d bytes", typ, len(p), err, f.typ, len(f.payload))
		}
	}
	if _, _, err := ReadFrame(&b); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameTruncatedAndOversize(t *testing.T) {
	whole := AppendFrame(nil, FrameStdout, []byte("hello"))
	for n := 1; n < len(whole); n++ {
		_, _, err := ReadFrame(bytes.NewReader(whole[:n]))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d of %d bytes: %v, want unexpected EOF", n, len(whole), err)
		}
	}
	hdr := []byte{FrameStdout, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], MaxPayload+1)
	if _, _, err := ReadFrame(bytes.NewReader(hdr)); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("oversize length: %v", err)
	}
	if err := WriteFrame(io.Discard, FrameStdout, make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("an oversize frame was written")
	}
}

func TestHello(t *testing.T) {
	var b bytes.Buffer
	create := []byte(`{"Name":"x","Config":{"Image":"none","Cmd":["echo","a\nb"]}}`)
	if err := WriteHello(&b, Hello{Create: create, SigProxy: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), Magic) || strings.Count(b.String(), "\n") != 2 {
		t.Fatalf("%q", b.String())
	}
	r := bufio.NewReader(&b)
	m := make([]byte, len(Magic))
	io.ReadFull(r, m)
	h, err := ReadHello(r)
	if err != nil || !h.SigProxy || !bytes.Equal(h.Create, create) {
		t.Fatalf("%+v %v", h, err)
	}
	// A front's hello: the command line and the environment, no create request.
	h, err = ReadHello(bufio.NewReader(strings.NewReader(`{"argv":["--rm","x"],"env":["A=1"]}` + "\n")))
	if err != nil || len(h.Create) != 0 || strings.Join(h.Argv, " ") != "--rm x" || strings.Join(h.Env, " ") != "A=1" {
		t.Fatalf("argv hello: %+v %v", h, err)
	}
	for _, bad := range []string{"{}\n", "null\n", "{\"create\":null}\n", "not json\n", "{\"create\":{}",
		`{"argv":[]}` + "\n", `{"create":{},"argv":["x"]}` + "\n"} {
		if _, err := ReadHello(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("hello %q accepted", bad)
		}
	}
	long := `{"create":"` + strings.Repeat("a", MaxHello) + "\"}\n"
	if _, err := ReadHello(bufio.NewReader(strings.NewReader(long))); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("long hello: %v", err)
	}
}

func TestKinds(t *testing.T) {
	for _, k := range errdefs.Kinds {
		err := fmt.Errorf("x: %w", errdefs.Errorf(k, "y"))
		if got := KindOf(KindName(err)); got != k {
			t.Fatalf("%v came back as %v", k, got)
		}
	}
	if KindName(errors.New("plain")) != errdefs.ErrUnknown.Error() || KindOf("what") != errdefs.ErrUnknown {
		t.Fatal("no category is unknown")
	}
}
