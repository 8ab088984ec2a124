package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// errEscape is returned when a path, following its symlinks, would leave the rootfs.
var errEscape = errors.New("escapes the rootfs")

// maxSymlinks bounds symlink resolution, as the kernel does (ELOOP).
const maxSymlinks = 40

// resolveInRoot resolves p (a path inside the container) against rootfs the way the
// container would see it: symlinks are followed with absolute targets taken from the rootfs,
// never from the host. A ".." at the root stays at the root when clamp is true (what the
// kernel does for a process chrooted there); when clamp is false it is refused with errEscape,
// so a symlink that tries to point outside the rootfs is an error. Components that do not
// exist are kept as they are. The result is a clean absolute container path.
func resolveInRoot(rootfs, p string, clamp bool) (string, error) {
	var (
		resolved = "/"
		rest     = strings.Split(p, "/")
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
					return "", fmt.Errorf("%q: %w", p, errEscape)
				}
				continue
			}
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		fi, err := os.Lstat(path.Join(rootfs, next))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			// The rest does not exist (yet): nothing more to follow. A ".." after a missing
			// directory cannot be walked (the kernel says ENOENT); never clean it away.
			for _, r := range rest {
				if r == ".." {
					return "", &os.PathError{Op: "resolve", Path: p, Err: fs.ErrNotExist}
				}
			}
			resolved = path.Join(append([]string{next}, rest...)...)
			return path.Clean("/" + resolved), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("%q: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(path.Join(rootfs, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// OpenInRoot opens name (a path inside the container) in rootfs with openat2's
// RESOLVE_IN_ROOT: whatever symlinks the rootfs holds or gains meanwhile, the kernel never
// leaves rootfs. Before that, the path is resolved in user space without clamping, so a
// symlink that points out of the rootfs is refused with an error rather than silently
// redirected.
func OpenInRoot(rootfs, name string, flags int, perm uint32) (*os.File, error) {
	if _, err := resolveInRoot(rootfs, name, false); err != nil {
		return nil, err
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	return openat2(root, rootfs, name, flags, perm)
}

func openat2(dirfd int, rootfs, name string, flags int, perm uint32) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(perm),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	if flags&unix.O_CREAT == 0 {
		how.Mode = 0
	}
	rel := strings.TrimLeft(name, "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err == unix.EXDEV {
			// RESOLVE_NO_XDEV: a mount point inside the rootfs is fine to cross.
			how.Resolve &^= unix.RESOLVE_NO_XDEV
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path.Join(rootfs, name), Err: err}
		}
		return os.NewFile(uintptr(fd), path.Join(rootfs, name)), nil
	}
}

// mkdirAllInRoot makes dir (a container path) and its missing parents inside rootfs, mode
// 0755, resolving each step with RESOLVE_IN_ROOT.
func mkdirAllInRoot(rootfs, dir string) error {
	if _, err := resolveInRoot(rootfs, dir, false); err != nil {
		return err
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	cur := "/"
	for _, c := range strings.Split(path.Clean("/"+dir), "/") {
		if c == "" {
			continue
		}
		next := path.Join(cur, c)
		f, err := openat2(root, rootfs, next, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			f.Close()
			cur = next
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		parent, err := openat2(root, rootfs, cur, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(int(parent.Fd()), c, 0o755)
		parent.Close()
		if err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: path.Join(rootfs, next), Err: err}
		}
		cur = next
	}
	return nil
}

// writeFileInRoot writes data to name inside rootfs (creating or truncating it) with mode
// perm, never leaving the rootfs.
func writeFileInRoot(rootfs, name string, data []byte, perm uint32) error {
	f, err := OpenInRoot(rootfs, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOCTTY, perm)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", f.Name())
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Chmod(fs.FileMode(perm))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// IsSystemdInit tells whether cmd0, the container's command, is systemd: it is resolved inside
// rootfs (absolute, or through /usr/sbin:/usr/bin:/sbin:/bin), following symlinks without ever
// leaving the rootfs, and the final file must be named systemd in a lib/systemd directory
// (/sbin/init -> /lib/systemd/systemd). busybox's init is not.
func IsSystemdInit(rootfs, cmd0 string) bool {
	if cmd0 == "" || rootfs == "" {
		return false
	}
	var candidates []string
	if strings.Contains(cmd0, "/") {
		candidates = []string{path.Join("/", cmd0)}
	} else {
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			candidates = append(candidates, path.Join(d, cmd0))
		}
	}
	for _, c := range candidates {
		r, err := resolveInRoot(rootfs, c, true)
		if err != nil {
			continue
		}
		fi, err := os.Lstat(path.Join(rootfs, r))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		return path.Base(r) == "systemd" && strings.HasSuffix(path.Dir(r), "lib/systemd")
	}
	return false
}
