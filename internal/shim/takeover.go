package shim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/unixsock"
)

// The Go shim's side of a handover from isulad-shim-lite (cmd/isulad-shim-lite), the C shim
// the daemon adopts for a detached start. The light shim set the container's shim up and
// may have started it; at the first thing it does not serve (a request other than wait, the
// container's output, init's exit, a failed start) it execs this program with --takeover-fd and
// this state: the same process (its pid is the one in shim.pid, its children are ours), the
// descriptors named here inherited. From then on the shim is as if this program had done
// everything itself.

// takeoverState is what the light shim passes (its JSON). Descriptors are -1 when absent.
type takeoverState struct {
	Config Config `json:"config"`
	// Phase: created (nothing started), running (init runs, or ran: its exit may be waiting
	// to be reaped), failed (the runtime's start failed: its log and exit status, or Error).
	Phase    string `json:"phase"`
	Listener int    `json:"listener"`
	Stdout   int    `json:"stdout"` // the shim's ends of the container's output pipes
	Stderr   int    `json:"stderr"`
	// StdoutW, StderrW (created): the process's ends of the pipes, for the start.
	StdoutW int `json:"stdout_w"`
	StderrW int `json:"stderr_w"`
	Pid     int `json:"pid"`     // running: init's
	InitFD  int `json:"init_fd"` // running: a pidfd of init, or -1
	LogFD   int `json:"log_fd"`  // failed: the runtime's JSON log (a memfd)
	// RuntimeStatus (failed): the runtime's exit status.
	RuntimeStatus int    `json:"rt_status"`
	Error         string `json:"error"` // failed: an error that is not the runtime's
	// Adopter: the daemon's socket pair, still open: created, or the start's connection not
	// yet answered (failed). AdopterLine: what was read on it of a request not served (a whole
	// line, or its start).
	Adopter     int    `json:"adopter"`
	AdopterLine []byte `json:"adopter_line"`
	Waiters     []struct {
		FD    int  `json:"fd"`
		Final bool `json:"final"`
	} `json:"waiters"`
	Conn int    `json:"conn"` // a connection whose request was read (Line: all or part) and not served
	Line []byte `json:"line"`
}

// takeover runs the shim from the light shim's state, read from the descriptor fdArg.
func takeover(fdArg string) int {
	fd, err := strconv.Atoi(fdArg)
	if err != nil || fd <= 2 {
		logf("takeover: state descriptor %q", fdArg)
		return 1
	}
	f := os.NewFile(uintptr(fd), "takeover-state")
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	f.Close()
	if err != nil {
		logf("takeover: %v", err)
		return 1
	}
	var st takeoverState
	if err := json.Unmarshal(b, &st); err != nil {
		logf("takeover: %v", err)
		return 1
	}
	s, err := serverFrom(&st)
	if err != nil {
		logf("takeover: %v", err)
		return 1
	}
	return s.serve()
}

// inherited is an *os.File of inherited descriptor fd: close-on-exec (the runtime and the
// container must not get it) and non-blocking (through Go's poller), or nil for -1.
func inherited(fd int, name string) (*os.File, error) {
	if fd < 0 {
		return nil, nil
	}
	if fd <= 2 {
		return nil, fmt.Errorf("descriptor %d for %s", fd, name)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("%s (fd %d): %w", name, fd, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func serverFrom(st *takeoverState) (*server, error) {
	cfg := st.Config
	s, err := newServerState(cfg)
	if err != nil {
		return nil, err
	}
	files := map[string]*os.File{}
	for name, fd := range map[string]int{"listener": st.Listener, "stdout": st.Stdout, "stderr": st.Stderr,
		"adopter": st.Adopter, "conn": st.Conn, "runtime log": st.LogFD} {
		f, err := inherited(fd, name)
		if err != nil {
			return nil, err
		}
		files[name] = f
	}
	// The process's ends stay as they are (blocking): they go to the runtime, and on to the
	// container's processes, whose writes must not fail with EAGAIN.
	for name, fd := range map[string]int{"stdout_w": st.StdoutW, "stderr_w": st.StderrW} {
		if fd > 2 {
			unix.CloseOnExec(fd)
			files[name] = os.NewFile(uintptr(fd), name)
		}
	}
	if files["listener"] == nil || files["stdout"] == nil || files["stderr"] == nil {
		return nil, errors.New("no socket or no output pipes in the state")
	}
	if st.InitFD >= 0 {
		unix.CloseOnExec(st.InitFD)
	}
	s.l = unixsock.FileListener(files["listener"])
	s.stdio = &stdio{outputs: []*os.File{files["stdout"], files["stderr"]}}
	s.stdio.child[1], s.stdio.child[2] = files["stdout_w"], files["stderr_w"]
	lw, err := openLog(cfg)
	if err != nil {
		return nil, err
	}
	s.out.log = lw

	adopter := files["adopter"]
	switch st.Phase {
	case "created":
		if s.stdio.child[1] == nil || s.stdio.child[2] == nil {
			return nil, errors.New("created without the process's ends of the pipes")
		}
	case "running":
		if st.Pid <= 0 {
			return nil, errors.New("running without a pid")
		}
		s.startOnce = true
		s.pid, s.initFD, s.status = st.Pid, st.InitFD, statusRunning
		close(s.started)
		s.stdio.pumpPipes(&s.out)
		opened := make(chan struct{})
		go func() {
			s.out.open(true)
			close(opened)
		}()
		go s.waitInit(st.Pid, opened)
	case "failed":
		s.startOnce = true
		var serr error
		if st.Error != "" {
			serr = errors.New(st.Error)
		} else if lf := files["runtime log"]; lf != nil {
			serr = s.rt.failure("run", lf, st.RuntimeStatus)
		} else {
			serr = fmt.Errorf("%s run: exit status %d", cfg.Runtime, st.RuntimeStatus)
		}
		if lf := files["runtime log"]; lf != nil {
			lf.Close()
		}
		s.stdio.pumpPipes(&s.out) // what the runtime wrote there is dropped (open(false))
		s.out.open(false)
		// In the background: startFailed runs the runtime's delete, which needs the
		// reaper that serve starts.
		a := adopter
		adopter = nil
		go func() {
			s.startFailed(serr)
			close(s.started)
			if a != nil {
				s.failedStartReply(a, bufio.NewReader(a), serr)
			}
		}()
	default:
		return nil, fmt.Errorf("phase %q", st.Phase)
	}
	for _, w := range st.Waiters {
		c, err := inherited(w.FD, "waiter")
		if err != nil || c == nil {
			continue
		}
		go s.handleWait(c, bufio.NewReader(c), w.Final)
	}
	if c := files["conn"]; c != nil {
		go s.serveLine(c, st.Line)
	}
	if adopter != nil {
		if len(st.AdopterLine) > 0 {
			go s.serveLine(adopter, st.AdopterLine)
		} else {
			go s.serveAdopter(adopter, bufio.NewReaderSize(adopter, 64<<10))
		}
	}
	return s, nil
}

// serveLine serves a connection the light shim read the start of, line: the whole request
// line with its newline, or its part (the rest comes from c).
func (s *server) serveLine(c *os.File, line []byte) {
	var r io.Reader = c
	if len(line) > 0 {
		r = io.MultiReader(bytes.NewReader(line), c)
	}
	br := bufio.NewReaderSize(r, 4096)
	req, err := readRequest(br)
	if err != nil {
		c.Close()
		return
	}
	s.dispatch(c, br, req)
}
