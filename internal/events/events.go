// Package events is the daemon's event log: every lifecycle event is appended, as one JSON
// line, to a bounded log on disk (so `isula events --since` still sees what happened before
// a daemon restart) and handed to the live subscribers.
//
// The log is two files, events.log and events.log.1: when the first passes its size bound it
// becomes the second (the older one is dropped), so the log never holds more than twice the
// bound. A line cut short by a crash is skipped when read.
package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/isulad-go/isulad/api/types"
)

// DefaultMaxSize bounds each of the two files (about 10,000 events each).
const DefaultMaxSize = 2 << 20

// subBuffer is how many events a subscriber may fall behind before it is cut off.
const subBuffer = 1024

// ErrTooSlow ends a subscription that fell more than subBuffer events behind.
var ErrTooSlow = errors.New("events: the client fell too far behind; events were dropped")

// Log is an open event log.
type Log struct {
	mu       sync.Mutex
	path     string
	max      int64
	f        *os.File
	size     int64
	lastNano int64
	subs     map[*Subscription]struct{}
	now      func() time.Time
}

// Subscription receives the events published after it was made.
type Subscription struct {
	C       chan types.Event // closed when the subscription ends
	Err     error            // why it ended (ErrTooSlow), read after C is closed
	match   func(types.Event) bool
	log     *Log
	stopped bool
}

// Open opens (or starts) the log in dir; each file is bounded to max bytes.
func Open(dir string, max int64) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l := &Log{path: filepath.Join(dir, "events.log"), max: max, subs: map[*Subscription]struct{}{}, now: time.Now}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	// A line cut short by a crash is ended, so it does not swallow the next event.
	last := make([]byte, 1)
	if l.size > 0 {
		if _, err := f.ReadAt(last, l.size-1); err == nil && last[0] != '\n' {
			n, _ := f.Write([]byte("\n"))
			l.size += int64(n)
		}
	}
	return nil
}

// Publish stamps e with the time (strictly increasing, so --since/--until are exact), appends
// it to the log and hands it to every matching subscriber. A write error is returned but the
// subscribers still get the event.
func (l *Log) Publish(e types.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.now().UnixNano()
	if n <= l.lastNano {
		n = l.lastNano + 1
	}
	l.lastNano = n
	e.TimeNano, e.Time = n, time.Unix(0, n).UTC()
	for s := range l.subs {
		if !s.match(e) {
			continue
		}
		select {
		case s.C <- e:
		default:
			s.Err = ErrTooSlow
			l.endLocked(s)
		}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if l.f == nil {
		if err := l.open(); err != nil {
			return err
		}
	}
	if l.size+int64(len(line)) > l.max && l.size > 0 {
		l.f.Close()
		l.f = nil
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return err
		}
		if err := l.open(); err != nil {
			return err
		}
	}
	w, err := l.f.Write(line)
	l.size += int64(w)
	return err
}

// Subscribe returns the logged events with since <= time <= until that match (in order),
// and, when follow is set, a subscription for those published from now on: nothing is
// missed or given twice between the two.
func (l *Log) Subscribe(since, until time.Time, match func(types.Event) bool, follow bool) ([]types.Event, *Subscription, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var past []types.Event
	if !since.IsZero() {
		for _, p := range []string{l.path + ".1", l.path} {
			if err := readFile(p, func(e types.Event) {
				if e.TimeNano >= since.UnixNano() && (until.IsZero() || e.TimeNano <= until.UnixNano()) && match(e) {
					past = append(past, e)
				}
			}); err != nil {
				return nil, nil, err
			}
		}
	}
	if !follow {
		return past, nil, nil
	}
	s := &Subscription{C: make(chan types.Event, subBuffer), match: match, log: l}
	l.subs[s] = struct{}{}
	return past, s, nil
}

func readFile(p string, f func(types.Event)) error {
	file, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e types.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.TimeNano > 0 {
			f(e)
		}
	}
	return sc.Err()
}

// Stop ends the subscription.
func (s *Subscription) Stop() {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.endLocked(s)
}

func (l *Log) endLocked(s *Subscription) {
	if !s.stopped {
		s.stopped = true
		delete(l.subs, s)
		close(s.C)
	}
}

// Close ends every subscription and closes the file.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		l.endLocked(s)
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
