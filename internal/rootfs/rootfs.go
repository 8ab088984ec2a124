// Package rootfs reads and writes files inside a container's root filesystem. Everything in
// a rootfs is hostile input: its root can plant a FIFO, a socket, a device node or a symlink
// to a host file at /etc/hostname before a reboot, and an image author can ship one. So:
//
//   - Paths are resolved inside the rootfs the way the container sees them, through file
//     descriptors (openat2 with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), never through a host
//     path string: an absolute symlink target is taken from the rootfs, and a ".." that
//     would climb out of it is refused (ErrEscape) when reading or writing.
//   - A file is first opened with O_PATH|O_NOFOLLOW, which neither blocks nor has the side
//     effects of opening a device, and fstat'ed; only a regular file is then reopened (through
//     its /proc/self/fd link, so it is the inode just checked) for reading or writing, with
//     O_NONBLOCK. Anything else is one error naming the file and what it is.
//   - Reads are bounded, so a huge /etc/passwd cannot take the daemon's memory.
//
// Writes truncate and rewrite a regular file in place (its inode, owner and links stay), as
// the engine always did; a non-regular file where one is written is an error, not replaced:
// the rootfs is someone else's, and what they put there may be on purpose.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// ErrEscape is returned when a path, following its symlinks, would leave the rootfs.
var ErrEscape = errors.New("escapes the rootfs")

// maxSymlinks bounds symlink resolution, as the kernel does (ELOOP).
const maxSymlinks = 40

// root is an open rootfs directory.
type root struct {
	fd   int
	path string
}

func openRoot(rootfs string) (*root, error) {
	if rootfs == "" || !path.IsAbs(rootfs) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "rootfs %q: want an absolute path", rootfs)
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	return &root{fd: fd, path: rootfs}, nil
}

func (r *root) close() { unix.Close(r.fd) }

// hostPath is the host path of a container path, for messages.
func (r *root) hostPath(name string) string { return path.Join(r.path, name) }

// where names a container path for messages: "/etc/hostname in the rootfs /r".
func (r *root) where(name string) string {
	if r.path == "/" {
		return name
	}
	return name + " in the rootfs " + r.path
}

// openat2 opens name (a container path) under the root with RESOLVE_IN_ROOT: whatever
// symlinks the rootfs holds or gains meanwhile, the kernel never leaves it.
func (r *root) openat2(name string, flags int, perm uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(perm)
	}
	rel := strings.TrimLeft(name, "/")
	if rel == "" {
		rel = "."
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(r.fd, rel, &how)
		// EAGAIN: a rename raced with RESOLVE_IN_ROOT's walk; EINTR: a signal. Both are retried
		// a bounded number of times, so a rootfs that renames in a loop cannot spin us.
		if (err == unix.EINTR || err == unix.EAGAIN) && tries < 16 {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: r.hostPath(name), Err: err}
		}
		return fd, nil
	}
}

// lstat stats name (not following its last component) and, for a symlink, reads its target.
func (r *root) lstat(name string) (unix.Stat_t, string, error) {
	var st unix.Stat_t
	fd, err := r.openat2(name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return st, "", err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, "", &os.PathError{Op: "stat", Path: r.hostPath(name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return st, "", nil
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return st, "", &os.PathError{Op: "readlink", Path: r.hostPath(name), Err: err}
	}
	return st, string(buf[:n]), nil
}

// resolve resolves name (a path inside the container) the way the container would see it:
// symlinks are followed with absolute targets taken from the rootfs, never from the host. A
// ".." at the root stays at the root when clamp is true (what the kernel does for a process
// chrooted there); when clamp is false it is refused with ErrEscape, so that a symlink planted
// to point outside is an error rather than silently redirected. Components that do not exist
// are kept as they are. The result is a clean absolute container path.
func (r *root) resolve(name string, clamp bool) (string, error) {
	var (
		resolved = "/"
		rest     = strings.Split(name, "/")
		links    = 0
	)
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if resolved == "/" {
				if !clamp {
					return "", errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Errorf("%s: %w", r.where(name), ErrEscape))
				}
				continue
			}
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		st, target, err := r.lstat(next)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			// The rest does not exist (yet): nothing more to follow. A ".." after a missing
			// directory cannot be walked (the kernel says ENOENT); never clean it away.
			for _, p := range rest {
				if p == ".." {
					return "", &os.PathError{Op: "resolve", Path: r.hostPath(name), Err: fs.ErrNotExist}
				}
			}
			return path.Clean("/" + path.Join(append([]string{next}, rest...)...)), nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: r.hostPath(name), Err: unix.ELOOP}
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// kind names a file type for messages.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "of unknown type " + strconv.FormatUint(uint64(mode&unix.S_IFMT), 8)
}

