package shim

import (
	"bufio"
	"os"
)

// abort drops a client that went away, unless its last frames are queued.
func (sk *sink) abort() {
	sk.mu.Lock()
	closing := sk.closing
	sk.mu.Unlock()
	if !closing {
		sk.kill()
	}
}

// handleAttach streams the container's output to the client from now on, and the
// client's input to the container, until the container exited and its output ended.
func (s *server) handleAttach(c *os.File, br *bufio.Reader, req *request) {
	sk := newSink(c)
	if !s.out.add(sk, encodeFrame(frameReady, nil)) {
		<-s.exited
		s.mu.Lock()
		serr := s.startErr
		s.mu.Unlock()
		sk.finish(resultFrame(errResult(serr)))
		return
	}
	stdin := func(p []byte) {
		if !req.Stdin {
			return
		}
		if s.cfg.Terminal {
			// The console comes with the start.
			<-s.started
			if s.running() != nil {
				return
			}
		}
		s.stdio.writeStdin(p)
	}
	closeStdin := func() {
		if req.Stdin && !s.cfg.Terminal {
			s.stdio.closeStdin()
		}
	}
	readInput(br, stdin, closeStdin, func(w, h uint16) { s.resize(w, h) }, nil)
	// Not the other way round: an output waiting for this client's room holds the
	// broadcaster until the client is dropped.
	sk.abort()
	s.out.remove(sk)
}
