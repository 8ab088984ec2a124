package shim

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stdio is the standard streams of one process (the container's init or an exec) as the
// shim holds them: pipes, or the master of the pty the runtime made. The process's ends go
// to the runtime and are closed once it ran; the shim's ends are pumped into a broadcaster
// until the output ends, then closed.
type stdio struct {
	child   [3]*os.File // the process's ends (nil: /dev/null), closed once the runtime ran
	stdin   *os.File    // the shim's end of stdin: a pipe's write end, or the console
	outputs []*os.File  // the shim's ends of the output: stdout and stderr pipes, or the console
	console *os.File    // pty master (terminal)
	pumps   sync.WaitGroup
	// draining is set once the process exited: from then on the pumps wait for
	// more output for drainTimeout at most.
	draining atomic.Bool

	stdinOnce sync.Once
}

// newPipes makes pipes for stdout, stderr and, with stdin, stdin.
func newPipes(stdin bool) (*stdio, error) {
	p := &stdio{}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	p.child[1], p.child[2] = outW, errW
	p.outputs = []*os.File{outR, errR}
	if stdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			p.closeChild()
			p.close()
			return nil, err
		}
		p.child[0], p.stdin = inR, inW
	}
	return p, nil
}

// closeChild closes the process's ends, once the runtime has passed them on.
func (p *stdio) closeChild() {
	for i, f := range p.child {
		if f != nil {
			f.Close()
			p.child[i] = nil
		}
	}
}

// pumpPipes copies the stdout and stderr pipes to b.
func (p *stdio) pumpPipes(b *broadcaster) {
	p.pumps.Add(2)
	go p.pump(p.outputs[0], frameStdout, b, nil)
	go p.pump(p.outputs[1], frameStderr, b, nil)
}

// pumpConsole takes the pty master the runtime sent and copies it to b. For the
// container's init (initDone not nil) the pty outlives hang-ups until init exits.
func (p *stdio) pumpConsole(f *os.File, b *broadcaster, initDone <-chan struct{}) {
	p.console, p.stdin = f, f
	p.outputs = []*os.File{f}
	p.pumps.Add(1)
	go p.pump(f, frameStdout, b, initDone)
}

// writeStdin sends p to the process's stdin, if it has one.
func (p *stdio) writeStdin(b []byte) {
	if p.stdin != nil {
		p.stdin.Write(b)
	}
}

// closeStdin closes a stdin pipe (the process reads EOF); a terminal stays open.
func (p *stdio) closeStdin() {
	if p.stdin != nil && p.console == nil {
		p.stdinOnce.Do(func() { p.stdin.Close() })
	}
}

// drain, after the process exited, waits for its output to end and then
// closes the shim's ends. A process outside the container's pid namespace may
// hold the output open: the pumps wait for more output for drainTimeout at
// most. The time they spend waiting for slow clients does not count, so
// nothing the process wrote before it exited is lost.
func (p *stdio) drain() {
	p.draining.Store(true)
	deadline := time.Now().Add(drainTimeout)
	for _, f := range p.outputs {
		// Wakes a pump that waits in a read (a pump delivering sets its own).
		if err := f.SetReadDeadline(deadline); err != nil {
			logf("output: %v; closing it after %v", err, drainTimeout)
			t := time.AfterFunc(drainTimeout, p.closeOutputs)
			defer t.Stop()
		}
	}
	p.pumps.Wait()
	p.close()
}

func (p *stdio) closeOutputs() {
	for _, f := range p.outputs {
		f.Close()
	}
}

// close closes the shim's ends.
func (p *stdio) close() {
	p.closeOutputs()
	if p.stdin != nil {
		p.stdinOnce.Do(func() { p.stdin.Close() })
	}
}

// readInput serves a client's frames until its connection ends: stdin bytes go to stdin,
// its EOF to closeStdin, resizes to resize.
func readInput(br *bufio.Reader, stdin func([]byte), closeStdin func(), resize func(w, h uint16), kill func()) {
	buf := make([]byte, 32<<10)
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			return
		}
		switch typ {
		case frameStdin:
			stdin(p)
		case frameStdinClose:
			closeStdin()
		case frameResize:
			if w, h, ok := decodeResize(p); ok {
				resize(w, h)
			}
		case frameKill:
			if kill != nil {
				kill()
			}
		}
	}
}

// pump copies f (a pipe or a pty master) to b until EOF (EIO for a pty
// whose other side is closed), until f is closed, or, once the process
// exited, until no more output came for drainTimeout (time spent waiting for
// slow clients not counted).
//
// For the container's init (initDone not nil) a read error EIO on its pty
// only means that no one holds the terminal's other side at the moment:
// systemd opens /dev/console for each status line and closes it again, agetty
// hangs the terminal up before it opens it anew. Output that comes later must
// still flow, so EIO ends the pump only once init exited, after what was left
// in the pty was read; until then the read is retried, at most every 100ms.
func (p *stdio) pump(f *os.File, typ byte, b *broadcaster, initDone <-chan struct{}) {
	defer p.pumps.Done()
	buf := make([]byte, 32<<10)
	left := drainTimeout
	var idle time.Duration
	for {
		draining := p.draining.Load()
		start := time.Now()
		if draining {
			f.SetReadDeadline(start.Add(left))
		}
		n, err := f.Read(buf)
		var waited time.Duration
		if n > 0 {
			waited = b.write(typ, buf[:n])
			idle = 0
		}
		if draining {
			left -= time.Since(start) - waited
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			logf("output still open %v after the exit; closing it", drainTimeout)
			return
		case errors.Is(err, syscall.EIO) && initDone != nil:
		case errors.Is(err, io.EOF), errors.Is(err, syscall.EIO), errors.Is(err, os.ErrClosed):
			return
		default:
			logf("read output: %v", err)
			return
		}
		select {
		case <-initDone:
			return // nothing left (EIO comes after the data) and nobody can open it again
		default:
		}
		idle = min(max(2*idle, 5*time.Millisecond), 100*time.Millisecond)
		select {
		case <-initDone:
		case <-time.After(idle):
		}
	}
}
