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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	unmarkEnv()
	goruntime.GOMAXPROCS(1) // at once when the daemon's GOMAXPROCS=1 made it one already (shimEnv)
	// The shim has its own session; these come only from mistakes.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	if len(args) == 2 && args[0] == "--takeover-fd" {
		// From isulad-shim-lite, which exec'd this program: fd 3 is not the ready pipe
		// then, and every descriptor taken over is named in the state, which the memfd
		// args[1] holds (not argv, which every user can read in /proc).
		return takeover(args[1])
	}

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
	fs.BoolVar(&cfg.FreshState, "fresh-state", false, "the state directory was made for this shim")
	spare := fs.Bool("spare", false, "wait on fd 3 for the config (JSON line) instead of flags; exit at its EOF")
	adopted := fs.String("adopted", "", "the config (JSON) a spare took on fd 3 (isulad-shim-lite hands such a spare over)")
	// Fd 3 non-blocking, so that its reads and writes go through Go's poller: a spare's fd 3
	// becomes the connection of the daemon's first request (serveAdopter), with deadlines
	// and a close that ends a read in progress.
	// Close-on-exec: it is the daemon's, and the runtime and the container are not to have it.
	unix.SetNonblock(3, true)
	unix.CloseOnExec(3)
	ready := os.NewFile(3, "ready")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(ready, err)
		return 2
	}
	var adopter *bufio.Reader
	if *spare {
		c, br, err := awaitAdoption(ready)
		if c == nil && err == nil {
			return 0 // let go before any container
		}
		if err != nil {
			fmt.Fprintln(ready, err)
			return 2
		}
		cfg, adopter = *c, br
	}
	if *adopted != "" {
		// A light spare took the Config and made nothing: the rest is this program's, as
		// for a spare of its own (stderr is the container's shim.log already).
		if err := json.Unmarshal([]byte(*adopted), &cfg); err != nil {
			fmt.Fprintf(ready, "spare: bad config: %v\n", err)
			return 2
		}
		adopter = bufio.NewReaderSize(ready, 64<<10)
	}
	s, err := newServer(cfg)
	if err != nil {
		logf("%v", err)
		if ready != nil {
			fmt.Fprintln(ready, err)
		}
		return 1
	}
	ready.WriteString("ok\n")
	if adopter != nil {
		// The daemon's start comes on the socket pair it adopted the spare through: no
		// connect and accept on the start's path.
		go s.serveAdopter(ready, adopter)
	} else {
		ready.Close()
	}
	return s.serve()
}

type server struct {
	cfg    Config
	reaper *reaper.Reaper
	rt     *runtime
	l      *unixsock.Listener

	out   broadcaster // the container's output: log and attached clients
	stdio *stdio      // the container's streams; the console is set during the start
	// facts are config.json's fields the exit and a kill need, read once (readBundleInfo):
	// during an attached start, else at the first need.
	facts func() bundleInfo

	started chan struct{} // closed after a start (successful or not)
	done    chan struct{} // closed when the shim should exit
	exited  chan struct{} // closed once exit status is final and output delivered
	// initDone is closed once init was reaped (the console's EIO is final then).
	initDone chan struct{}

	mu        sync.Mutex
	status    string
	pid       int
	initFD    int // pidfd of init while it is not reaped, else -1
	exit      *ExitStatus
	cleaned   bool // the runtime's state and cgroups were deleted after the exit
	startErr  error
	startOnce bool
	// shuttingDown: a shutdown was accepted before any start; a start is refused.
	shuttingDown bool
	quitOnce     sync.Once

	waiters atomic.Int32 // wait requests being answered
	execs   atomic.Int32 // exec requests in progress
}

func newServer(cfg Config) (*server, error) {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Runtime == "" || cfg.StateDir == "" || cfg.Socket == "" || cfg.LogPath == "" {
		return nil, errors.New("missing flags: need --id, --bundle, --runtime, --state-dir, --socket, --log-path")
	}
	s, err := newServerState(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	lw, err := openLog(cfg)
	if err != nil {
		return nil, err
	}
	s.out.log = lw
	// The pipes exist before the start, so that stdin sent by an early attach is not lost.
	s.stdio = &stdio{}
	if !cfg.Terminal {
		if s.stdio, err = newPipes(cfg.Stdin); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, err
	}
	if !cfg.FreshState {
		// Files of a previous run of the container would mislead the daemon.
		os.Remove(filepath.Join(cfg.StateDir, ExitFile))
		os.Remove(filepath.Join(cfg.StateDir, InitPidFile))
		go removeDeletedRuntimeState(cfg.StateDir) // nothing reads it: off the start's path
	}
	if s.l, err = listen(cfg.Socket); err != nil {
		return nil, err
	}
	if err := writePidFile(filepath.Join(cfg.StateDir, ShimPidFile), os.Getpid()); err != nil {
		s.l.Close()
		os.Remove(cfg.Socket)
		return nil, err
	}
	return s, nil
}

// listen listens on the shim's socket. A socket file already there is a live shim's (an
// error: never steal its socket) or a stale one, which is replaced. The bind comes first: a
// first start finds no file, and pays no probe for one.
func listen(path string) (*unixsock.Listener, error) {
	l, err := unixsock.ListenNew(path)
	if !errors.Is(err, unix.EADDRINUSE) {
		return l, err
	}
	if c, err := unixsock.Dial(context.Background(), path); err == nil {
		c.Close()
		return nil, fmt.Errorf("a shim already listens on %s", path)
	}
	return unixsock.Listen(path)
}

// newServerState is a server of cfg with nothing open yet (the shim a subreaper): what
// newServer and a takeover from the light shim (serverFrom) both start from.
func newServerState(cfg Config) (*server, error) {
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
		initFD:   -1,
		initDone: make(chan struct{}),
	}
	s.facts = sync.OnceValue(func() bundleInfo { return readBundleInfo(cfg.Bundle) })
	s.rt = &runtime{bin: cfg.Runtime, root: cfg.RuntimeRoot, stateDir: cfg.StateDir, reaper: s.reaper}
	return s, nil
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
	s.dispatch(c, br, req)
}

