package layer

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// The reader sees exactly what fill wrote, whatever the sizes of the writes and reads.
func TestReadAheadStream(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	data := make([]byte, 3*aheadChunks*aheadChunkSize+12345)
	r.Read(data)
	for _, wsize := range []int{1, 1000, aheadChunkSize, aheadChunkSize + 1, len(data)} {
		a := readAhead(func(w io.Writer) error {
			for p := data; len(p) > 0; {
				n := min(wsize, len(p))
				if _, err := w.Write(p[:n]); err != nil {
					return err
				}
				p = p[n:]
			}
			return nil
		})
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(a, 100)))
		if err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(a)
		if err != nil {
			t.Fatalf("write size %d: %v", wsize, err)
		}
		if !bytes.Equal(append(got, rest...), data) {
			t.Fatalf("write size %d: the stream read differs from the one written", wsize)
		}
		if n, err := a.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after the end: %d, %v; want 0, EOF", n, err)
		}
		a.Close()
	}
}

// fill's error reaches the reader after the bytes written before it.
func TestReadAheadError(t *testing.T) {
	boom := errors.New("boom")
	a := readAhead(func(w io.Writer) error {
		w.Write([]byte("abc"))
		return boom
	})
	got, err := io.ReadAll(a)
	if !errors.Is(err, boom) || string(got) != "abc" {
		t.Fatalf("got %q, %v; want \"abc\", boom", got, err)
	}
}

// Close while fill still has much to write: fill's writes fail and it returns.
func TestReadAheadClose(t *testing.T) {
	returned := make(chan error)
	a := readAhead(func(w io.Writer) error {
		chunk := make([]byte, aheadChunkSize)
		for {
			if _, err := w.Write(chunk); err != nil {
				returned <- err
				return err
			}
		}
	})
	if _, err := a.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close()
	if err := <-returned; !errors.Is(err, errAheadClosed) {
		t.Fatalf("fill's write after Close: %v; want %v", err, errAheadClosed)
	}
}
