// Package reaper reaps every child of the process in one place and hands each
// exit status to whoever waits for that pid.
//
// A process that reaps with wait4(-1) must not also wait on individual
// children (exec.Cmd.Wait, os.Process.Wait): the two race for the same exit
// status. Start children with syscall.ForkExec (or os.StartProcess and
// Release) and wait for them here. An exit that arrives before anybody asked
// for its pid is kept until asked for.
package reaper

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how a child ended.
type Exit struct {
	Pid    int
	Status int // exit status, or 128+signal when killed
	Signal int // the killing signal, 0 when it exited
	At     time.Time
}

// maxKept bounds the exits kept for pids nobody asked for (orphans
// reparented to a subreaper).
const maxKept = 1024

// Reaper dispatches the exit statuses of this process's children.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int][]chan Exit
	kept    map[int]Exit
}

// New returns a reaper; call Run (usually in a goroutine) to start reaping.
func New() *Reaper {
	return &Reaper{waiters: map[int][]chan Exit{}, kept: map[int]Exit{}}
}

// Run reaps children on every SIGCHLD until stop is closed.
func (r *Reaper) Run(stop <-chan struct{}) {
	ch := make(chan os.Signal, 32)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	r.Reap() // children that exited before the notification was set up
	for {
		select {
		case <-ch:
			r.Reap()
		case <-stop:
			return
		}
	}
}

// Reap collects every child that has exited, without blocking.
// The wait4 and the dispatch of its exit happen under the lock, so that PidFD never sees a
// pid that is reaped (free for reuse) but not yet dispatched.
func (r *Reaper) Reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		e := Exit{Pid: pid, At: time.Now()}
		switch {
		case ws.Exited():
			e.Status = ws.ExitStatus()
		case ws.Signaled():
			e.Signal = int(ws.Signal())
			e.Status = 128 + e.Signal
		default:
			continue // stopped or continued: not an exit
		}
		r.dispatch(e)
	}
}

func (r *Reaper) dispatch(e Exit) {
	if ws, ok := r.waiters[e.Pid]; ok {
		delete(r.waiters, e.Pid)
		for _, w := range ws {
			w <- e // buffered, never blocks
		}
		return
	}
	if len(r.kept) >= maxKept {
		for pid := range r.kept {
			delete(r.kept, pid)
			break
		}
	}
	r.kept[e.Pid] = e
}

// Wait returns a channel that receives the exit of pid once, whether it
// already happened or not.
func (r *Reaper) Wait(pid int) <-chan Exit {
	c := make(chan Exit, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.kept[pid]; ok {
		delete(r.kept, pid)
		c <- e
		return c
	}
	r.waiters[pid] = append(r.waiters[pid], c)
	return c
}

// Forget drops a kept exit of pid, if any (used when a pid is known to be
// gone without waiting).
func (r *Reaper) Forget(pid int) {
	r.mu.Lock()
	delete(r.kept, pid)
	r.mu.Unlock()
}

// PidFD opens a pidfd of child pid, which must not have been waited for (no Wait(pid)
// answered yet): signals sent through it reach that process and no other, even once the
// pid is reused. It fails with ESRCH when the child has exited and been reaped already.
func (r *Reaper) PidFD(pid int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kept[pid]; ok {
		return -1, unix.ESRCH
	}
	// Not reaped (every reap and its dispatch happen under r.mu): the pid is still ours.
	return unix.PidfdOpen(pid, 0)
}