// openRegular opens the regular file name (a resolved container path) with flags. It never
// blocks and never opens anything but a regular file: the file is looked at through an O_PATH
// descriptor first and reopened only if regular; a missing file is created (O_EXCL) when
// flags hold O_CREAT.
func (r *root) openRegular(name string, flags int, perm uint32) (*os.File, error) {
	const safe = unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	for tries := 0; ; tries++ {
		pfd, err := r.openat2(name, unix.O_PATH|unix.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) && flags&unix.O_CREAT != 0 {
			fd, err := r.openat2(name, flags|unix.O_EXCL|unix.O_NOFOLLOW|safe, perm)
			if errors.Is(err, fs.ErrExist) && tries < 2 {
				continue // made meanwhile: look at what it is
			}
			if err != nil {
				return nil, err
			}
			return os.NewFile(uintptr(fd), r.hostPath(name)), nil
		}
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			unix.Close(pfd)
			return nil, &os.PathError{Op: "stat", Path: r.hostPath(name), Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(pfd)
			return nil, errdefs.Errorf(errdefs.ErrFailedPrecondition, "%s is %s: want a regular file", r.where(name), kind(st.Mode))
		}
		// Reopening the O_PATH descriptor's magic link opens exactly the inode checked above.
		fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), (flags&^(unix.O_CREAT|unix.O_EXCL|unix.O_TRUNC))|safe, 0)
		unix.Close(pfd)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: r.hostPath(name), Err: err}
		}
		return os.NewFile(uintptr(fd), r.hostPath(name)), nil
	}
}

// ReadFile reads the regular file name (a path inside the container, resolved inside rootfs;
// a symlink pointing out is refused) of at most limit bytes.
func ReadFile(rootfs, name string, limit int64) ([]byte, error) {
	r, err := openRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer r.close()
	resolved, err := r.resolve(name, false)
	if err != nil {
		return nil, err
	}
	f, err := r.openRegular(resolved, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := errdefs.Errorf(errdefs.ErrFailedPrecondition, "%s is larger than %d bytes", r.where(name), limit)
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Size() > limit {
		return nil, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1)) // it may grow after the stat
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooBig
	}
	return data, nil
}

// WriteFile writes data to name (a path inside the container) in rootfs with mode perm: name
// is resolved inside the rootfs first (a symlink pointing out is refused with ErrEscape), the
// directories it needs are made (mode 0755), and the file is created or, if it is a regular
// file, truncated and rewritten. Anything else at name is an error.
func WriteFile(rootfs, name string, data []byte, perm fs.FileMode) error {
	r, err := openRoot(rootfs)
	if err != nil {
		return err
	}
	defer r.close()
	resolved, err := r.resolve(name, false)
	if err != nil {
		return err
	}
	if err := r.mkdirAll(path.Dir(resolved)); err != nil {
		return err
	}
	f, err := r.openRegular(resolved, unix.O_WRONLY|unix.O_CREAT, uint32(perm.Perm()))
	if err != nil {
		return err
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Chmod(perm.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// MkdirAll makes dir (a path inside the container) and its missing parents inside rootfs,
// mode 0755. A symlink pointing out of the rootfs is refused with ErrEscape.
func MkdirAll(rootfs, dir string) error {
	r, err := openRoot(rootfs)
	if err != nil {
		return err
	}
	defer r.close()
	resolved, err := r.resolve(dir, false)
	if err != nil {
		return err
	}
	return r.mkdirAll(resolved)
}

// mkdirAll makes the resolved container path dir, each step under RESOLVE_IN_ROOT.
func (r *root) mkdirAll(dir string) error {
	cur := "/"
	for _, c := range strings.Split(path.Clean("/"+dir), "/") {
		if c == "" {
			continue
		}
		next := path.Join(cur, c)
		fd, err := r.openat2(next, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			unix.Close(fd)
			cur = next
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		parent, err := r.openat2(cur, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(parent, c, 0o755)
		unix.Close(parent)
		if err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: r.hostPath(next), Err: err}
		}
		cur = next
	}
	return nil
}

// Stat resolves name inside rootfs as the kernel would for a process chrooted there (a ".."
// at the root stays there) and returns the resolved container path and its file type bits
// (unix.S_IFMT of the mode), without opening the file.
func Stat(rootfs, name string) (resolved string, mode uint32, err error) {
	r, err := openRoot(rootfs)
	if err != nil {
		return "", 0, err
	}
	defer r.close()
	if resolved, err = r.resolve(name, true); err != nil {
		return "", 0, err
	}
	st, _, err := r.lstat(resolved)
	if err != nil {
		return "", 0, err
	}
	return resolved, st.Mode & unix.S_IFMT, nil
}
