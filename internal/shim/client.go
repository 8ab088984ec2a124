package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/internal/procwait"
	"github.com/isulad-go/isulad/internal/unixsock"
)

// Client talks to one shim. Every call uses its own connection, so calls may
// run concurrently.
type Client struct {
	socket string

	mu     sync.Mutex
	conns  map[*os.File]struct{}
	closed bool
	// first: for a client of an adopted spare, the socket pair it was adopted through,
	// which the shim serves one request on (serveAdopter). The first start takes it:
	// the start's path has no connect then.
	first *conn
}

// ErrClientClosed is returned by calls on a closed Client.
var ErrClientClosed = errors.New("shim client closed")

// Launch starts a shim for cfg, detached from the caller (new session, stdin
// and stdout /dev/null, stderr appended to StateDir/shim.log), and returns
// once it listens. The shim outlives the caller; while the caller lives it
// reaps the shim.
func Launch(ctx context.Context, shimBinary string, cfg Config) (*Client, error) {
	if err := prepareLaunch(cfg); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(cfg.StateDir, ShimLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()

	cmd := exec.Command(shimBinary, cfg.args()...)
	cmd.Dir = "/"
	cmd.Env = shimEnv()
	cmd.Stdin = devnull
	cmd.Stdout = devnull
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start shim: %w", err)
	}
	exited := make(chan struct{})
	go func() { procwait.Wait(cmd); close(exited) }() // no thread held while the shim runs

	rc := make(chan ready, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(readyR, 64<<10))
		rc <- ready{strings.TrimSpace(string(b)), err}
	}()
	select {
	case r := <-rc:
		if r.err == nil && r.msg == "ok" {
			return &Client{socket: cfg.Socket}, nil
		}
		cmd.Process.Kill()
		if r.msg == "" {
			<-exited
			r.msg = "shim exited: " + cmd.ProcessState.String()
		}
		return nil, fmt.Errorf("shim: %s", r.msg)
	case <-ctx.Done():
		cmd.Process.Kill()
		return nil, ctx.Err()
	}
}

// ready is a shim's answer on its ready pipe: "ok" or its error.
type ready struct {
	msg string
	err error
}

// prepareLaunch checks cfg and makes the directories a shim for it needs.
func prepareLaunch(cfg Config) error {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Runtime == "" || cfg.StateDir == "" || cfg.Socket == "" || cfg.LogPath == "" {
		return errors.New("shim: incomplete config")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Dir(cfg.Socket), 0o700)
}

// args is the shim's command line for cfg.
func (cfg Config) args() []string {
	a := []string{
		"--id", cfg.ID,
		"--bundle", cfg.Bundle,
		"--runtime", cfg.Runtime,
		"--runtime-root", cfg.RuntimeRoot,
		"--state-dir", cfg.StateDir,
		"--socket", cfg.Socket,
		"--log-path", cfg.LogPath,
		"--log-max-size", strconv.FormatInt(cfg.LogMaxSize, 10),
		"--log-max-file", strconv.Itoa(cfg.LogMaxFile),
	}
	if cfg.LogFormat != "" {
		a = append(a, "--log-format", cfg.LogFormat)
	}
	if cfg.Terminal {
		a = append(a, "--terminal")
	}
	if cfg.Stdin {
		a = append(a, "--stdin")
	}
	if cfg.FreshState {
		a = append(a, "--fresh-state")
	}
	return a
}

// Connect returns a client of the shim listening on socket, after checking
// that it answers (an error wrapping ErrShimGone if it does not).
func Connect(ctx context.Context, socket string) (*Client, error) {
	c := &Client{socket: socket}
	if _, err := c.call(ctx, request{Op: opState}); err != nil {
		return nil, err
	}
	return c, nil
}

// Close ends the client's connections in progress; the shim is unaffected.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
	if c.first != nil {
		c.first.nc.Close()
		c.first = nil
	}
	return nil
}

// dial connects to the shim's socket; a socket nobody listens on is ErrShimGone.
func (c *Client) dial(ctx context.Context) (*os.File, error) {
	nc, err := unixsock.Dial(ctx, c.socket)
	if err != nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	return nc, err
}

// conn is one request's connection.
type conn struct {
	c  *Client
	nc *os.File
	br *bufio.Reader
	wm sync.Mutex // serializes frame writes
}

