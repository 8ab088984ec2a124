package hostchannel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// openNoFollow opens a clean absolute path component by component from "/" without following
// any symlink: every parent is opened O_PATH|O_NOFOLLOW|O_DIRECTORY, the leaf with flags plus
// O_NOFOLLOW. A symlink anywhere gives ELOOP or ENOTDIR. Mount points are crossed as usual.
func openNoFollow(p string, flags int) (int, error) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return -1, fmt.Errorf("openNoFollow: %q is not a clean absolute path", p)
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if p == "/" {
		if flags&unix.O_PATH != 0 {
			return fd, nil
		}
		unix.Close(fd)
		return unix.Open("/", flags|unix.O_CLOEXEC, 0)
	}
	comps := strings.Split(p[1:], "/")
	for i, c := range comps {
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(comps)-1 {
			fl = flags | unix.O_NOFOLLOW | unix.O_CLOEXEC
		}
		nfd, err := openat(fd, c, fl, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = nfd
	}
	return fd, nil
}

func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func fstat(fd int) (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), st.Ino, nil
}

// mountIDOf returns the mount ID of the mount an fd lives on.
func mountIDOf(fd int) (int, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, err
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, fmt.Errorf("statx: kernel gives no mount ID")
	}
	return int(stx.Mnt_id), nil
}

func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// mountsAt returns the mounts whose mount point is exactly p, in mountinfo order (octal
// escapes are decoded by the mountinfo package, so paths with spaces work).
func mountsAt(p string) ([]*mountinfo.Info, error) {
	return mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.Mountpoint != p, false
	})
}

func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// syncDir fsyncs a directory so that entries made or removed in it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
