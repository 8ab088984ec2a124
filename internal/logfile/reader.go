package logfile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// Entry is one line of a json-file log.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// pollInterval is how often a follower looks for new data.
const pollInterval = 50 * time.Millisecond

// Read calls fn for the entries of the log at path, oldest first, reading the
// rotated files (path.N-1 ... path.1) before path. tail<0 reads everything,
// tail>=0 only the last tail entries. With follow, Read then waits for new
// entries, across rotations, until ctx is done; it then delivers what was
// already written and returns nil. An error from fn stops Read and is
// returned. Lines that are not valid JSON are skipped.
func Read(ctx context.Context, path string, tail int, follow bool, fn func(Entry) error) error {
	files, err := openAll(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	first, off, err := tailStart(files, tail)
	if err != nil {
		return err
	}
	r := &reader{fn: fn}
	for i := first; i < len(files); i++ {
		if i == first {
			if _, err := files[i].Seek(off, io.SeekStart); err != nil {
				return err
			}
		}
		if err := r.drain(files[i]); err != nil {
			return err
		}
		if i != len(files)-1 {
			files[i].Close()
			files[i] = nil
			r.partial = nil
		}
	}
	if !follow {
		return nil
	}
	cur := files[len(files)-1]
	files = files[:len(files)-1]
	defer func() { cur.Close() }()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		done := false
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
		}
		if err := r.drain(cur); err != nil {
			return err
		}
		next, err := r.afterRotation(path, cur)
		if err != nil {
			return err
		}
		if next != nil {
			cur.Close()
			cur = next
			if err := r.drain(cur); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

type reader struct {
	fn      func(Entry) error
	partial []byte
	br      *bufio.Reader
}

// drain delivers the complete lines of f from its offset to its end.
func (r *reader) drain(f *os.File) error {
	// A file truncated under us (rotation with max-file 1) starts over.
	if off, err := f.Seek(0, io.SeekCurrent); err == nil {
		if st, err := f.Stat(); err == nil && st.Size() < off {
			f.Seek(0, io.SeekStart)
			r.partial = nil
		}
	}
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 64<<10)
	} else {
		r.br.Reset(f)
	}
	for {
		line, err := r.br.ReadBytes('\n')
		if len(line) > 0 {
			if err != nil { // incomplete line: the writer is mid-write
				r.partial = append(r.partial, line...)
			} else {
				if len(r.partial) > 0 {
					line = append(r.partial, line...)
					r.partial = nil
				}
				var e Entry
				ok := json.Unmarshal(line, &e) == nil
				if !ok {
					e, ok = parseCRILine(line) // a CRI container's log (cri.go)
				}
				if ok {
					if err := r.fn(e); err != nil {
						return err
					}
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// afterRotation returns nil if cur is still the file at path. Otherwise it
// delivers the files rotated after cur (cur itself is drained by the caller)
// and returns the new file at path.
func (r *reader) afterRotation(path string, cur *os.File) (*os.File, error) {
	cst, err := cur.Stat()
	if err != nil {
		return nil, err
	}
	pst, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // mid-rotation; look again later
		}
		return nil, err
	}
	if os.SameFile(cst, pst) {
		return nil, nil
	}
	r.partial = nil
	// Find cur among the rotated files and read the ones that came after it.
	idx := 0
	for i := 1; ; i++ {
		st, err := os.Stat(path + "." + strconv.Itoa(i))
		if err != nil {
			break
		}
		if os.SameFile(cst, st) {
			idx = i
			break
		}
	}
	for i := idx - 1; i >= 1; i-- {
		f, err := os.Open(path + "." + strconv.Itoa(i))
		if err != nil {
			continue
		}
		err = r.drain(f)
		f.Close()
		r.partial = nil
		if err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return f, nil
}

// openAll opens path's rotated files, oldest first, then path itself.
func openAll(path string) ([]*os.File, error) {
	var rotated []*os.File
	for i := 1; ; i++ {
		f, err := os.Open(path + "." + strconv.Itoa(i))
		if err != nil {
			break
		}
		rotated = append(rotated, f)
	}
	f, err := os.Open(path)
	if err != nil {
		for _, f := range rotated {
			f.Close()
		}
		return nil, err
	}
	files := make([]*os.File, 0, len(rotated)+1)
	for i := len(rotated) - 1; i >= 0; i-- {
		files = append(files, rotated[i])
	}
	return append(files, f), nil
}

// tailStart finds where the last tail lines of files begin: the index of the
// first file to read and the offset in it.
func tailStart(files []*os.File, tail int) (int, int64, error) {
	if tail < 0 {
		return 0, 0, nil
	}
	need := tail
	buf := make([]byte, 32<<10)
	for i := len(files) - 1; i >= 0; i-- {
		st, err := files[i].Stat()
		if err != nil {
			return 0, 0, err
		}
		end := st.Size()
		if need == 0 {
			return i, end, nil
		}
		pos := end
		skipLast := true // the final "\n" ends the last line, it starts none
		for pos > 0 {
			n := int64(len(buf))
			if pos < n {
				n = pos
			}
			pos -= n
			if _, err := files[i].ReadAt(buf[:n], pos); err != nil && err != io.EOF {
				return 0, 0, err
			}
			for j := n - 1; j >= 0; j-- {
				if buf[j] != '\n' {
					continue
				}
				if skipLast && pos+j == end-1 {
					continue
				}
				need--
				if need == 0 {
					return i, pos + j + 1, nil
				}
			}
			skipLast = false
		}
		if end > 0 {
			need-- // the file's first line
			if need == 0 {
				return i, 0, nil
			}
		}
	}
	return 0, 0, nil
}
