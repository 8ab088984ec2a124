// Package quickexit ends a Go process so that its parent's wait returns as soon as the
// process is done.
//
// A parent's wait returns once the last thread of the child is gone. os.Exit's exit_group
// kills the other threads, and a thread asleep on another CPU (a Go program always has
// some: sysmon, idle Ms) must be woken there to die. When that CPU is idle, the wakeup is
// an interrupt to it, and an idle vCPU of a virtual machine is halted: the host must run it
// first. On this project's benchmark machine (a firecracker guest) that took 3-4 ms in 2 of
// 6 runs of `isula run --rm ... true`, after a 60 ms run (docs/PERFORMANCE.md). Moved to
// the exiting thread's CPU beforehand, the other threads die on a CPU that is running.
package quickexit

import (
	"os"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit pins every thread of the process to the CPU the caller runs on, then exits with
// code (os.Exit: deferred functions do not run). Pinning is best effort: what fails is
// skipped, and the process exits all the same.
func Exit(code int) {
	Gather()
	os.Exit(code)
}

// Gather pins every thread of the process to the CPU the calling thread runs on, which it
// keeps: the caller's goroutine stays locked to its thread. For a process about to exit.
func Gather() {
	runtime.LockOSThread()
	var cpu, node uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0); e != 0 {
		return
	}
	var set unix.CPUSet
	set.Set(int(cpu))
	// Our own thread first: if it moved since getcpu, it goes back to where the others go.
	_ = unix.SchedSetaffinity(0, &set)
	// Again until a pass finds no thread it has not pinned: a thread that another, not yet
	// pinned, made while the list was read has that one's CPUs.
	pinned := map[int]bool{}
	for pass := 0; pass < 5; pass++ {
		d, err := os.Open("/proc/self/task")
		if err != nil {
			return
		}
		names, _ := d.Readdirnames(-1)
		d.Close()
		fresh := false
		for _, n := range names {
			tid, err := strconv.Atoi(n)
			if err != nil || pinned[tid] {
				continue
			}
			pinned[tid] = true
			fresh = true
			_ = unix.SchedSetaffinity(tid, &set)
		}
		if !fresh {
			return
		}
	}
}
