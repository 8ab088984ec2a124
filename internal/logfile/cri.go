package logfile

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// The CRI log format, which the kubelet, crictl and kubectl read:
//
//	2016-10-06T00:17:09.669794202Z stdout F a whole line
//	2016-10-06T00:17:09.669794203Z stderr P the start of a line still being written
//
// one entry per line: the time (RFC 3339 with nanoseconds), the stream, F for a full line or P
// for a part of one (output that did not end in a newline), and the text without its newline.

// NewCRIWriter opens (appending to) a log at path that Write fills in the CRI format. The
// kubelet rotates it (rename, then ReopenContainerLog), so the writer itself never rotates.
func NewCRIWriter(path string) (*Writer, error) {
	w, err := NewWriter(path, 0, 1)
	if err != nil {
		return nil, err
	}
	w.cri = true
	return w, nil
}

// AppendCRIEntry appends one CRI log line (with its final newline) to b; line is one line of
// output with or without its newline, ts the time formatted as RFC 3339 with nanoseconds.
func AppendCRIEntry(b []byte, stream string, line, ts []byte) []byte {
	tag := byte('P')
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line, tag = line[:n-1], 'F'
	}
	b = append(b, ts...)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, line...)
	return append(b, '\n')
}

// Reopen closes the log and opens the file at its path again (creating it): after the file
// was renamed away, the next entries go to a new file.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("reopen log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	return nil
}

// criTimestamp is the time format of CRI log entries: RFC 3339 with nanoseconds, always nine
// digits, so entries sort by their text as the kubelet expects.
func criTimestamp(t time.Time) []byte {
	return t.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000000000Z07:00")
}

// parseCRILine reads one CRI log line (with its newline) as an Entry: the text of a full line
// gets its newline back, a part does not.
func parseCRILine(line []byte) (Entry, bool) {
	s := strings.TrimSuffix(string(line), "\n")
	ts, rest, ok1 := strings.Cut(s, " ")
	stream, rest, ok2 := strings.Cut(rest, " ")
	tag, text, ok3 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !ok3 || (stream != "stdout" && stream != "stderr") || (tag != "F" && tag != "P") {
		return Entry{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Entry{}, false
	}
	if tag == "F" {
		text += "\n"
	}
	return Entry{Log: text, Stream: stream, Time: t}, true
}
