package shim

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
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
	go pump(p.outputs[0], frameStdout, b, &p.pumps)
	go pump(p.outputs[1], frameStderr, b, &p.pumps)
}

// pumpConsole takes the pty master the runtime sent and copies it to b. For the
// container's init (initDone not nil) the pty outlives hang-ups until init exits.
func (p *stdio) pumpConsole(f *os.File, b *broadcaster, initDone <-chan struct{}) {
	p.console, p.stdin = f, f
	p.outputs = []*os.File{f}
	p.pumps.Add(1)
	if initDone != nil {
		go pumpConsole(f, b, &p.pumps, initDone)
	} else {
		go pump(f, frameStdout, b, &p.pumps)
	}
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

// drain, after the process exited, waits for its output to end, at most d (a process
// outside the container's pid namespace may hold it open), and then closes the shim's
// ends.
func (p *stdio) drain(d time.Duration) {
	if !waitTimeout(&p.pumps, d) {
		logf("output still open %v after the exit; closing it", d)
		p.closeOutputs()
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
func readInput(br *bufio.Reader, stdin func([]byte), closeStdin func(), resize func(w, h uint16)) {
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
		}
	}
}

// pump copies f (a pipe or pty master) to b until EOF (EIO for a pty whose
// other side is closed) or until f is closed.
func pump(f *os.File, typ byte, b *broadcaster, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			b.write(typ, buf[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrClosed) {
				logf("read output: %v", err)
			}
			return
		}
	}
}

// pumpConsole is pump for the pty master of the container's init. A read
// error EIO there only means that no one holds the terminal's other side at
// the moment: systemd opens /dev/console for each status line and closes it
// again, agetty hangs the terminal up before it opens it anew. Output that
// comes later must still flow, so EIO ends the pump only once init exited
// (initDone), after what was left in the pty was read; until then the read
// is retried, at most every 100ms.
func pumpConsole(f *os.File, b *broadcaster, wg *sync.WaitGroup, initDone <-chan struct{}) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	var idle time.Duration
	for {
		n, err := f.Read(buf)
		if n > 0 {
			b.write(frameStdout, buf[:n])
			idle = 0
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.EIO) {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				logf("read output: %v", err)
			}
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

// waitTimeout waits for wg, at most d; it reports whether wg finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
