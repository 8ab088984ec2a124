package hostchannel

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A channel's tmpfs is mounted twice in the host's mount namespace:
//
//   - its backing mount, at <mount dir>/<name>: a directory only root can reach, so nothing
//     there can be swapped by another user. The runtime binds the channel into the container
//     from here (SpecMounts), by path.
//   - a bind of it on the host path, made with open_tree(OPEN_TREE_CLONE) and
//     move_mount(MOVE_MOUNT_T_EMPTY_PATH) onto a descriptor of the directory that create made
//     (checked by device and inode), never through the path string.
//
// A user who owns an ancestor of the host path can rename it or swap it for a symlink at any
// time; that moves or hides the bind on the host side, but can neither redirect what the
// container gets nor what the engine mounts on. The channel's mounts are found through the
// backing mount, whose place proves it is the engine's: every other mount of the same tmpfs
// (same device) in this namespace is a bind of the channel, wherever it is now.

// minInodes is the least nr_inodes of a channel's tmpfs; see nrInodes.
const minInodes = 1024

// nrInodes bounds the inodes of a channel's tmpfs in proportion to its size: one per page,
// at least minInodes. An inode with its dentry costs the kernel about 1 KiB that the size
// limit does not count, so a channel can pin at most about a quarter of its size (plus
// 1 MiB) in kernel memory on top of its size.
func nrInodes(size int64) int64 {
	return max(size/int64(pageSize()), minInodes)
}

// SpecMounts returns the OCI bind mounts of the channels: source the channel's backing mount
// (a path only root controls; see above), destination the container path, options
// rbind,rprivate,nosuid,nodev,noexec and ro or rw.
func (m *Manager) SpecMounts(chs []types.HostChannel) []specs.Mount {
	out := make([]specs.Mount, 0, len(chs))
	for _, ch := range chs {
		mode := ch.Permissions
		if mode != "ro" {
			mode = "rw"
		}
		out = append(out, specs.Mount{
			Destination: ch.PathInContainer,
			Type:        "bind",
			Source:      m.backingPath(filepath.Clean(ch.PathOnHost)),
			Options:     []string{"rbind", "rprivate", "nosuid", "nodev", "noexec", mode},
		})
	}
	return out
}

// backingPath is where the channel of host path hp has its backing mount.
func (m *Manager) backingPath(hp string) string {
	return filepath.Join(m.mountDir, strings.TrimSuffix(recordName(hp), ".json"))
}

// channelMounts is what of one channel is mounted in this mount namespace.
type channelMounts struct {
	backing *mountinfo.Info   // the tmpfs on the backing directory; nil when not mounted
	binds   []*mountinfo.Info // every other mount of that tmpfs: on the host path, or wherever it was moved
	all     []*mountinfo.Info
}

// mountsOf reads /proc/self/mountinfo for the channel whose backing mount is at bp.
func mountsOf(bp string) (channelMounts, error) {
	all, err := mountinfo.GetMounts(nil)
	if err != nil {
		return channelMounts{}, err
	}
	cm := channelMounts{all: all}
	for _, x := range all {
		if x.Mountpoint == bp && x.FSType == "tmpfs" {
			cm.backing = x
			break // the lowest one: mounted by the engine on its own directory
		}
	}
	if cm.backing == nil {
		return cm, nil
	}
	for _, x := range all {
		if x.ID != cm.backing.ID && x.Major == cm.backing.Major && x.Minor == cm.backing.Minor {
			cm.binds = append(cm.binds, x)
		}
	}
	return cm, nil
}

// ours reports whether mi is a mount of the channel.
func (cm channelMounts) ours(mi *mountinfo.Info) bool {
	return cm.backing != nil && mi.Major == cm.backing.Major && mi.Minor == cm.backing.Minor
}

// foreignAt returns the first mount at p that is not the channel's, or nil.
func (cm channelMounts) foreignAt(p string) *mountinfo.Info {
	for _, x := range cm.all {
		if x.Mountpoint == p && !cm.ours(x) {
			return x
		}
	}
	return nil
}

// openMountRoot opens the root of mount mi through its mount point without following any
// symbolic link (openat2 RESOLVE_NO_SYMLINKS), and checks that the descriptor is on mi: a
// path renamed or swapped meanwhile, or a mount stacked over mi, is an ErrBusy.
func openMountRoot(mi *mountinfo.Info, flags int) (int, error) {
	fd, err := openNoFollow(mi.Mountpoint, flags)
	if err != nil {
		return -1, errorf(ErrBusy, "cannot open %q without following symbolic links: %v", mi.Mountpoint, err)
	}
	if id, err := mountIDOf(fd); err != nil || id != mi.ID {
		unix.Close(fd)
		return -1, errorf(ErrBusy, "%q does not lead to the channel's mount %d (something is mounted over it, or it moved)", mi.Mountpoint, mi.ID)
	}
	return fd, nil
}

