// Package unixsock listens on and dials unix stream sockets whose path may be
// longer than the kernel's limit (108 bytes for sun_path).
//
// A long path is reached through the directory that holds the socket: the
// directory is opened (O_PATH) and the socket is named as
// /proc/self/fd/<N>/<base>, which is short whatever the directory's length.
// The directory fd is only needed while binding or connecting.
//
// The package works on raw sockets wrapped in *os.File (pollable, with
// deadlines) rather than on package net: importing net makes a cgo build
// link libc, and the shim, which uses this package, must stay small.
package unixsock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// maxPath is the longest path that fits sun_path with its terminating NUL.
const maxPath = 107

// Listener is a listening unix stream socket.
type Listener struct {
	f *os.File
}

// Listen creates a unix stream socket at path with file mode 0600 and listens
// on it. A stale socket file at path is removed first.
func Listen(path string) (*Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return ListenNew(path)
}

// ListenNew is Listen where no file may be at path: a file there is an error wrapping
// unix.EADDRINUSE (the bind's), and it is left alone.
func ListenNew(path string) (*Listener, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// Mode 0600 from the start (fchmod does not apply to sockets): nobody
	// else may connect in the window before the chmod below.
	old := unix.Umask(0o177)
	err = withShortPath(path, func(short string) error {
		return unix.Bind(fd, &unix.SockaddrUnix{Name: short})
	})
	unix.Umask(old)
	if err == nil {
		err = unix.Listen(fd, 128)
	}
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return &Listener{f: os.NewFile(uintptr(fd), path)}, nil
}

// FileListener is a Listener of f, a listening unix stream socket (one inherited across an
// exec). f must be non-blocking, so that Accept goes through Go's poller.
func FileListener(f *os.File) *Listener { return &Listener{f: f} }

// Accept waits for a connection.
func (l *Listener) Accept() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	return os.NewFile(uintptr(nfd), "unix-conn"), nil
}

// Close stops listening (the socket file stays; remove it yourself).
func (l *Listener) Close() error { return l.f.Close() }

// Dial connects to the unix stream socket at path.
func Dial(ctx context.Context, path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	for delay := time.Millisecond; ; delay *= 2 {
		err = withShortPath(path, func(short string) error {
			return unix.Connect(fd, &unix.SockaddrUnix{Name: short})
		})
		// EAGAIN: the listener's backlog is full; try again.
		if err != unix.EAGAIN {
			break
		}
		if delay > 100*time.Millisecond {
			delay = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, fmt.Errorf("dial %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dial %s: %w", path, os.NewSyscallError("connect", err))
	}
	return os.NewFile(uintptr(fd), path), nil
}

// PeerUID returns the uid of the process at the other end of a unix socket
// (SO_PEERCRED).
func PeerUID(f *os.File) (uint32, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, os.NewSyscallError("getsockopt", cerr)
	}
	return cred.Uid, nil
}

// PeerPidFD returns a pidfd of the process at the other end of a unix socket: the one the
// kernel names (SO_PEERPIDFD), or on kernels before 6.5 the pid of SO_PEERCRED, opened at once.
func PeerPidFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	pfd, perr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		if pfd, perr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD); perr == nil {
			return
		}
		var cred *unix.Ucred
		if cred, perr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); perr == nil {
			pfd, perr = unix.PidfdOpen(int(cred.Pid), 0)
		}
	}); err != nil {
		return -1, err
	}
	if perr != nil {
		return -1, os.NewSyscallError("getsockopt", perr)
	}
	return pfd, nil
}

// withShortPath calls fn with a name for path that fits sun_path.
func withShortPath(path string, fn func(short string) error) error {
	if len(path) <= maxPath {
		return fn(path)
	}
	dir, base := filepath.Split(path)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	short := "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
	if len(short) > maxPath {
		return fmt.Errorf("socket name %q too long", base)
	}
	return fn(short)
}
