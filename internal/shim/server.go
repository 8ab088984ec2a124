package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/reaper"
	"github.com/isulad-go/isulad/internal/unixsock"
)

// Timeouts of the exit sequence.
const (
	drainTimeout = 3 * time.Second // output EOF after the process exited
	flushTimeout = 5 * time.Second // clients taking the last frames
	// lateWaitGrace: how long an exited shim still answers a late wait or state.
	lateWaitGrace = 200 * time.Millisecond
)

// Container states as reported by state.
const (
	statusCreated = "created" // shim up, container not started
	statusRunning = "running"
	statusStopped = "stopped"
	statusFailed  = "failed"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s isulad-shim[%d]: %s\n", time.Now().UTC().Format(time.RFC3339Nano), os.Getpid(), fmt.Sprintf(format, args...))
}

// Main is the shim's entry point (cmd/isulad-shim); args are its flags. The
// launcher's ready pipe is fd 3: the shim writes "ok" there once it listens,
// or its error.
func Main(args []string) int {
	// A shim sits idle most of its life: keep the heap and threads small.
	debug.SetGCPercent(20)
	goruntime.GOMAXPROCS(1)
	// The shim has its own session; these come only from mistakes.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)

	var cfg Config
	fs := flag.NewFlagSet("isulad-shim", flag.ContinueOnError)
	fs.StringVar(&cfg.ID, "id", "", "container id")
	fs.StringVar(&cfg.Bundle, "bundle", "", "OCI bundle directory")
	fs.StringVar(&cfg.Runtime, "runtime", "", "OCI runtime binary")
	fs.StringVar(&cfg.RuntimeRoot, "runtime-root", "", "runtime --root")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "state directory")
	fs.StringVar(&cfg.Socket, "socket", "", "socket to listen on")
	fs.StringVar(&cfg.LogPath, "log-path", "", "json-file log")
	fs.Int64Var(&cfg.LogMaxSize, "log-max-size", 0, "rotate the log above this size")
	fs.IntVar(&cfg.LogMaxFile, "log-max-file", 1, "log files kept")
	fs.StringVar(&cfg.LogFormat, "log-format", "", "log format: json-file (default) or cri")
	fs.BoolVar(&cfg.Terminal, "terminal", false, "allocate a pty")
	fs.BoolVar(&cfg.Stdin, "stdin", false, "keep stdin open")
	ready := os.NewFile(3, "ready")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(ready, err)
		return 2
	}
	s, err := newServer(cfg)
	if err != nil {
		logf("%v", err)
		if ready != nil {
			fmt.Fprintln(ready, err)
		}
		return 1
	}
	if ready != nil {
		ready.WriteString("ok\n")
		ready.Close()
	}
	return s.serve()
}

type server struct {
	cfg    Config
	reaper *reaper.Reaper
	rt     *runtime
	l      *unixsock.Listener

	out     broadcaster
	outWG   sync.WaitGroup
	stdoutR *os.File // pipes (no terminal): the shim's ends
	stderrR *os.File
	stdinW  *os.File
	child   [3]*os.File // the container's ends, closed once the runtime ran
	console *os.File    // pty master (terminal)
	bundle  bundleInfo  // from config.json, read during the start

	started chan struct{} // closed after a start (successful or not)
	done    chan struct{} // closed when the shim should exit
	exited  chan struct{} // closed once exit status is final and output delivered
	// initDone is closed once init was reaped (the console's EIO is final then).
	initDone chan struct{}

	mu        sync.Mutex
	status    string
	pid       int
	exit      *ExitStatus
	startErr  error
	startOnce bool
	stdinOnce sync.Once
	quitOnce  sync.Once

	waiters atomic.Int32 // wait requests being answered
	execs   atomic.Int32 // exec requests in progress
}