// unmount lazily unmounts mi through a verified descriptor of its root.
func unmount(mi *mountinfo.Info) error {
	fd, err := openMountRoot(mi, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Unmount(fdPath(fd), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("host channel: unmounting %q: %w", mi.Mountpoint, err)
	}
	return nil
}

// openChannelDir opens the channel directory (O_PATH, no symlink followed) and checks it is
// the one create made. A directory that is gone (host path on a tmpfs, host rebooted) is
// made again by the create rules first.
func (m *Manager) openChannelDir(r *record) (int, error) {
	hp := r.Channel.PathOnHost
	fd, err := openNoFollow(hp, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		if err := m.recreate(r); err != nil {
			return -1, err
		}
		fd, err = openNoFollow(hp, unix.O_PATH|unix.O_DIRECTORY)
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, errorf(ErrUnsafe, "host path %q is no longer the directory the engine made (a symbolic link or a file is in its way); refusing to mount", hp)
	}
	if err != nil {
		return -1, fmt.Errorf("host channel: opening %q: %w", hp, err)
	}
	dev, ino, err := fstat(fd)
	if err == nil && (dev != r.Dir.Dev || ino != r.Dir.Ino) {
		err = errorf(ErrUnsafe, "host path %q is no longer the directory the engine made (device/inode changed); refusing to mount", hp)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// mountBacking mounts a fresh tmpfs (new mount API: fsopen, fsmount, move_mount) on the
// backing directory of hp, which it makes (0700) in the mount directory. It returns a
// descriptor of the new mount's root.
func (m *Manager) mountBacking(hp string, size int64) (int, error) {
	dfd, err := openNoFollow(m.mountDir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("host channel: opening %q: %w", m.mountDir, err)
	}
	defer unix.Close(dfd)
	name := filepath.Base(m.backingPath(hp))
	if err := unix.Mkdirat(dfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("host channel: making the backing directory of %q: %w", hp, err)
	}
	bfd, err := openat(dfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("host channel: opening the backing directory of %q: %w", hp, err)
	}
	defer unix.Close(bfd)
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("host channel: fsopen tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	for _, kv := range [][2]string{
		{"source", "tmpfs"},
		{"size", strconv.FormatInt(size, 10)},
		{"nr_inodes", strconv.FormatInt(nrInodes(size), 10)},
		{"mode", "1777"},
	} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return -1, fmt.Errorf("host channel: tmpfs option %s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("host channel: creating the tmpfs of %q: %w", hp, err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("host channel: fsmount the tmpfs of %q: %w", hp, err)
	}
	if err := unix.MoveMount(mfd, "", bfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(mfd) // still detached: closing it frees the tmpfs
		return -1, fmt.Errorf("host channel: attaching the tmpfs of %q: %w", hp, err)
	}
	return mfd, nil
}

// removeBackingDir removes an (unmounted, empty) backing directory of the mount directory.
func (m *Manager) removeBackingDir(bp string) error {
	dfd, err := openNoFollow(m.mountDir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, filepath.Base(bp), unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// testHookAfterBacking, when set by a test, runs after the backing mount is made and before
// the bind onto the host path, to inject failures.
var testHookAfterBacking func() error

// Mount mounts the channel for container owner at start: the backing tmpfs (nosuid, nodev,
// noexec, mode=1777, size=<bytes>, nr_inodes in proportion) unless it is mounted already,
// and its bind on the host directory unless that is there already. mounted tells whether
// this call mounted the tmpfs (then Unmount undoes it for a failed start). On any failure
// nothing this call mounted stays mounted.
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
	bp := m.backingPath(hp)
	cm, err := mountsOf(bp)
	if err != nil {
		return false, err
	}
	if x := cm.foreignAt(hp); x != nil {
		return false, errorf(ErrBusy, "host path %q: a %s filesystem that is not the channel's is mounted there (unmount it, then retry)", hp, x.FSType)
	}
	for _, b := range cm.binds {
		if b.Mountpoint == hp {
			fd, err := openMountRoot(b, unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return false, fmt.Errorf("host channel: host path %q: %w", hp, err)
			}
			unix.Close(fd)
			return false, nil // mounted already (copies propagated elsewhere are fine)
		}
	}
	if len(cm.binds) > 0 {
		return false, errorf(ErrBusy, "host path %q: the channel's tmpfs is mounted at %q instead (was a parent directory renamed?); rename it back, or rm the container", hp, cm.binds[0].Mountpoint)
	}

	dfd, err := m.openChannelDir(r)
	if err != nil {
		return false, err
	}
	defer unix.Close(dfd)
	var bfd int
	if cm.backing != nil { // the bind went missing (daemon killed between the two mounts)
		if bfd, err = openMountRoot(cm.backing, unix.O_PATH|unix.O_DIRECTORY); err != nil {
			return false, fmt.Errorf("host channel: backing mount of %q: %w", hp, err)
		}
	} else {
		if bfd, err = m.mountBacking(hp, r.Channel.Size); err != nil {
			_ = m.removeBackingDir(bp)
			return false, err
		}
		mounted = true
	}
	defer unix.Close(bfd)
	undo := func(err error) (bool, error) {
		if mounted {
			if uerr := unix.Unmount(fdPath(bfd), unix.MNT_DETACH); uerr != nil {
				m.log.Error("host channel: cannot undo the backing mount", "host", hp, "err", uerr)
			} else if uerr := m.removeBackingDir(bp); uerr != nil {
				m.log.Error("host channel: cannot remove the backing directory", "host", hp, "err", uerr)
			}
		}
		return false, err
	}
	if testHookAfterBacking != nil {
		if err := testHookAfterBacking(); err != nil {
			return undo(err)
		}
	}
	tfd, err := unix.OpenTree(bfd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return undo(fmt.Errorf("host channel: open_tree of the tmpfs of %q: %w", hp, err))
	}
	defer unix.Close(tfd)
	if err := unix.MoveMount(tfd, "", dfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return undo(fmt.Errorf("host channel: binding the tmpfs onto %q: %w", hp, err))
	}
	id, err := mountIDOf(tfd)
	if err == nil {
		r.MountID = id
		err = m.saveRecord(r)
	}
	if err != nil {
		_ = unix.Unmount(fdPath(tfd), unix.MNT_DETACH)
		return undo(fmt.Errorf("host channel: recording the mount of %q: %w", hp, err))
	}
	m.log.Info("host channel mounted", "container", owner, "host", hp, "backing", bp, "size", r.Channel.Size, "nr_inodes", nrInodes(r.Channel.Size), "mount_id", id)
	return mounted, nil
}

// unmountAll lazily unmounts every mount of the channel whose backing mount is at bp: the
// binds first (on the host path, or wherever a rename took them), then the backing mount,
// then it removes the backing directory. Only mounts of the tmpfs on the backing directory
// are touched: that place proves they are the engine's. A bind that cannot be reached
// safely (or has something mounted over it) is an ErrBusy, and the backing mount stays.
func (m *Manager) unmountAll(hp string) error {
	return m.unmountBacking(m.backingPath(hp), hp)
}

// unmountBacking is unmountAll by backing path; hp names the channel in messages. It
// unmounts one mount at a time and reads mountinfo again after each: unmounting one bind can
// take others with it (propagation to peers of its parent mount).
func (m *Manager) unmountBacking(bp, hp string) error {
	for range 64 {
		cm, err := mountsOf(bp)
		if err != nil {
			return err
		}
		if cm.backing == nil {
			if err := m.removeBackingDir(bp); err != nil {
				return fmt.Errorf("host channel: removing the backing directory of %q: %w", hp, err)
			}
			return nil
		}
		if len(cm.binds) == 0 {
			if err := unmount(cm.backing); err != nil {
				return fmt.Errorf("host channel: backing mount of %q: %w", hp, err)
			}
			m.log.Info("host channel backing mount unmounted", "host", hp, "backing", bp, "mount_id", cm.backing.ID)
			continue
		}
		b := cm.binds[len(cm.binds)-1] // the newest first: it may sit inside an older one
		if err := unmount(b); err != nil {
			return errorf(ErrBusy, "host path %q: the channel's tmpfs is mounted at %q and cannot be unmounted there safely (%v); unmount it, then retry", hp, b.Mountpoint, strings.TrimPrefix(err.Error(), "host channel: "))
		}
		m.log.Info("host channel unmounted", "host", hp, "at", b.Mountpoint, "mount_id", b.ID)
	}
	return errorf(ErrBusy, "host path %q: the channel's tmpfs keeps being mounted again (want it left alone while the engine unmounts it)", hp)
}

// Unmount rolls back the Mount of a failed start: it unmounts the channel's tmpfs (its bind
// and its backing mount). The directory and the record stay.
func (m *Manager) Unmount(owner string, ch types.HostChannel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ownedRecord(owner, ch)
	if err != nil {
		return err
	}
	return m.unmountAll(r.Channel.PathOnHost)
}

// openBacking opens the root of the channel's backing mount (flags plus O_NOFOLLOW). ok is
// false when it is not mounted.
func (m *Manager) openBacking(hp string, flags int) (fd int, ok bool, err error) {
	cm, err := mountsOf(m.backingPath(hp))
	if err != nil || cm.backing == nil {
		return -1, false, err
	}
	fd, err = openMountRoot(cm.backing, flags)
	return fd, true, err
}

// Chown changes the owner of the mounted tmpfs root (for --user-remap), through a
// descriptor of its backing mount. The channel must be mounted.
func (m *Manager) Chown(owner string, ch types.HostChannel, uid, gid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ownedRecord(owner, ch)
	if err != nil {
		return err
	}
	fd, ok, err := m.openBacking(r.Channel.PathOnHost, unix.O_RDONLY|unix.O_DIRECTORY)
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
// used in it (statfs of its backing mount).
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
	fd, ok, err := m.openBacking(hp, unix.O_PATH|unix.O_DIRECTORY)
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
