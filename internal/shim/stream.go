package shim

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isulad-go/isulad/internal/logfile"
)

// A client may fall maxQueued bytes behind; beyond that the output waits for it.
const maxQueued = 1 << 20

// sink is the shim's sending side of one client connection: frames are
// queued without blocking and written by the sink's own goroutine.
type sink struct {
	conn *os.File

	mu      sync.Mutex
	cond    sync.Cond
	q       [][]byte
	queued  int
	closing bool // no more frames: close the connection after the last
	dead    bool
	written uint64        // frames written so far (progress, for wait)
	done    chan struct{} // the writer goroutine ended
}

func newSink(c *os.File) *sink {
	s := &sink{conn: c, done: make(chan struct{})}
	s.cond.L = &s.mu
	go s.run()
	return s
}

func (s *sink) run() {
	defer close(s.done)
	defer s.conn.Close()
	for {
		s.mu.Lock()
		for len(s.q) == 0 && !s.closing && !s.dead {
			s.cond.Wait()
		}
		if s.dead || len(s.q) == 0 {
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.queued -= len(f)
		s.cond.Broadcast() // a sender may wait for room
		s.mu.Unlock()
		if _, err := s.conn.Write(f); err != nil {
			s.kill()
			return
		}
		s.mu.Lock()
		s.written++
		s.mu.Unlock()
	}
}

// send queues a frame. A client maxQueued bytes behind makes the output wait
// for room: a slow reader paces the container, as with docker's attach, and
// gets every byte; a client that went away (its connection closed) is dropped
// and the output goes on. Once exited is set (the process exited: what waits
// now is the report of its exit) a client that takes nothing for
// flushTimeout is dropped too. send reports whether the client is still
// there, and how long it waited for room.
func (s *sink) send(f []byte, exited *atomic.Bool) (ok bool, waited time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued+len(f) > maxQueued && s.queued > 0 {
		t0 := time.Now()
		// Wake up now and then to see whether the process exited meanwhile.
		t := time.AfterFunc(time.Second, func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
		defer t.Stop()
		seen, since := s.written, t0
		for s.queued+len(f) > maxQueued && s.queued > 0 && !s.dead && !s.closing {
			s.cond.Wait()
			if exited == nil || !exited.Load() || s.written != seen {
				seen, since = s.written, time.Now()
			} else if time.Since(since) >= flushTimeout {
				logf("dropping a client that took no output for %v after the exit", flushTimeout)
				s.dropLocked()
			}
			t.Reset(time.Second)
		}
		waited = time.Since(t0)
	}
	if s.dead || s.closing {
		return false, waited
	}
	s.q = append(s.q, f)
	s.queued += len(f)
	s.cond.Broadcast()
	return true, waited
}

// finish queues the last frame; the connection closes once it is written.
func (s *sink) finish(f []byte) {
	s.mu.Lock()
	if !s.dead && !s.closing {
		s.q = append(s.q, f)
		s.closing = true
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

// kill drops the client at once.
func (s *sink) kill() {
	s.mu.Lock()
	s.dropLocked()
	s.mu.Unlock()
}

func (s *sink) dropLocked() {
	if !s.dead {
		s.dead = true
		s.q = nil
		s.cond.Broadcast()
		s.conn.Close() // unblocks a pending Write
	}
}

// wait waits until the sink's frames are written. A client that takes none
// of them for d is dropped; a slow one that reads gets them all.
func (s *sink) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	var seen uint64
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		progress := s.written != seen
		seen = s.written
		s.mu.Unlock()
		if !progress {
			s.kill()
			return
		}
		t.Reset(d)
	}
}

// chunk is output held while the runtime starts.
type chunk struct {
	typ byte
	p   []byte
	t   time.Time
}

// broadcaster sends a process's output to the log (if any) and its sinks.
type broadcaster struct {
	mu     sync.Mutex
	log    *logfile.Writer
	sinks  map[*sink]struct{}
	gated  bool // hold output until the runtime reports success
	drop   bool // the start failed: what still comes is the runtime's error output
	held   []chunk
	ended  bool
	logErr bool
	// exited is set once the process exited: a client may then hold the output
	// back for flushTimeout at most.
	exited atomic.Bool
}

// write is called by the pumps with output of stream typ. It returns once the
// output is logged and queued for every client, and says how long it waited
// for slow clients to make room.
func (b *broadcaster) write(typ byte, p []byte) time.Duration {
	t := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gated {
		b.held = append(b.held, chunk{typ, append([]byte(nil), p...), t})
		return 0
	}
	if b.drop {
		return 0
	}
	return b.deliver(typ, p, t)
}

func (b *broadcaster) deliver(typ byte, p []byte, t time.Time) (waited time.Duration) {
	if b.log != nil {
		stream := "stdout"
		if typ == frameStderr {
			stream = "stderr"
		}
		if err := b.log.Write(stream, p, t); err != nil && !b.logErr {
			b.logErr = true // say it once, keep draining
			logf("write log: %v", err)
		}
	}
	if len(b.sinks) == 0 {
		return 0
	}
	f := encodeFrame(typ, p)
	for s := range b.sinks {
		ok, w := s.send(f, &b.exited)
		waited += w
		if !ok {
			delete(b.sinks, s)
		}
	}
	return waited
}

// open ends the gate: held output is delivered (keep) or dropped (it was the
// runtime's own error output).
func (b *broadcaster) open(keep bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if keep {
		for _, c := range b.held {
			b.deliver(c.typ, c.p, c.t)
		}
	}
	b.held = nil
	b.gated = false
	// After a failed start the pipes may still hold the runtime's error text (crun's
	// child writes it to the container's stderr): none of it is the container's output.
	b.drop = !keep
}

// add registers a sink; false once the output has ended. The first frames (the ready frame)
// are queued in the same critical section: a client that reads "ready" and starts the
// container at once is registered by then, and no output can come before them.
func (b *broadcaster) add(s *sink, first ...[]byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range first {
		s.send(f, nil)
	}
	if b.ended {
		return false
	}
	if b.sinks == nil {
		b.sinks = map[*sink]struct{}{}
	}
	b.sinks[s] = struct{}{}
	return true
}

func (b *broadcaster) remove(s *sink) {
	b.mu.Lock()
	delete(b.sinks, s)
	b.mu.Unlock()
}

// end marks the output ended and returns the sinks still registered.
func (b *broadcaster) end() []*sink {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	var ss []*sink
	for s := range b.sinks {
		ss = append(ss, s)
	}
	b.sinks = nil
	return ss
}
