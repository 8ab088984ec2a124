package layer

import (
	"io"
	"sync"
)

// readAhead runs fill in a goroutine of its own: fill writes the stream into the writer it is
// given, which hands chunks of it to the returned reader, at most a few chunks ahead. A layer's
// stream is a pipeline of decompression (one core's worth of work for gzip) and unpacking (file
// writes, mostly system-call time): run in one goroutine they add up, run in two they overlap.
//
// What fill returns ends the stream: nil is io.EOF at the reader, an error is that error.
// Close tells fill's next write to fail with errAheadClosed and frees the chunks; it does not
// wait for fill, which may be blocked reading its own source (the caller closes that).
func readAhead(fill func(w io.Writer) error) *aheadReader {
	a := &aheadReader{
		full: make(chan []byte, aheadChunks),
		free: make(chan []byte, aheadChunks+1),
		done: make(chan struct{}),
	}
	for i := 0; i < aheadChunks+1; i++ {
		a.free <- make([]byte, 0, aheadChunkSize)
	}
	go func() {
		w := &aheadWriter{a: a}
		err := fill(w)
		if ferr := w.flush(); err == nil {
			err = ferr
		}
		if err == nil {
			err = io.EOF
		}
		a.err = err // read by the reader only after full is closed
		close(a.full)
	}()
	return a
}

const (
	aheadChunkSize = 256 << 10
	aheadChunks    = 8
)

type aheadReader struct {
	full, free chan []byte
	done       chan struct{}
	closeOnce  sync.Once
	cur        []byte // the chunk being read, cur[off:] unread
	off        int
	err        error
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for a.cur == nil || a.off == len(a.cur) {
		if a.cur != nil {
			a.free <- a.cur[:0]
			a.cur = nil
		}
		c, ok := <-a.full
		if !ok {
			return 0, a.err
		}
		a.cur, a.off = c, 0
	}
	n := copy(p, a.cur[a.off:])
	a.off += n
	return n, nil
}

// Close stops the stream early; reading after it is not allowed.
func (a *aheadReader) Close() error {
	a.closeOnce.Do(func() { close(a.done) })
	return nil
}

type aheadWriter struct {
	a   *aheadReader
	buf []byte
}

var errAheadClosed = io.ErrClosedPipe

func (w *aheadWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.buf == nil {
			select {
			case w.buf = <-w.a.free:
			case <-w.a.done:
				return n, errAheadClosed
			}
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *aheadWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	select {
	case w.a.full <- w.buf:
		w.buf = nil
		return nil
	case <-w.a.done:
		return errAheadClosed
	}
}
