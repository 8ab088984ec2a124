// Package logfile writes and reads container logs in the format of docker's
// json-file driver: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
//
// rotated by size like docker's max-size/max-file: the current file is path,
// older ones are path.1 (newest) ... path.N-1 (oldest).
//
// The writer runs in the shim, which must stay small, so it encodes by hand
// instead of through encoding/json's reflection.
package logfile

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Writer appends log entries to a json-file log, rotating it by size.
type Writer struct {
	mu       sync.Mutex
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	size     int64
	buf      []byte
	cri      bool // entries in the CRI format (cri.go), not json-file
}

// NewWriter opens (appending to) the log at path. maxSize is the size in
// bytes above which the file is rotated (0: never). maxFiles counts the files
// kept, the current one included, like docker's max-file: maxFiles=3 keeps
// path, path.1 and path.2; maxFiles<=1 keeps no rotated file (the file is
// truncated instead).
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles, f: f, size: st.Size()}, nil
}

// Write logs p as entries of stream at time t: every line of p, with its
// "\n", is one entry; a trailing partial line is an entry of its own.
func (w *Writer) Write(stream string, p []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	ts := t.UTC().AppendFormat(nil, time.RFC3339Nano)
	appendEntry := AppendEntry
	if w.cri {
		ts, appendEntry = criTimestamp(t), AppendCRIEntry
	}
	for len(p) > 0 {
		n := len(p)
		for i, c := range p {
			if c == '\n' {
				n = i + 1
				break
			}
		}
		line := p[:n]
		p = p[n:]
		start := len(w.buf)
		w.buf = appendEntry(w.buf, stream, line, ts)
		// What the current file would hold before this entry: written plus still buffered.
		before := w.size + int64(start)
		if w.maxSize > 0 && before > 0 && w.size+int64(len(w.buf)) > w.maxSize {
			// Flush what precedes this entry into the current file, then rotate.
			if err := w.flush(w.buf[:start]); err != nil {
				return err
			}
			w.buf = append(w.buf[:0], w.buf[start:]...)
			if err := w.rotate(); err != nil {
				return err
			}
		}
	}
	err := w.flush(w.buf)
	w.buf = w.buf[:0]
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not keep a large buffer around in an idle shim
	}
	return err
}

func (w *Writer) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	w.f = nil
	if w.maxFiles > 1 {
		for i := w.maxFiles - 1; i > 1; i-- {
			err := os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
			if err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.f = f
	w.size = 0
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// AppendEntry appends one JSON line (with its final newline) to b.
// ts is the time already formatted as RFC 3339 with nanoseconds.
func AppendEntry(b []byte, stream string, line, ts []byte) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, line)
	b = append(b, `,"stream":`...)
	b = appendString(b, []byte(stream))
	b = append(b, `,"time":"`...)
	b = append(b, ts...)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping like encoding/json
// (invalid UTF-8 becomes U+FFFD).
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
