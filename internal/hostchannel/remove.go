package hostchannel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"golang.org/x/sys/unix"
)

// Remove deletes the channel at rm (the caller guarantees that no process of the container
// is left): lazy-unmount our tmpfs, remove the directory (checked by device and inode,
// through a parent opened without following symlinks), remove the parents made at create
// while empty, then the record. It is idempotent: without a record it is a no-op.
func (m *Manager) Remove(owner string, ch types.HostChannel) error {
	hp, err := checkHostPath(ch.PathOnHost)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.loadRecord(hp)
	if err != nil || r == nil {
		return err
	}
	if r.Owner != owner {
		return errorf(ErrNotFound, "host path %q is the channel of container %s, not of %s", hp, r.Owner, owner)
	}
	return m.remove(r)
}

func (m *Manager) remove(r *record) error {
	hp := r.Channel.PathOnHost
	if r.State != stateRemoving {
		r.State = stateRemoving
		if err := m.saveRecord(r); err != nil {
			return err
		}
	}
	// Until the directory goes, a failed removal leaves a usable channel (the container is
	// not removed either); only a crash leaves the record "removing" for Reconcile.
	abort := func(err error) error {
		r.State = stateCreated
		if serr := m.saveRecord(r); serr != nil {
			m.log.Error("host channel: cannot record the aborted removal", "host", hp, "err", serr)
		}
		return err
	}
	if err := m.unmountAll(hp); err != nil {
		return abort(err)
	}
	// Whatever is still mounted at the host path is not the channel's: never remove a record
	// (or report a channel removed) while a mount stands there.
	if ms, err := mountsAt(hp); err != nil {
		return abort(err)
	} else if len(ms) > 0 {
		return abort(errorf(ErrBusy, "host path %q: a %s filesystem that is not the channel's is mounted there (unmount it, then retry rm)", hp, ms[len(ms)-1].FSType))
	}
	if err := m.removeDirs(r, false); err != nil {
		return err
	}
	if err := m.deleteRecord(r); err != nil {
		return err
	}
	m.log.Info("host channel removed", "container", r.Owner, "host", hp)
	return nil
}

// removeDir removes one directory the engine made: the parent is opened without following
// symlinks, the entry is checked to be the recorded directory (dev/ino; without them only an
// empty directory is removed, which rmdir enforces) and removed with unlinkat(AT_REMOVEDIR).
// Missing things are fine. gone reports whether nothing is left at the path.
func (m *Manager) removeDir(d madeDir) (gone bool, err error) {
	pfd, err := openNoFollow(filepath.Dir(d.Path), unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		return true, nil
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		m.log.Warn("host channel: parent was replaced by a symlink or file; leaving it", "path", d.Path)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unix.Close(pfd)
	name := filepath.Base(d.Path)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return true, nil
		}
		return false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || (d.Ino != 0 && (uint64(st.Dev) != d.Dev || st.Ino != d.Ino)) {
		m.log.Warn("host channel: path is not the directory the engine made; leaving it", "path", d.Path)
		return false, nil
	}
	if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return true, nil
		case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
			return false, nil
		case errors.Is(err, unix.EBUSY):
			return false, errorf(ErrBusy, "host path %q is a mount point of something else (unmount it, then retry)", d.Path)
		}
		return false, err
	}
	return true, nil
}

// removeDirs removes the channel directory and then, deepest first, the parents made for it
// while they are empty. A non-empty channel directory is left in place with a warning.
// strict (rollback within the same call) skips directories without a recorded inode: they
// were not made by this call (mkdir failed). Without strict (recovery after a crash between
// mkdir and recording the inode) such a directory is removed if it is an empty directory.
func (m *Manager) removeDirs(r *record, strict bool) error {
	if r.Dir.Path != "" && !(strict && r.Dir.Ino == 0) {
		gone, err := m.removeDir(r.Dir)
		if err != nil {
			return err
		}
		if !gone {
			m.log.Warn("host channel: directory not removed (not empty or not ours)", "host", r.Dir.Path)
			return nil
		}
	}
	for i := len(r.Parents) - 1; i >= 0; i-- {
		if strict && r.Parents[i].Ino == 0 {
			continue
		}
		gone, err := m.removeDir(r.Parents[i])
		if err != nil {
			return err
		}
		if !gone {
			break // not empty (or not ours): the ones above are not empty either
		}
	}
	return nil
}

// Reconcile runs at daemon start. Every record whose owner is not a known container is
// undone (our tmpfs unmounted, directory and made parents removed, record removed);
// removals that were under way when the daemon stopped are finished; leftover temporary
// files are deleted. It goes on after an error and returns all of them joined.
func (m *Manager) Reconcile(isKnown func(owner string) bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			_ = os.Remove(filepath.Join(m.dir, e.Name()))
		}
	}
	recs, err := m.allRecords()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		known := isKnown(r.Owner)
		switch {
		case !known:
			m.log.Info("host channel: removing orphan (no such container)", "container", r.Owner, "host", r.Channel.PathOnHost, "state", r.State)
		case r.State == stateRemoving:
			m.log.Info("host channel: finishing an interrupted removal", "container", r.Owner, "host", r.Channel.PathOnHost)
		default:
			if r.State == stateCreating {
				m.log.Warn("host channel: create of a known container was interrupted; start will refuse it, rm removes it", "container", r.Owner, "host", r.Channel.PathOnHost)
			}
			continue
		}
		if err := m.remove(r); err != nil {
			errs = append(errs, err)
		}
	}
	// Backing mounts without a record file (lost with a wiped --graph while --state stayed,
	// say): the mount directory is root's, so what is there is the engine's. A record that
	// cannot be read still keeps its backing mount: it may be a live container's.
	has := map[string]bool{}
	for _, e := range ents {
		has[strings.TrimSuffix(e.Name(), ".json")] = true
	}
	if ents, err := os.ReadDir(m.mountDir); err != nil {
		errs = append(errs, err)
	} else {
		for _, e := range ents {
			if !has[e.Name()] {
				bp := filepath.Join(m.mountDir, e.Name())
				m.log.Info("host channel: removing a backing mount without a record", "backing", bp)
				if err := m.unmountBacking(bp, bp); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
