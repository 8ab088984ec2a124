package shim

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// validExecID keeps exec ids usable as file names.
func validExecID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	return !strings.ContainsAny(id, "/\x00")
}

// handleExec runs a process in the container (runtime exec --detach) and streams its stdio
// to this client only, until it exited and its output ended.
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
	// Gone before the client hears the result.
	removeFiles := func() {
		os.Remove(procFile)
		os.Remove(pidFile)
	}
	defer removeFiles()
	if err := os.WriteFile(procFile, req.Process, 0o600); err != nil {
		s.reply(c, errResult(err))
		return
	}

	b := &broadcaster{gated: true}
	sk := newSink(c)
	b.add(sk)
	sio := &stdio{}
	fail := func(err error) {
		sio.closeChild()
		sio.close()
		b.open(false)
		b.end()
		sk.finish(resultFrame(errResult(err)))
		sk.wait(flushTimeout)
	}
	args := []string{"exec", "--detach", "--process", procFile, "--pid-file", pidFile}
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
		args = append(args, "--console-socket", cs.path)
	default:
		var err error
		if sio, err = newPipes(req.Stdin); err != nil {
			sio = &stdio{}
			fail(err)
			return
		}
		sio.pumpPipes(b)
	}
	args = append(args, s.cfg.ID)
	err := s.rt.run("exec", sio.child, args...)
	sio.closeChild()
	var pid int
	if err == nil {
		pid, err = readPidFile(pidFile)
	}
	removeFiles()
	if err == nil && proc.Terminal {
		var console *os.File
		if console, err = cs.await(); err == nil {
			sio.pumpConsole(console, b, nil)
		}
	}
	if cs != nil {
		cs.close() // gone before the client hears the result
	}
	if err != nil {
		fail(err)
		return
	}
	exitC := s.reaper.Wait(pid)
	ready, _ := json.Marshal(struct {
		Pid int `json:"pid"`
	}{pid})
	sk.send(encodeFrame(frameReady, ready), nil)
	b.open(true)
	if req.Detach {
		b.end()
		sk.finish(resultFrame(result{Pid: pid}))
		sk.wait(flushTimeout)
		go func() {
			<-exitC
			b.exited.Store(true)
			sio.drain()
		}()
		return
	}

	go func() {
		resize := func(w, h uint16) {
			if sio.console != nil {
				setWinsize(sio.console, w, h)
			}
		}
		// Until the reaper has reaped the process its pid cannot be reused, and exited is set
		// right after.
		kill := func() {
			if !b.exited.Load() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		readInput(br, sio.writeStdin, sio.closeStdin, resize, kill)
		sk.abort() // before remove: see handleAttach
		b.remove(sk)
		// The client went away (its connection closed) with the process still running.
		if req.KillOnClose {
			kill()
		}
	}()

	e := <-exitC
	b.exited.Store(true)
	sio.drain()
	b.end()
	sk.finish(resultFrame(result{Pid: pid, Code: e.Status}))
	sk.wait(flushTimeout)
}