func (c *Client) open(ctx context.Context, req request) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClientClosed
	}
	var k *conn
	if req.Op == opStart || req.Start {
		k, c.first = c.first, nil
	}
	c.mu.Unlock()
	if k == nil {
		nc, err := c.dial(ctx)
		if err != nil {
			return nil, err
		}
		k = &conn{c: c, nc: nc, br: bufio.NewReaderSize(nc, 32<<10)}
	}
	line, err := json.Marshal(req)
	if err != nil {
		k.nc.Close()
		return nil, err
	}
	if _, err := k.nc.Write(append(line, '\n')); err != nil {
		k.nc.Close()
		return nil, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		k.nc.Close()
		return nil, ErrClientClosed
	}
	if c.conns == nil {
		c.conns = map[*os.File]struct{}{}
	}
	c.conns[k.nc] = struct{}{}
	c.mu.Unlock()
	return k, nil
}

func (k *conn) close() {
	k.c.mu.Lock()
	delete(k.c.conns, k.nc)
	k.c.mu.Unlock()
	k.nc.Close()
}

// watch closes the connection when ctx is done; call the returned func to stop.
func (k *conn) watch(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { k.nc.Close() })
}

func (k *conn) send(frame []byte) error {
	k.wm.Lock()
	defer k.wm.Unlock()
	_, err := k.nc.Write(frame)
	return err
}

// readErr turns a failed read into the error of the call.
func (k *conn) readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	k.c.mu.Lock()
	closed := k.c.closed
	k.c.mu.Unlock()
	if closed {
		return ErrClientClosed
	}
	return fmt.Errorf("%w: %v", ErrShimGone, err)
}

// frames reads frames until the result, passing the others to fn.
func (k *conn) frames(ctx context.Context, fn func(typ byte, p []byte) error) (*result, error) {
	buf := make([]byte, 32<<10)
	for {
		typ, p, err := readFrame(k.br, buf)
		if err != nil {
			return nil, k.readErr(ctx, err)
		}
		if typ == frameResult {
			var r result
			if err := json.Unmarshal(p, &r); err != nil {
				return nil, fmt.Errorf("shim: bad result: %w", err)
			}
			if r.Error != "" {
				return &r, r.err()
			}
			return &r, nil
		}
		if fn != nil {
			if err := fn(typ, p); err != nil {
				return nil, err
			}
		}
	}
}

// call makes a request without streams and returns its result.
func (c *Client) call(ctx context.Context, req request) (*result, error) {
	k, err := c.open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer k.close()
	defer k.watch(ctx)()
	return k.frames(ctx, nil)
}

// Start creates and starts the container (runtime run --detach) and returns
// its init's pid. A failure carries the runtime's own message (for example
// `exec: "foo": executable file not found in $PATH`); the shim then cleans up
// and exits.
func (c *Client) Start(ctx context.Context) (int, error) {
	r, err := c.call(ctx, request{Op: opStart})
	if err != nil {
		return 0, err
	}
	return r.Pid, nil
}

// Pid returns the pid of the container's init (0 before Start).
func (c *Client) Pid() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.call(ctx, request{Op: opState})
	if err != nil {
		return 0, err
	}
	return r.Pid, nil
}

// State reports the container's status as the shim sees it: "created"
// (not started yet), "running", "stopped" (with its exit status) or
// "failed" (Start failed), and its init's pid.
func (c *Client) State(ctx context.Context) (status string, pid int, exit *ExitStatus, err error) {
	r, err := c.call(ctx, request{Op: opState})
	if err != nil {
		return "", 0, nil, err
	}
	return r.Status, r.Pid, r.Exit, nil
}

// Wait blocks until the container's init exits and returns how. Any number
// of waiters may wait. An error wrapping ErrShimGone means the shim went away
// first; a failed Start also ends the waits, with its error.
func (c *Client) Wait(ctx context.Context) (ExitStatus, error) {
	r, err := c.call(ctx, request{Op: opWait})
	if err != nil {
		return ExitStatus{}, err
	}
	if r.Exit == nil {
		return ExitStatus{}, errors.New("shim: wait without exit status")
	}
	return *r.Exit, nil
}

