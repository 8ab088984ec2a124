package hostchannel

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/isulad-go/isulad/api/types"
)

// Manager creates, mounts and removes host channels and keeps a durable record of each.
// Its methods are safe for concurrent use. Several Managers (or daemons) on one record
// directory still get "exactly one create per host path" from the file system.
type Manager struct {
	dir    string
	log    *slog.Logger
	mu     sync.Mutex
	bootID func() (string, error)
}

// NewManager opens (making it if needed, mode 0700) the record directory, e.g.
// <graph>/hostchannels. A nil logger means slog.Default().
func NewManager(recordDir string, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	if !filepath.IsAbs(recordDir) {
		return nil, fmt.Errorf("host channel: record directory %q must be absolute", recordDir)
	}
	if err := os.MkdirAll(recordDir, 0o700); err != nil {
		return nil, fmt.Errorf("host channel: record directory: %w", err)
	}
	return &Manager{dir: filepath.Clean(recordDir), log: log, bootID: readBootID}, nil
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