func newServer(cfg Config) (*server, error) {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Runtime == "" || cfg.StateDir == "" || cfg.Socket == "" || cfg.LogPath == "" {
		return nil, errors.New("missing flags: need --id, --bundle, --runtime, --state-dir, --socket, --log-path")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set child subreaper: %w", err)
	}
	s := &server{
		cfg:      cfg,
		reaper:   reaper.New(),
		started:  make(chan struct{}),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		status:   statusCreated,
		initDone: make(chan struct{}),
	}
	s.rt = &runtime{bin: cfg.Runtime, root: cfg.RuntimeRoot, stateDir: cfg.StateDir, reaper: s.reaper}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	lw, err := openLog(cfg)
	if err != nil {
		return nil, err
	}
	s.out.log = lw
	if !cfg.Terminal {
		if err := s.makePipes(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, err
	}
	// Never steal the socket of a live shim; a stale socket file is replaced.
	if c, err := unixsock.Dial(context.Background(), cfg.Socket); err == nil {
		c.Close()
		return nil, fmt.Errorf("a shim already listens on %s", cfg.Socket)
	}
	// Files of a previous run of the container would mislead the daemon.
	os.Remove(filepath.Join(cfg.StateDir, ExitFile))
	os.Remove(filepath.Join(cfg.StateDir, InitPidFile))
	s.l, err = unixsock.Listen(cfg.Socket)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(cfg.StateDir, ShimPidFile), []byte(strconv.Itoa(os.Getpid()))); err != nil {
		s.l.Close()
		os.Remove(cfg.Socket)
		return nil, err
	}
	return s, nil
}

// makePipes creates the container's stdio pipes; they exist before Start so
// that stdin sent by an early attach is not lost.
func (s *server) makePipes() error {
	var err error
	var stdoutW, stderrW *os.File
	if s.stdoutR, stdoutW, err = os.Pipe(); err != nil {
		return err
	}
	if s.stderrR, stderrW, err = os.Pipe(); err != nil {
		return err
	}
	s.child[1], s.child[2] = stdoutW, stderrW
	if s.cfg.Stdin {
		var stdinR *os.File
		if stdinR, s.stdinW, err = os.Pipe(); err != nil {
			return err
		}
		s.child[0] = stdinR
	}
	return nil
}

func (s *server) serve() int {
	stop := make(chan struct{})
	go s.reaper.Run(stop)
	// The daemon's signals are not ours; a shim stops through its requests
	// or when its container is gone.
	go s.accept()
	<-s.done
	s.l.Close()
	os.Remove(s.cfg.Socket)
	os.Remove(filepath.Join(s.cfg.StateDir, ShimPidFile))
	return 0
}

// quit makes the shim exit.
func (s *server) quit() {
	s.quitOnce.Do(func() { close(s.done) })
}

func (s *server) accept() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			logf("accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go s.handle(c)
	}
}

func (s *server) handle(c *os.File) {
	uid, err := unixsock.PeerUID(c)
	if err != nil || uid != 0 {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	req, err := readRequest(br)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch req.Op {
	case opStart:
		s.handleStart(c, br)
	case opAttach:
		s.handleAttach(c, br, req)
	case opWait:
		s.handleWait(c, br)
	case opState:
		s.reply(c, s.state())
	case opResize:
		s.reply(c, s.resize(req.Width, req.Height))
	case opExec:
		s.handleExec(c, br, req)
	case opKill:
		s.reply(c, s.kill(req.Signal, req.All))
	case opShutdown:
		s.handleShutdown(c)
	case opReopenLog:
		s.reply(c, errResult(s.out.log.Reopen()))
	default:
		s.reply(c, result{Error: "unknown operation " + strconv.Quote(req.Op)})
	}
}

// reply sends the result and closes the connection.
func (s *server) reply(c *os.File, r result) {
	c.SetWriteDeadline(time.Now().Add(flushTimeout))
	c.Write(resultFrame(r))
	c.Close()
}

func errResult(err error) result {
	if err == nil {
		return result{}
	}
	return result{Error: err.Error()}
}

func (s *server) state() result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return result{Status: s.status, Pid: s.pid, Exit: s.exit}
}

func (s *server) handleStart(c *os.File, br *bufio.Reader) {
	s.mu.Lock()
	if s.startOnce {
		s.mu.Unlock()
		s.reply(c, result{Error: "container already started"})
		return
	}
	s.startOnce = true
	s.mu.Unlock()

	pid, err := s.start()
	if err == nil {
		s.reply(c, result{Pid: pid})
		return
	}
	logf("start: %v", err)
	c.Write(resultFrame(errResult(err)))
	// A failed shim lingers until its client has read the error (closed
	// the connection) or asks for a shutdown.
	go func() {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		io.Copy(io.Discard, br)
		c.Close()
		s.quit()
	}()
}