// WaitFinal is Wait as the client's last request: once it is answered the shim exits by
// itself (no Shutdown needed). cleaned reports that the shim deleted the runtime's state
// and the container's cgroups after the exit.
func (c *Client) WaitFinal(ctx context.Context) (es ExitStatus, cleaned bool, err error) {
	r, err := c.call(ctx, request{Op: opWait, Final: true})
	if err != nil {
		return ExitStatus{}, false, err
	}
	if r.Exit == nil {
		return ExitStatus{}, false, errors.New("shim: wait without exit status")
	}
	return *r.Exit, r.Cleaned, nil
}

// Resize sets the size of the container's terminal.
func (c *Client) Resize(ctx context.Context, width, height uint16) error {
	_, err := c.call(ctx, request{Op: opResize, Width: width, Height: height})
	return err
}

// Kill sends signal to the container's init (all: to all its processes),
// directly when the shim can do what the runtime's kill would, else through it.
func (c *Client) Kill(ctx context.Context, signal int, all bool) error {
	_, err := c.call(ctx, request{Op: opKill, Signal: signal, All: all})
	return err
}

// Shutdown asks an idle shim (container never started, failed, or already
// exited) to exit. It fails while the container runs, and with
// ErrStartInProgress while a Start is in flight (whoever undoes a start must
// wait for it to end, then stop what it started, then shut the shim down).
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: opShutdown})
	if errors.Is(err, ErrShimGone) {
		return nil
	}
	return err
}

// Attach streams the container's output produced from now on to stdout and
// stderr (with a terminal everything goes to stdout) and stdin, if not nil,
// to the container. It returns nil once the container exited and all its
// output was delivered. At stdin's EOF the container's stdin pipe is closed
// (with a terminal nothing happens). Attach does not close stdin: a
// goroutine blocked reading it ends at its next read.
func (c *Client) Attach(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	wait, err := c.AttachStream(ctx, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	return wait()
}

// AttachStream is Attach in two steps: it returns once the shim has
// registered the streams (so a Start that follows loses no output) and wait
// blocks like Attach.
func (c *Client) AttachStream(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (wait func() error, err error) {
	k, err := c.open(ctx, request{Op: opAttach, Stdin: stdin != nil})
	if err != nil {
		return nil, err
	}
	stop := k.watch(ctx)
	if err := k.ready(ctx, nil); err != nil {
		stop()
		k.close()
		return nil, err
	}
	if stdin != nil {
		go k.copyStdin(stdin)
	}
	return func() error {
		defer k.close()
		defer stop()
		_, err := k.frames(ctx, output(stdout, stderr))
		return err
	}, nil
}

// AttachStart is AttachStream and Start in one request: the shim registers the streams,
// then starts the container. It returns the pid of the container's init once the start is
// done (output that came before is already written); wait blocks like Attach's. The start
// is bounded by ctx, the streams are not.
func (c *Client) AttachStart(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (pid int, wait func() error, err error) {
	k, err := c.open(ctx, request{Op: opAttach, Stdin: stdin != nil, Start: true})
	if err != nil {
		return 0, nil, err
	}
	if err := k.ready(ctx, nil); err != nil {
		k.close()
		return 0, nil, err
	}
	if stdin != nil {
		go k.copyStdin(stdin)
	}
	started := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		defer k.close()
		out := output(stdout, stderr)
		_, err := k.frames(context.Background(), func(typ byte, p []byte) error {
			if typ == frameStarted {
				var r result
				json.Unmarshal(p, &r)
				started <- r.Pid
				return nil
			}
			return out(typ, p)
		})
		done <- err
	}()
	select {
	case pid := <-started:
		return pid, func() error { return <-done }, nil
	case err := <-done:
		if err == nil {
			err = errors.New("shim: the stream ended before the start")
		}
		return 0, nil, err
	case <-ctx.Done():
		k.close()
		<-done
		return 0, nil, ctx.Err()
	}
}

// ready waits for the 'k' frame; its payload goes to into, if not nil.
func (k *conn) ready(ctx context.Context, into any) error {
	buf := make([]byte, 512)
	typ, p, err := readFrame(k.br, buf)
	if err != nil {
		return k.readErr(ctx, err)
	}
	switch typ {
	case frameReady:
		if into != nil && len(p) > 0 {
			return json.Unmarshal(p, into)
		}
		return nil
	case frameResult:
		var r result
		if err := json.Unmarshal(p, &r); err != nil {
			return err
		}
		if r.Error != "" {
			return r.err()
		}
		return errors.New("shim: stream ended before it started")
	}
	return fmt.Errorf("shim: unexpected frame %q", typ)
}

func output(stdout, stderr io.Writer) func(byte, []byte) error {
	return func(typ byte, p []byte) error {
		var w io.Writer
		switch typ {
		case frameStdout:
			w = stdout
		case frameStderr:
			w = stderr
		}
		if w != nil {
			// A failing writer must not stop the stream: the rest of the
			// output is still read (and dropped) until the result.
			w.Write(p)
		}
		return nil
	}
}

// copyStdin sends stdin's bytes to the shim, then EOF.
func (k *conn) copyStdin(stdin io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if k.send(encodeFrame(frameStdin, buf[:n])) != nil {
				return
			}
		}
		if err != nil {
			k.send(encodeFrame(frameStdinClose, nil))
			return
		}
	}
}

