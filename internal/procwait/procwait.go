// Package procwait waits for a child process without holding an OS thread while it runs.
//
// exec.Cmd.Wait blocks in waitid(2) (wait4 before pidfds), and a goroutine blocked in a
// system call holds its thread: a daemon that waits for each of its shims that way had one
// thread per running container (109 threads after 100 parallel starts), and every start
// made one (a clone, its stack, and the scheduler's work to hand the P over). Wait instead
// parks the goroutine in Go's poller on the process's pidfd, which becomes readable when
// the process exits, and reaps it only then, when the wait returns at once.
package procwait

import (
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// Wait waits for cmd's process to exit, as cmd.Wait does, and returns cmd.Wait's result.
// Until the exit no thread is blocked for it. Where a non-blocking pidfd is not to be had
// (PIDFD_NONBLOCK came with Linux 5.10), it is cmd.Wait.
func Wait(cmd *exec.Cmd) error {
	if cmd.Process != nil {
		awaitExit(cmd.Process.Pid)
	}
	return cmd.Wait()
}

// awaitExit returns once pid, a child not yet reaped (so its pid is not reused), has exited,
// or at once when its pidfd cannot be had or polled.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	// A non-blocking fd is added to the poller by NewFile; a pidfd polls readable once the
	// process has exited (also when it had before the fd was added).
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		// Exited? Asked of the pidfd itself, without blocking: a readiness the poller saw
		// before this read began is not lost this way.
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		return (err != nil && err != unix.EINTR) || n > 0
	})
}