// start runs the runtime's create+start and sets up the output.
func (s *server) start() (pid int, err error) {
	defer close(s.started)
	cfg := s.cfg
	pidFile := filepath.Join(cfg.StateDir, "runtime-init.pid")
	os.Remove(pidFile)
	// Normally one `run --detach`; with the start-after-create fault point configured, the
	// equivalent `create` then `start`, so a test can fail between the two.
	splitStart := fault.Enabled(fault.StartAfterCreate)
	args := []string{"run", "--detach", "--pid-file", pidFile, "--bundle", cfg.Bundle}
	if splitStart {
		args = []string{"create", "--pid-file", pidFile, "--bundle", cfg.Bundle}
	}

	s.out.gated = true
	var cs *consoleSocket
	if cfg.Terminal {
		if cs, err = newConsoleSocket(cfg.StateDir); err != nil {
			return 0, s.startFailed(err)
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
	} else {
		s.outWG.Add(2)
		go pump(s.stdoutR, frameStdout, &s.out, &s.outWG)
		go pump(s.stderrR, frameStderr, &s.out, &s.outWG)
	}
	args = append(args, cfg.ID)
	// The exit path needs a few fields of the spec: read them while the runtime works.
	bundleC := make(chan bundleInfo, 1)
	go func() { bundleC <- readBundleInfo(cfg.Bundle) }()
	if splitStart {
		err = s.rt.run("create", s.child, args...)
		if err == nil {
			err = fault.Point(fault.StartAfterCreate)
		}
		if err == nil {
			err = s.rt.run("start", [3]*os.File{}, "start", cfg.ID)
		}
	} else {
		err = s.rt.run("run", s.child, args...)
	}
	for i, f := range s.child {
		if f != nil {
			f.Close()
			s.child[i] = nil
		}
	}
	s.bundle = <-bundleC
	if err == nil {
		pid, err = readPidFile(pidFile)
	}
	os.Remove(pidFile)
	if err == nil && cfg.Terminal {
		s.console, err = cs.await()
	}
	if err != nil {
		s.out.open(false)
		return 0, s.startFailed(err)
	}
	if cfg.Terminal {
		s.outWG.Add(1)
		go pumpConsole(s.console, &s.out, &s.outWG, s.initDone)
	}
	if err := writeFileAtomic(filepath.Join(cfg.StateDir, InitPidFile), []byte(strconv.Itoa(pid))); err != nil {
		logf("write %s: %v", InitPidFile, err)
	}
	s.mu.Lock()
	s.pid = pid
	s.status = statusRunning
	s.mu.Unlock()
	s.out.open(true)
	go s.waitInit(pid)
	return pid, nil
}

// startFailed cleans up after a failed start: nothing of the container may
// stay behind.
func (s *server) startFailed(err error) error {
	if derr := s.rt.run("delete", [3]*os.File{}, "delete", "--force", s.cfg.ID); derr != nil && !strings.Contains(derr.Error(), "not exist") && !strings.Contains(derr.Error(), "not found") {
		logf("cleanup after failed start: %v", derr)
	}
	for _, f := range []*os.File{s.stdoutR, s.stderrR, s.stdinW, s.console} {
		if f != nil {
			f.Close()
		}
	}
	s.out.log.Close()
	s.mu.Lock()
	s.status = statusFailed
	s.startErr = err
	s.mu.Unlock()
	for _, sk := range s.out.end() {
		sk.finish(resultFrame(errResult(err)))
	}
	close(s.exited)
	return err
}

// waitInit handles the exit of the container's init: record it, delete the
// runtime's state, drain the output, tell everyone, exit.
func (s *server) waitInit(pid int) {
	e := <-s.reaper.Wait(pid)
	close(s.initDone)
	st := &ExitStatus{Code: e.Status, Signal: e.Signal, ExitedAt: e.At.UTC(), OOMKilled: oomKilled(s.bundle.cgroupsPath)}
	b, _ := json.Marshal(st)
	if err := writeFileAtomic(filepath.Join(s.cfg.StateDir, ExitFile), b); err != nil {
		logf("write %s: %v", ExitFile, err)
	}
	if err := s.rt.fastDelete(s.cfg.ID, s.bundle); err != nil {
		if !errors.Is(err, errNoFastDelete) {
			logf("fast delete: %v; running the runtime's delete", err)
		}
		if err := s.rt.run("delete", [3]*os.File{}, "delete", s.cfg.ID); err != nil {
			if err := s.rt.run("delete", [3]*os.File{}, "delete", "--force", s.cfg.ID); err != nil {
				logf("delete: %v", err)
			}
		}
	}
	// Processes that kept the output open (outside a pid namespace) must
	// not keep the shim forever.
	if !waitTimeout(&s.outWG, drainTimeout) {
		logf("output still open %v after the exit; closing it", drainTimeout)
	}
	for _, f := range []*os.File{s.stdoutR, s.stderrR, s.console} {
		if f != nil {
			f.Close()
		}
	}
	s.outWG.Wait()
	if s.stdinW != nil {
		s.stdinW.Close()
	}
	s.out.log.Close()

	s.mu.Lock()
	s.exit = st
	s.status = statusStopped
	s.mu.Unlock()

	sinks := s.out.end()
	for _, sk := range sinks {
		sk.finish(resultFrame(result{}))
	}
	for _, sk := range sinks {
		sk.wait(flushTimeout)
	}
	close(s.exited) // the waiters answer now
	// A client asking for the exit just after it (kill, then wait) must still
	// find the shim: linger a moment unless told to go (a shutdown). The
	// runtime's delete used to give such a client 15-30 ms by accident.
	select {
	case <-s.done:
	case <-time.After(lateWaitGrace):
	}
	deadline := time.Now().Add(drainTimeout + flushTimeout)
	for (s.waiters.Load() > 0 || s.execs.Load() > 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.quit()
}

func (s *server) handleWait(c *os.File, br *bufio.Reader) {
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	gone := make(chan struct{})
	go func() { io.Copy(io.Discard, br); close(gone) }()
	select {
	case <-s.exited:
	case <-gone:
		c.Close()
		return
	}
	s.mu.Lock()
	st, serr := s.exit, s.startErr
	s.mu.Unlock()
	if serr != nil {
		s.reply(c, result{Error: "container failed to start: " + serr.Error()})
		return
	}
	s.reply(c, result{Exit: st})
}

// running returns nil if the container runs.
func (s *server) running() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != statusRunning {
		return fmt.Errorf("container is not running (%s)", s.status)
	}
	return nil
}

func (s *server) resize(w, h uint16) result {
	if err := s.running(); err != nil {
		return errResult(err)
	}
	if s.console == nil {
		return result{Error: "container has no terminal"}
	}
	return errResult(setWinsize(s.console, w, h))
}

func (s *server) kill(sig int, all bool) result {
	if err := s.running(); err != nil {
		return errResult(err)
	}
	if sig <= 0 {
		sig = int(syscall.SIGKILL)
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, s.cfg.ID, strconv.Itoa(sig))
	return errResult(s.rt.run("kill", [3]*os.File{}, args...))
}

func (s *server) handleShutdown(c *os.File) {
	s.mu.Lock()
	status := s.status
	s.mu.Unlock()
	switch status {
	case statusRunning:
		s.reply(c, result{Error: "container is running"})
		return
	case statusStopped:
		<-s.exited
	}
	s.reply(c, result{})
	s.quit()
}

// abort drops a client that went away, unless its last frames are queued.
func (sk *sink) abort() {
	sk.mu.Lock()
	closing := sk.closing
	sk.mu.Unlock()
	if !closing {
		sk.kill()
	}
}

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
	buf := make([]byte, 32<<10)
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			s.out.remove(sk)
			sk.abort()
			return
		}
		switch typ {
		case frameStdin:
			if !req.Stdin {
				continue
			}
			if s.cfg.Terminal {
				<-s.started
				if s.running() == nil && s.console != nil {
					s.console.Write(p)
				}
			} else if s.stdinW != nil {
				s.stdinW.Write(p)
			}
		case frameStdinClose:
			if req.Stdin && !s.cfg.Terminal && s.stdinW != nil {
				s.stdinOnce.Do(func() { s.stdinW.Close() })
			}
		case frameResize:
			if w, h, ok := decodeResize(p); ok {
				s.resize(w, h)
			}
		}
	}
}

