package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/moby/term"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/opts"
	"github.com/isulad-go/isulad/internal/sigproxy"
)

// ioStream is what Attach and Exec streams have in common.
type ioStream interface {
	Send(*apiv1.StreamIn) error
	Recv() (*apiv1.StreamOut, error)
	CloseSend() error
}

// streamSpec says how to drive one interactive stream.
type streamSpec struct {
	tty      bool   // the process has a terminal: raw mode, resize
	stdin    bool   // forward stdin
	killID   string // with sigProxy: container to forward signals to
	sigProxy bool   // forward SIGINT, SIGTERM... to killID (not with a tty)
	detach   bool   // exec -d: do not copy output, return at the first answer
	noReady  bool   // the daemon sends no Ready message (exec): start input at once
}

// streamResult is how a stream ended.
type streamResult struct {
	code   int    // exit code (valid when exited)
	errMsg string // the daemon's message when the engine failed (code 125/126/127)
	exited bool   // the exit is known (code valid)
	// streamExit: the daemon's Exit message ended the stream (after an attached start, the
	// exit's handling, --rm's removal included, is done then).
	streamExit bool
	id         string // the container an attach with a create made (its created message)
	detached   bool   // the user detached (ctrl-p ctrl-q)
}

var errNotTTY = errors.New("the input device is not a TTY")

// checkTTY refuses -it when stdin is not a terminal, as docker does.
func (c *CLI) checkTTY(tty, stdin bool) error {
	if tty && stdin {
		if _, isTerm := term.GetFdInfo(c.In); !isTerm {
			return errNotTTY
		}
	}
	return nil
}

// winsize returns the size of the local terminal (stdout, else stdin), or 0, 0.
func (c *CLI) winsize() (uint32, uint32) {
	for _, f := range []any{c.Out, c.In} {
		if fd, isTerm := term.GetFdInfo(f); isTerm {
			if ws, err := term.GetWinsize(fd); err == nil && ws.Width > 0 && ws.Height > 0 {
				return uint32(ws.Width), uint32(ws.Height)
			}
		}
	}
	return 0, 0
}

// runStream opens a stream with open, sends the first message made by first (given the
// terminal size), then copies output to c.Out/c.Err and, once the daemon says ready, stdin
// to the stream, until the Exit message.
func (c *CLI) runStream(open func(context.Context) (ioStream, error), first func(w, h uint32) *apiv1.StreamIn, sp streamSpec) (streamResult, error) {
	cx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := open(cx)
	if err != nil {
		return streamResult{}, c.apiErr(err)
	}
	var w, h uint32
	if sp.tty {
		w, h = c.winsize()
	}
	var sendMu sync.Mutex
	send := func(m *apiv1.StreamIn) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(m)
	}
	if err := send(first(w, h)); err != nil {
		if _, rerr := st.Recv(); rerr != nil && !errors.Is(rerr, io.EOF) {
			return streamResult{}, c.apiErr(rerr)
		}
		return streamResult{}, c.apiErr(err)
	}

	// Raw mode for an interactive terminal; always restored.
	if sp.tty && sp.stdin {
		if fd, isTerm := term.GetFdInfo(c.In); isTerm {
			if state, err := term.MakeRaw(fd); err == nil {
				defer term.RestoreTerminal(fd, state)
			}
		}
	}

	detached := make(chan struct{})
	var startOnce sync.Once
	startInput := func() {
		startOnce.Do(func() {
			if sp.stdin && c.In != nil {
				go c.pumpStdin(send, sp.tty, detached)
			}
			if sp.tty {
				// Send the size again once started: a size given before the
				// container's terminal exists may be lost.
				if w, h := c.winsize(); w > 0 {
					send(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Resize{Resize: &apiv1.Resize{Width: w, Height: h}}})
				}
				stop := c.watchResize(send)
				go func() { <-cx.Done(); stop() }()
			}
			if sp.sigProxy && !sp.tty && sp.killID != "" {
				stop := c.proxySignals(sp.killID)
				go func() { <-cx.Done(); stop() }()
			}
		})
	}

	if sp.noReady && !sp.detach {
		startInput()
	}

	type recvd struct {
		m   *apiv1.StreamOut
		err error
	}
	msgs := make(chan recvd)
	go func() {
		for {
			m, err := st.Recv()
			select {
			case msgs <- recvd{m, err}:
			case <-cx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var created string
	for {
		var r recvd
		select {
		case r = <-msgs:
		case <-detached:
			return streamResult{detached: true, id: created}, nil
		}
		if r.err != nil {
			if errors.Is(r.err, io.EOF) {
				return streamResult{id: created}, nil
			}
			return streamResult{id: created}, c.apiErr(r.err)
		}
		switch x := r.m.Msg.(type) {
		case *apiv1.StreamOut_Stdout:
			if !sp.detach {
				c.Out.Write(x.Stdout)
			}
		case *apiv1.StreamOut_Stderr:
			if !sp.detach {
				c.Err.Write(x.Stderr)
			}
		case *apiv1.StreamOut_Created:
			created = x.Created.Id
			sp.killID = created // before ready, which starts the signal proxy
			c.warnAll(x.Created.Warnings)
		case *apiv1.StreamOut_Ready:
			if sp.detach {
				return streamResult{exited: true, id: created}, nil
			}
			startInput()
		case *apiv1.StreamOut_Exit:
			return streamResult{code: int(x.Exit.Code), errMsg: x.Exit.Error, exited: true, streamExit: true, id: created}, nil
		}
	}
}

// pumpStdin copies c.In to the stream, then sends close_stdin at EOF. With a tty, the
// sequence ctrl-p ctrl-q detaches (closes detached) instead.
func (c *CLI) pumpStdin(send func(*apiv1.StreamIn) error, tty bool, detached chan struct{}) {
	buf := make([]byte, 32*1024)
	held := false // a ctrl-p waits for the next byte
	for {
		n, err := c.In.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if tty {
				var out []byte
				for _, b := range data {
					if held {
						held = false
						if b == 0x11 {
							if len(out) > 0 {
								send(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Stdin{Stdin: out}})
							}
							close(detached)
							return
						}
						out = append(out, 0x10)
					}
					if b == 0x10 {
						held = true
						continue
					}
					out = append(out, b)
				}
				data = out
			}
			if len(data) > 0 {
				if send(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Stdin{Stdin: data}}) != nil {
					return
				}
			}
		}
		if err != nil {
			if held {
				send(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Stdin{Stdin: []byte{0x10}}})
			}
			send(&apiv1.StreamIn{Msg: &apiv1.StreamIn_CloseStdin{CloseStdin: true}})
			return
		}
	}
}

// watchResize sends the terminal size on SIGWINCH; the returned func stops it.
func (c *CLI) watchResize(send func(*apiv1.StreamIn) error) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				if w, h := c.winsize(); w > 0 {
					send(&apiv1.StreamIn{Msg: &apiv1.StreamIn_Resize{Resize: &apiv1.Resize{Width: w, Height: h}}})
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// proxySignals forwards the usual termination signals to the container (docker's
// --sig-proxy); the returned func stops it.
func (c *CLI) proxySignals(id string) func() {
	return sigproxy.Start(func(sig syscall.Signal) {
		if cl, err := c.client(); err == nil {
			cl.Kill(context.Background(), &apiv1.KillRequest{Id: id, Signal: opts.SignalName(sig)})
		}
	})
}
