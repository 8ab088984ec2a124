package hostchannel

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/statedir"
)

// Manager creates, mounts and removes host channels and keeps a durable record of each.
// Its methods are safe for concurrent use. Several Managers (or daemons) on one record
// directory still get "exactly one create per host path" from the file system.
type Manager struct {
	dir      string // records
	mountDir string // backing mounts of the channels' tmpfs; only root can reach it
	log      *slog.Logger
	mu       sync.Mutex
}

// NewManager opens (making them if needed, mode 0700) the record directory, e.g.
// <graph>/hostchannels, and the directory of the channels' backing mounts, e.g.
// <state>/hostchannels. Both must be root's and unwritable by anyone else, and so must
// every ancestor of the mount directory be (sticky ancestors such as /tmp excepted): the
// runtime binds a channel into its container from there, by path. A nil logger means
// slog.Default().
func NewManager(recordDir, mountDir string, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	for _, d := range []string{recordDir, mountDir} {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("host channel: directory %q must be absolute: %w", d, ErrInvalid)
		}
		if err := statedir.Ensure(d); err != nil {
			return nil, fmt.Errorf("host channel: %w", err)
		}
	}
	real, err := statedir.Resolve(mountDir)
	if err != nil {
		return nil, fmt.Errorf("host channel: %w", err)
	}
	return &Manager{dir: filepath.Clean(recordDir), mountDir: real, log: log}, nil
}

// ownedRecord loads the record of ch's host path and checks its owner.
func (m *Manager) ownedRecord(owner string, ch types.HostChannel) (*record, error) {
	hp, err := checkHostPath(ch.PathOnHost)
	if err != nil {
		return nil, err
	}
	r, err := m.loadRecord(hp)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errorf(ErrNotFound, "host path %q is not a channel the engine created (no record; want a channel made by create)", hp)
	}
	if r.Owner != owner {
		return nil, errorf(ErrNotFound, "host path %q is the channel of container %s, not of %s", hp, r.Owner, owner)
	}
	return r, nil
}

// Conflicts reports whether ch's host path is, lies inside or contains the recorded channel
// of any container (the error names it). Create does this check itself, under its lock; the
// daemon may call Conflicts first to fail early.
func (m *Manager) Conflicts(owner string, ch types.HostChannel) error {
	hp, err := checkHostPath(ch.PathOnHost)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conflicts(hp)
}

// RootfsConflicts reports whether a new container's rootfs (a clean absolute path) contains
// or lies inside the recorded channel of any container: the channel's world-writable tmpfs
// would appear in the rootfs, or the rootfs in the channel.
func (m *Manager) RootfsConflicts(rootfs string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := m.allRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if o := r.Channel.PathOnHost; within(o, rootfs) || within(rootfs, o) {
			return errorf(ErrInvalid, "rootfs %q and the channel %q of container %s lie inside one another (want a rootfs apart from every host channel)", rootfs, o, r.Owner)
		}
	}
	return nil
}

func (m *Manager) conflicts(hp string) error {
	recs, err := m.allRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		o := r.Channel.PathOnHost
		switch {
		case o == hp:
			return errorf(ErrExists, "host path %q is already the channel of container %s", hp, r.Owner)
		case within(hp, o):
			return errorf(ErrExists, "host path %q lies inside the channel of container %s (%q)", hp, r.Owner, o)
		case within(o, hp):
			return errorf(ErrExists, "host path %q contains the channel of container %s (%q)", hp, r.Owner, o)
		}
	}
	return nil
}

// Owners returns the recorded channels by owner (container id).
func (m *Manager) Owners() map[string][]types.HostChannel {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := m.allRecords()
	out := map[string][]types.HostChannel{}
	if err != nil {
		m.log.Error("host channel: cannot list records", "err", err)
		return out
	}
	for _, r := range recs {
		out[r.Owner] = append(out[r.Owner], r.Channel)
	}
	for _, chs := range out {
		sort.Slice(chs, func(i, j int) bool { return chs[i].PathOnHost < chs[j].PathOnHost })
	}
	return out
}
