// Package unixsock listens on and dials unix stream sockets whose path may be
// longer than the kernel's limit (108 bytes for sun_path).
//
// A long path is reached through the directory that holds the socket: the
// directory is opened (O_PATH) and the socket is named as
// /proc/self/fd/<N>/<base>, which is short whatever the directory's length.
// The directory fd is only needed while binding or connecting.
package unixsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxPath is the longest path that fits sun_path with its terminating NUL.
const maxPath = 107

// Listen creates a unix stream socket at path with file mode 0600 and listens
// on it. A stale socket file at path is removed first.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var l *net.UnixListener
	err := withShortPath(path, func(short string) error {
		// The umask makes the socket 0600 from the start: nobody else may
		// connect in the window before the chmod below.
		old := unix.Umask(0o177)
		defer unix.Umask(old)
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: short, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Close must not try to unlink the short alias (its dir fd is gone).
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Dial connects to the unix stream socket at path.
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	var c net.Conn
	err := withShortPath(path, func(short string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", short)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// PeerUID returns the uid of the process at the other end of c (SO_PEERCRED).
func PeerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
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
