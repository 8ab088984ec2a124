package shmring

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations. These are deliberately the shared (non-private) forms:
// the two processes map the same tmpfs page, possibly from different mount
// and pid namespaces, and the kernel keys a shared futex on the inode and
// offset, not on the address space.
const (
	futexWait = 0 // FUTEX_WAIT
	futexWake = 1 // FUTEX_WAKE
)

// futexWaitTimeout sleeps while *addr == val, for at most d. Spurious
// wake-ups, EAGAIN (value changed), EINTR and ETIMEDOUT are all reported as
// nil: callers re-check their condition. EFAULT (the page vanished under a
// truncating peer) is returned.
func futexWaitTimeout(addr *uint32, val uint32, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	ts := unix.NsecToTimespec(int64(d))
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait,
		uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR, unix.ETIMEDOUT:
		return nil
	}
	return e
}

// futexWakeAll wakes every sleeper on addr.
func futexWakeAll(addr *uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, 1<<30, 0, 0, 0)
}

// bump advances a futex word and wakes its sleepers.
func bump(addr *uint32) {
	atomic.AddUint32(addr, 1)
	futexWakeAll(addr)
}
