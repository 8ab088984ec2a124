package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/fault"
)

// The container's init: its start, a failed start, its exit.

// beginStart claims the one start of the shim.
func (s *server) beginStart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return errors.New("shim is shutting down")
	}
	if s.startOnce {
		return errors.New("container already started")
	}
	s.startOnce = true
	return nil
}

func (s *server) handleStart(c *os.File, br *bufio.Reader) {
	if err := s.beginStart(); err != nil {
		s.reply(c, errResult(err))
		return
	}
	pid, err := s.start(nil)
	if err == nil {
		s.reply(c, result{Pid: pid})
		return
	}
	s.failedStartReply(c, br, err)
}

// failedStartReply answers a failed start on its connection c (read through br).
func (s *server) failedStartReply(c *os.File, br *bufio.Reader, err error) {
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

// start runs the runtime's create+start and sets up the output. announce, if not nil, is
// called with init's pid before anything can handle its exit: an attach-with-start's
// started frame is queued before the exit's last frame ends the same stream (queued after
// it, the frame was dropped and the client saw its stream end before the start).
func (s *server) start(announce func(pid int)) (pid int, err error) {
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
		s.stdio.pumpPipes(&s.out)
	}
	args = append(args, cfg.ID)
	if announce != nil {
		// An attached start is a short run's, whose exit is on its client's path: what the
		// exit needs (the spec's few fields, the cgroup mounts) is read while the runtime
		// works. A detached start leaves it to the first need (a kill of all, the exit):
		// in a burst of detached starts that CPU is the engine's, per container, while it
		// starts containers (docs/PERFORMANCE.md, issue 14's ninth round).
		go func() {
			s.facts()
			cachedCgroupMounts()
		}()
	}
	if splitStart {
		err = s.rt.run("create", s.stdio.child, args...)
		if err == nil {
			err = fault.Point(fault.StartAfterCreate)
		}
		if err == nil {
			err = s.rt.run("start", [3]*os.File{}, "start", cfg.ID)
		}
	} else {
		err = s.rt.run("run", s.stdio.child, args...)
	}
	s.stdio.closeChild()
	if err == nil {
		pid, err = readPidFile(pidFile)
	}
	// Off the start's path: the unlink frees a data block (0.2-0.3 ms on ext4 with
	// discard). A file a killed shim leaves is removed before the next start.
	go os.Remove(pidFile)
	var console *os.File
	if err == nil && cfg.Terminal {
		console, err = cs.await()
	}
	if err != nil {
		s.out.open(false)
		return 0, s.startFailed(err)
	}
	if console != nil {
		s.stdio.pumpConsole(console, &s.out, s.initDone)
	}
	if err := writePidFile(filepath.Join(cfg.StateDir, InitPidFile), pid); err != nil {
		logf("write %s: %v", InitPidFile, err)
	}
	// A pidfd of init (our child now: the runtime has exited), taken before anything can
	// reap it, lets kill signal init itself instead of running the runtime's kill.
	initFD, ferr := s.reaper.PidFD(pid)
	if ferr != nil {
		initFD = -1
	}
	s.mu.Lock()
	s.pid = pid
	s.initFD = initFD
	s.status = statusRunning
	s.mu.Unlock()
	// What came during the start goes out in the background: a slow client must
	// not hold the start's answer back.
	opened := make(chan struct{})
	go func() {
		s.out.open(true)
		close(opened)
	}()
	if announce != nil {
		fault.Point(fault.StartBeforeAnnounce)
		announce(pid)
	}
	go s.waitInit(pid, opened)
	return pid, nil
}

// startFailed cleans up after a failed start: nothing of the container may
// stay behind.
func (s *server) startFailed(err error) error {
	if derr := s.rt.run("delete", [3]*os.File{}, "delete", "--force", s.cfg.ID); derr != nil && !strings.Contains(derr.Error(), "not exist") && !strings.Contains(derr.Error(), "not found") {
		logf("cleanup after failed start: %v", derr)
	}
	s.stdio.closeChild()
	s.stdio.close()
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
// opened is closed once the output held during the start went out.
func (s *server) waitInit(pid int, opened <-chan struct{}) {
	e := <-s.reaper.Wait(pid)
	s.mu.Lock()
	if s.initFD >= 0 {
		unix.Close(s.initFD)
		s.initFD = -1
	}
	s.mu.Unlock()
	close(s.initDone)
	st := &ExitStatus{Code: e.Status, Signal: e.Signal, ExitedAt: e.At.UTC(), OOMKilled: oomKilled(s.facts().cgroupsPath)}
	b, _ := json.Marshal(st)
	if err := writeFileAtomic(filepath.Join(s.cfg.StateDir, ExitFile), b); err != nil {
		logf("write %s: %v", ExitFile, err)
	}
	cleaned := true
	if err := s.rt.fastDelete(s.cfg.ID, s.facts()); err != nil {
		if !errors.Is(err, errNoFastDelete) {
			logf("fast delete: %v; running the runtime's delete", err)
		}
		if err := s.rt.run("delete", [3]*os.File{}, "delete", s.cfg.ID); err != nil {
			if err := s.rt.run("delete", [3]*os.File{}, "delete", "--force", s.cfg.ID); err != nil {
				logf("delete: %v", err)
				cleaned = false
			}
		}
	}
	s.out.exited.Store(true)
	s.stdio.drain()
	<-opened
	s.out.log.Close()

	s.mu.Lock()
	s.exit = st
	s.cleaned = cleaned
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
