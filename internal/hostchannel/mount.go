package hostchannel

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/isulad-go/isulad/api/types"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ourMount finds the channel's own tmpfs: in /proc/self/mountinfo, a tmpfs at exactly the
// host path whose mount ID is the recorded one, in this boot. top reports whether nothing
// else is mounted over it.
func (m *Manager) ourMount(r *record) (mi *mountinfo.Info, top bool, err error) {
	if r.MountID == 0 {
		return nil, false, nil
	}
	boot, err := m.bootID()
	if err != nil {
		return nil, false, err
	}
	if boot != r.BootID {
		return nil, false, nil
	}
	ms, err := mountsAt(r.Channel.PathOnHost)
	if err != nil {
		return nil, false, err
	}
	for _, x := range ms {
		if x.ID == r.MountID && x.FSType == "tmpfs" {
			mi = x
		}
	}
	if mi == nil {
		return nil, false, nil
	}
	for _, x := range ms {
		if x.Parent == mi.ID {
			return mi, false, nil
		}
	}
	return mi, true, nil
}

// adoptPending turns a mount recorded as pending (the daemon died between mount and record)
// into the recorded mount, when it can be recognised.
func (m *Manager) adoptPending(r *record) error {
	if r.Pending == nil {
		return nil
	}
	boot, err := m.bootID()
	if err != nil {
		return err
	}
	p := r.Pending
	r.Pending = nil
	if p.BootID == boot {
		ms, err := mountsAt(r.Channel.PathOnHost)
		if err != nil {
			return err
		}
		for _, x := range ms {
			if x.FSType == "tmpfs" && x.Parent == p.ParentMountID {
				r.MountID, r.BootID = x.ID, boot
				m.log.Info("host channel: adopted a mount recorded as pending", "host", r.Channel.PathOnHost, "mount_id", x.ID)
				break
			}
		}
	}
	return m.saveRecord(r)
}

// Mount mounts the channel's tmpfs for container owner at start, unless it is mounted
// already (then it is a no-op); mounted tells whether this call mounted it. The directory
// is opened without following symlinks and must be the one made at create (device and
// inode); the tmpfs is mounted through /proc/self/fd/N with nosuid,nodev,noexec and
// mode=1777,size=<bytes>, and its mount ID and the boot ID are recorded. A directory that is gone (host path on a tmpfs, host rebooted) is
// made again by the create rules first.
func (m *Manager) Mount(owner string, ch types.HostChannel) (mounted bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ownedRecord(owner, ch)
	if err != nil {
		return false, err
	}
	hp := r.Channel.PathOnHost
	if r.State == stateRemoving {
		return false, errorf(ErrNotFound, "host path %q is being removed (want a channel that exists)", hp)
	}
	if err := m.adoptPending(r); err != nil {
		return false, err
	}
	mi, top, err := m.ourMount(r)
	if err != nil {
		return false, err
	}
	if mi != nil {
		if !top {
			return false, errorf(ErrBusy, "host path %q: something else is mounted over the channel's tmpfs (unmount it, then retry)", hp)
		}
		return false, nil
	}
	if ms, err := mountsAt(hp); err != nil {
		return false, err
	} else if len(ms) > 0 {
		return false, errorf(ErrBusy, "host path %q: a %s filesystem that is not the channel's is mounted there (unmount it, then retry)", hp, ms[len(ms)-1].FSType)
	}

	fd, err := openNoFollow(hp, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		if err := m.recreate(r); err != nil {
			return false, err
		}
		fd, err = openNoFollow(hp, unix.O_PATH|unix.O_DIRECTORY)
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return false, errorf(ErrUnsafe, "host path %q is no longer the directory the engine made (a symbolic link or a file is in its way); refusing to mount", hp)
	}
	if err != nil {
		return false, fmt.Errorf("host channel: opening %q: %w", hp, err)
	}
	defer unix.Close(fd)
	dev, ino, err := fstat(fd)
	if err != nil {
		return false, err
	}
	if dev != r.Dir.Dev || ino != r.Dir.Ino {
		return false, errorf(ErrUnsafe, "host path %q is no longer the directory the engine made (device/inode changed); refusing to mount", hp)
	}
	parentID, err := mountIDOf(fd)
	if err != nil {
		return false, err
	}
	boot, err := m.bootID()
	if err != nil {
		return false, err
	}
	r.Pending = &pendingMount{BootID: boot, ParentMountID: parentID}
	if err := m.saveRecord(r); err != nil {
		return false, err
	}
	data := "mode=1777,size=" + strconv.FormatInt(r.Channel.Size, 10)
	if err := unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data); err != nil {
		r.Pending = nil
		_ = m.saveRecord(r)
		return false, fmt.Errorf("host channel: mounting tmpfs on %q: %w", hp, err)
	}
	// Identify the new mount: the path now leads onto it; it must be a tmpfs at hp right on
	// top of the directory's mount.
	mfd, err := openNoFollow(hp, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false, fmt.Errorf("host channel: opening %q after mounting: %w", hp, err)
	}
	defer unix.Close(mfd)
	id, err := mountIDOf(mfd)
	if err != nil {
		return false, err
	}
	ok := false
	if ms, err := mountsAt(hp); err == nil {
		for _, x := range ms {
			ok = ok || (x.ID == id && x.Parent == parentID && x.FSType == "tmpfs")
		}
	}
	if !ok {
		return false, errorf(ErrUnsafe, "host path %q: cannot identify the tmpfs just mounted (mount %d); left for reconciliation", hp, id)
	}
	r.MountID, r.BootID, r.Pending = id, boot, nil
	if err := m.saveRecord(r); err != nil {
		_ = unix.Unmount(fdPath(mfd), unix.MNT_DETACH)
		return false, fmt.Errorf("host channel: recording the mount of %q: %w", hp, err)
	}
	m.log.Info("host channel mounted", "container", owner, "host", hp, "size", r.Channel.Size, "mount_id", id)
	return true, nil
}

