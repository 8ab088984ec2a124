package shim

import (
	"bufio"
	"encoding/json"
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
	starting := false
	if req.Start {
		// The start of an attach-with-start: its pid goes out on this stream; a failed
		// start ends the stream (and the other streams) with its error (startFailed).
		if err := s.beginStart(); err != nil {
			sk.finish(resultFrame(errResult(err)))
		} else {
			starting = true
			go s.start(func(pid int) {
				b, _ := json.Marshal(result{Pid: pid})
				sk.send(encodeFrame(frameStarted, b), nil)
			})
		}
	}
	readInput(br, stdin, closeStdin, func(w, h uint16) { s.resize(w, h) }, nil)
	// Not the other way round: an output waiting for this client's room holds the
	// broadcaster until the client is dropped.
	sk.abort()
	s.out.remove(sk)
	if starting {
		// Like a failed start's own connection (handleStart): a shim whose start failed
		// goes once the client that started it went away.
		<-s.started
		s.mu.Lock()
		failed := s.status == statusFailed
		s.mu.Unlock()
		if failed {
			s.quit()
		}
	}
}