// validExecID keeps exec ids usable as file names.
func validExecID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	return !strings.ContainsAny(id, "/\x00")
}

func (s *server) handleExec(c *os.File, br *bufio.Reader, req *request) {
	s.execs.Add(1)
	defer s.execs.Add(-1)
	if err := s.running(); err != nil {
		s.reply(c, errResult(err))
		return
	}
	if !validExecID(req.ExecID) {
		s.reply(c, result{Error: "invalid exec id " + strconv.Quote(req.ExecID)})
		return
	}
	var proc struct {
		Terminal bool `json:"terminal"`
	}
	if err := json.Unmarshal(req.Process, &proc); err != nil {
		s.reply(c, result{Error: "bad process: " + err.Error()})
		return
	}
	procFile := filepath.Join(s.cfg.StateDir, "exec-"+req.ExecID+".json")
	pidFile := filepath.Join(s.cfg.StateDir, "exec-"+req.ExecID+".pid")
	defer os.Remove(procFile)
	defer os.Remove(pidFile)
	if err := os.WriteFile(procFile, req.Process, 0o600); err != nil {
		s.reply(c, errResult(err))
		return
	}

	b := &broadcaster{gated: true}
	sk := newSink(c)
	b.add(sk)
	var wg sync.WaitGroup
	var child [3]*os.File
	var mine []*os.File // the shim's ends, closed at the end
	var stdinW, console *os.File
	defer func() {
		for _, f := range mine {
			f.Close()
		}
	}()
	args := []string{"exec", "--detach", "--process", procFile, "--pid-file", pidFile}
	fail := func(err error) {
		for i, f := range child {
			if f != nil {
				f.Close()
				child[i] = nil
			}
		}
		b.open(false)
		b.end()
		sk.finish(resultFrame(errResult(err)))
		sk.wait(flushTimeout)
	}
	var cs *consoleSocket
	switch {
	case req.Detach && !proc.Terminal:
		// stdio is /dev/null
	case proc.Terminal:
		// A detached terminal process still needs its pty master held and
		// drained, or it blocks (or gets SIGHUP) when we close it.
		var err error
		if cs, err = newConsoleSocket(s.cfg.StateDir); err != nil {
			fail(err)
			return
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
	default:
		outR, outW, err := os.Pipe()
		if err != nil {
			fail(err)
			return
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			outR.Close()
			outW.Close()
			fail(err)
			return
		}
		child[1], child[2] = outW, errW
		mine = append(mine, outR, errR)
		if req.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				fail(err)
				return
			}
			child[0], stdinW = inR, inW
			mine = append(mine, inW)
		}
		wg.Add(2)
		go pump(outR, frameStdout, b, &wg)
		go pump(errR, frameStderr, b, &wg)
	}
	args = append(args, s.cfg.ID)
	err := s.rt.run("exec", child, args...)
	for i, f := range child {
		if f != nil {
			f.Close()
			child[i] = nil
		}
	}
	var pid int
	if err == nil {
		pid, err = readPidFile(pidFile)
	}
	if err == nil && proc.Terminal {
		if console, err = cs.await(); err == nil {
			mine = append(mine, console)
			stdinW = console
			wg.Add(1)
			go pump(console, frameStdout, b, &wg)
		}
	}
	if err != nil {
		fail(err)
		return
	}
	exitC := s.reaper.Wait(pid)
	ready, _ := json.Marshal(struct {
		Pid int `json:"pid"`
	}{pid})
	sk.send(encodeFrame(frameReady, ready))
	b.open(true)
	if req.Detach {
		b.end()
		sk.finish(resultFrame(result{Pid: pid}))
		sk.wait(flushTimeout)
		held := mine
		mine = nil
		go func() {
			<-exitC
			if !waitTimeout(&wg, drainTimeout) {
				for _, f := range held {
					f.Close()
				}
			}
			wg.Wait()
			for _, f := range held {
				f.Close()
			}
		}()
		return
	}

	go func() {
		buf := make([]byte, 32<<10)
		var once sync.Once
		for {
			typ, p, err := readFrame(br, buf)
			if err != nil {
				b.remove(sk)
				sk.abort()
				return
			}
			switch typ {
			case frameStdin:
				if stdinW != nil {
					stdinW.Write(p)
				}
			case frameStdinClose:
				if stdinW != nil && !proc.Terminal {
					once.Do(func() { stdinW.Close() })
				}
			case frameResize:
				if w, h, ok := decodeResize(p); ok && console != nil {
					setWinsize(console, w, h)
				}
			}
		}
	}()

	e := <-exitC
	if !waitTimeout(&wg, drainTimeout) {
		for _, f := range mine {
			f.Close()
		}
		wg.Wait()
	}
	b.end()
	sk.finish(resultFrame(result{Pid: pid, Code: e.Status}))
	sk.wait(flushTimeout)
}