// ExecOptions say how Exec runs its process.
type ExecOptions struct {
	// Detach: return as soon as the process started; its output goes nowhere.
	Detach bool
	// KillOnCancel: the shim SIGKILLs the process if this caller goes away (ctx ends) before
	// the process exited, as the CRI wants of an exec that timed out or lost its stream.
	// Without it the process runs on, as docker's does.
	KillOnCancel bool
}

// Exec runs proc in the container (runtime exec --detach) under execID and
// streams its stdio like Attach (its output goes to this caller only, not to
// the log). resize, if not nil, carries terminal sizes (width, height). It
// returns the process's exit code (128+signal when killed); with opts.Detach
// it returns 0 as soon as the process started.
func (c *Client) Exec(ctx context.Context, execID string, proc *specs.Process, stdin io.Reader, stdout, stderr io.Writer, resize <-chan [2]uint16, opts ExecOptions) (int, error) {
	detach := opts.Detach
	if proc == nil {
		return 0, errors.New("shim: exec without a process")
	}
	pj, err := json.Marshal(proc)
	if err != nil {
		return 0, err
	}
	kill := opts.KillOnCancel && !detach
	k, err := c.open(ctx, request{Op: opExec, ExecID: execID, Process: pj, Stdin: stdin != nil && !detach, Detach: detach,
		KillOnClose: kill})
	if err != nil {
		return 0, err
	}
	defer k.close()
	if kill {
		// When ctx ends the shim kills the process and answers once it is reaped, so that the
		// caller returns with the process gone; if the answer does not come the connection is
		// closed after a while (and the shim kills on that too).
		defer context.AfterFunc(ctx, func() {
			k.send(encodeFrame(frameKill, nil))
			time.AfterFunc(execKillWait, func() { k.nc.Close() })
		})()
	} else {
		defer k.watch(ctx)()
	}
	var started struct {
		Pid int `json:"pid"`
	}
	if err := k.ready(ctx, &started); err != nil {
		return 0, err
	}
	if !detach {
		if stdin != nil {
			go k.copyStdin(stdin)
		}
		if resize != nil {
			done := make(chan struct{})
			defer close(done)
			go func() {
				for {
					select {
					case sz, ok := <-resize:
						if !ok {
							return
						}
						if k.send(encodeResize(sz[0], sz[1])) != nil {
							return
						}
					case <-done:
						return
					}
				}
			}()
		}
	}
	r, err := k.frames(ctx, output(stdout, stderr))
	if kill && ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, err
	}
	return r.Code, nil
}

// execKillWait is how long Exec with KillOnCancel waits for the shim's answer after ctx ended.
const execKillWait = 10 * time.Second

// PeerPidFD returns a pidfd of the process that listens on the shim's socket: the shim
// itself, whatever its command line says (an adopted spare's is `isulad-shim --spare`).
func (c *Client) PeerPidFD(ctx context.Context) (int, error) {
	nc, err := c.dial(ctx)
	if err != nil {
		return -1, err
	}
	defer nc.Close()
	pfd, err := unixsock.PeerPidFD(nc)
	if err != nil {
		return -1, fmt.Errorf("the shim's process: %w", err)
	}
	return pfd, nil
}