// unmountOurs lazily unmounts the channel's own tmpfs, through a descriptor of its root, if
// it is mounted. Someone else's mount on the path is never touched; one stacked over ours
// is an ErrBusy.
func (m *Manager) unmountOurs(r *record) error {
	if err := m.adoptPending(r); err != nil {
		return err
	}
	hp := r.Channel.PathOnHost
	mi, top, err := m.ourMount(r)
	if err != nil {
		return err
	}
	if mi == nil {
		if r.MountID != 0 {
			r.MountID, r.BootID = 0, ""
			return m.saveRecord(r)
		}
		return nil
	}
	if !top {
		return errorf(ErrBusy, "host path %q: something else is mounted over the channel's tmpfs (unmount it, then retry)", hp)
	}
	fd, err := openNoFollow(hp, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("host channel: opening %q: %w", hp, err)
	}
	defer unix.Close(fd)
	if id, err := mountIDOf(fd); err != nil || id != r.MountID {
		return errorf(ErrBusy, "host path %q does not lead to the channel's tmpfs (mount %d); not unmounting", hp, r.MountID)
	}
	if err := unix.Unmount(fdPath(fd), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("host channel: unmounting %q: %w", hp, err)
	}
	m.log.Info("host channel unmounted", "container", r.Owner, "host", hp, "mount_id", r.MountID)
	r.MountID, r.BootID = 0, ""
	return m.saveRecord(r)
}

// Unmount rolls back the Mount of a failed start: it unmounts the channel's tmpfs only if it
// is our mount. The directory and the record stay.
func (m *Manager) Unmount(owner string, ch types.HostChannel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ownedRecord(owner, ch)
	if err != nil {
		return err
	}
	return m.unmountOurs(r)
}

// openOurMount opens the root of the channel's tmpfs (flags plus O_NOFOLLOW), checking that
// the path leads to the recorded mount. ok is false when it is not mounted.
func (m *Manager) openOurMount(r *record, flags int) (fd int, ok bool, err error) {
	mi, top, err := m.ourMount(r)
	if err != nil || mi == nil {
		return -1, false, err
	}
	if !top {
		return -1, true, errorf(ErrBusy, "host path %q: something else is mounted over the channel's tmpfs", r.Channel.PathOnHost)
	}
	fd, err = openNoFollow(r.Channel.PathOnHost, flags)
	if err != nil {
		return -1, true, err
	}
	if id, err := mountIDOf(fd); err != nil || id != r.MountID {
		unix.Close(fd)
		return -1, true, errorf(ErrBusy, "host path %q does not lead to the channel's tmpfs", r.Channel.PathOnHost)
	}
	return fd, true, nil
}

// Chown changes the owner of the mounted tmpfs root (for --user-remap), through a
// descriptor of it. The channel must be mounted.
func (m *Manager) Chown(owner string, ch types.HostChannel, uid, gid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ownedRecord(owner, ch)
	if err != nil {
		return err
	}
	fd, ok, err := m.openOurMount(r, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ErrNotFound, "host path %q: the channel is not mounted (want Mount first)", r.Channel.PathOnHost)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("host channel: chown %q to %d:%d: %w", r.Channel.PathOnHost, uid, gid, err)
	}
	return nil
}

// Status reports, live, whether the channel's own tmpfs is mounted and how many bytes are
// used in it (statfs of the host path, only when it is our mount).
func (m *Manager) Status(ch types.HostChannel) (mounted bool, used int64) {
	hp, err := checkHostPath(ch.PathOnHost)
	if err != nil {
		return false, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.loadRecord(hp)
	if err != nil || r == nil {
		return false, 0
	}
	fd, ok, err := m.openOurMount(r, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil || !ok {
		return ok, 0
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return true, 0
	}
	return true, int64(st.Blocks-st.Bfree) * int64(st.Bsize)
}
