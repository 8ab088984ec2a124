package overlay

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// IDMap shifts ids for a user-namespaced container: id 0..Size-1 inside is UID.. (GID..)
// on the host.
type IDMap struct{ UID, GID, Size uint32 }

// usernsFD opens a user namespace with m's mapping: a child is forked into a new user
// namespace and stopped at its exec (ptrace), its namespace opened, the child killed. It
// never runs anything.
func usernsFD(m IDMap) (int, error) {
	pid, err := syscall.ForkExec("/proc/self/exe", []string{"isulad-userns"}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.UID), Size: int(m.Size)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.GID), Size: int(m.Size)}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}})
	if err != nil {
		return -1, fmt.Errorf("making a user namespace for the id mapping: %w", err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	}()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the id mapping's user namespace: %w", err)
	}
	return fd, nil
}

// idmappedLowers returns a detached, id-mapped clone of each layer directory (as
// /proc/self/fd paths for lowerdir+) and a function that closes them.
func idmappedLowers(lowers []string, m IDMap) ([]string, func(), error) {
	ns, err := usernsFD(m)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(ns)
	var fds []int
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	var paths []string
	for _, l := range lowers {
		fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("cloning layer %s: %w", l, err)
		}
		fds = append(fds, fd)
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns)}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("id-mapping layer %s (the filesystem of the graph directory must support idmapped mounts): %w", l, err)
		}
		paths = append(paths, fmt.Sprintf("/proc/self/fd/%d", fd))
	}
	return paths, closeAll, nil
}

// MountMapped is Mount for a user-namespaced container: the layers are id-mapped
// (0 -> m.UID), so the container's root owns the image's files without a copy or a chown;
// the upper directory is owned by the mapped root.
func MountMapped(target, upper, work string, lowers []string, m IDMap) error {
	if err := os.Lchown(upper, int(m.UID), int(m.GID)); err != nil {
		return err
	}
	paths, closeAll, err := idmappedLowers(lowers, m)
	if err != nil {
		return fmt.Errorf("mounting the container's overlay rootfs at %s: %w", target, err)
	}
	defer closeAll()
	if err := mountNew(target, upper, work, paths); err != nil {
		return fmt.Errorf("mounting the container's overlay rootfs at %s with id-mapped layers: %w", target, err)
	}
	return nil
}