// serveAdopter serves one request on the socket pair a spare was adopted through, read with
// the reader the config was read with. Its other end is the daemon's, which started this
// process: no peer check, and no deadline (the daemon sends its start when the container's
// network is up, or closes its end, or dies, and the kernel closes it then).
func (s *server) serveAdopter(c *os.File, br *bufio.Reader) {
	req, err := readRequest(br)
	if err != nil {
		c.Close()
		return
	}
	s.dispatch(c, br, req)
}

func (s *server) dispatch(c *os.File, br *bufio.Reader, req *request) {
	switch req.Op {
	case opStart:
		s.handleStart(c, br)
	case opAttach:
		s.handleAttach(c, br, req)
	case opWait:
		s.handleWait(c, br, req.Final)
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

func (s *server) handleWait(c *os.File, br *bufio.Reader, final bool) {
	s.waiters.Add(1)
	counted := true
	defer func() {
		if counted {
			s.waiters.Add(-1)
		}
	}()
	gone := make(chan struct{})
	go func() { io.Copy(io.Discard, br); close(gone) }()
	select {
	case <-s.exited:
	case <-gone:
		c.Close()
		return
	}
	s.mu.Lock()
	st, serr, cleaned := s.exit, s.startErr, s.cleaned
	s.mu.Unlock()
	if serr != nil {
		s.reply(c, result{Error: "container failed to start: " + serr.Error()})
		return
	}
	s.reply(c, result{Exit: st, Cleaned: cleaned})
	if final {
		// The daemon's last word: the shim goes now (waitInit exits once no other
		// waiter or exec is left).
		s.waiters.Add(-1)
		counted = false
		s.quit()
	}
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
	if s.stdio.console == nil {
		return result{Error: "container has no terminal"}
	}
	return errResult(setWinsize(s.stdio.console, w, h))
}

var errNoPidFD = errors.New("no pidfd of init")

func (s *server) kill(sig int, all bool) result {
	if err := s.running(); err != nil {
		return errResult(err)
	}
	if sig <= 0 {
		sig = int(syscall.SIGKILL)
	}
	// What the runtime's kill would do, without a runtime process (10-20 ms of CPU): a
	// signal to init alone, or SIGKILL to all when init is the container's own pid
	// namespace's init (the kernel then kills every process of the namespace). Through
	// init's pidfd, so never to a process that took a reused pid.
	if !all || (sig == int(syscall.SIGKILL) && s.facts().ownPidNS) {
		s.mu.Lock()
		var err error = errNoPidFD
		if s.initFD >= 0 {
			err = unix.PidfdSendSignal(s.initFD, syscall.Signal(sig), nil, 0)
		}
		s.mu.Unlock()
		if err == nil {
			return result{}
		}
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, s.cfg.ID, strconv.Itoa(sig))
	return errResult(s.rt.run("kill", [3]*os.File{}, args...))
}

// handleShutdown makes an idle shim exit: one never started, whose start failed, or whose
// container exited. While a start is in flight it refuses (reasonStarting): the runtime may
// be about to start the container, which would then run unsupervised.
func (s *server) handleShutdown(c *os.File) {
	s.mu.Lock()
	status, starting := s.status, s.startOnce && s.status == statusCreated
	if status == statusCreated && !s.startOnce {
		s.shuttingDown = true // no start may begin now
	}
	s.mu.Unlock()
	switch {
	case starting:
		s.reply(c, result{Error: ErrStartInProgress.Error(), Reason: reasonStarting})
		return
	case status == statusRunning:
		s.reply(c, result{Error: "container is running"})
		return
	case status == statusStopped:
		<-s.exited
	}
	s.reply(c, result{})
	s.quit()
}
