package hostchannel

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
)

// Resize changes the size of owner's channel ch to size bytes. A mounted channel is resized
// live: its backing tmpfs (in the engine's root-only directory) is remounted through a
// descriptor of its root, with nr_inodes scaled as at mount, so host and container see the new size at once and keep
// every file. Shrinking below the bytes in use is refused. The record keeps the new size, so
// a later mount (after a reboot) uses it. It returns the resized channel.
func (m *Manager) Resize(owner string, ch types.HostChannel, size int64) (types.HostChannel, error) {
	if err := checkSizeRange(size); err != nil {
		return ch, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ownedRecord(owner, ch)
	if err != nil {
		return ch, err
	}
	hp := r.Channel.PathOnHost
	fd, mounted, err := m.openBacking(hp, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return ch, err
	}
	if mounted {
		defer unix.Close(fd)
		var st unix.Statfs_t
		if err := unix.Fstatfs(fd, &st); err != nil {
			return ch, fmt.Errorf("host channel: statfs %q: %w", hp, err)
		}
		if used := int64(st.Blocks-st.Bfree) * int64(st.Bsize); size < used {
			return ch, errorf(ErrInvalid, "host path %q: cannot shrink the channel to %d bytes: %d bytes are in use (free some first)", hp, size, used)
		}
		// MS_REMOUNT keeps the mount (and its ID); the flags must be given again, or the
		// remount would drop them.
		data := "size=" + strconv.FormatInt(size, 10) + ",nr_inodes=" + strconv.FormatInt(nrInodes(size), 10)
		if err := unix.Mount("", fdPath(fd), "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data); err != nil {
			return ch, fmt.Errorf("host channel: resizing the tmpfs of %q to %d bytes: %w", hp, size, err)
		}
	}
	r.Channel.Size = size
	if err := m.saveRecord(r); err != nil {
		return ch, err
	}
	m.log.Info("host channel resized", "container", owner, "host", hp, "size", size, "live", mounted)
	return r.Channel, nil
}
