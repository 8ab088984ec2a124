package hostchannel

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"golang.org/x/sys/unix"
)

// testHookBeforeLeaf, when set by a test, runs after the parents are made and before the
// channel directory is, to inject failures.
var testHookBeforeLeaf func() error

// Create makes the channel directory for container owner. In order: it records the intent
// durably (owner, host path, the parents it will make) with an exclusive create of the
// record keyed by the clean host path, refusing a path that is, lies inside or contains
// another recorded channel of any container; makes the missing parents (0755) and the
// directory (0700) without following symlinks, failing if anything already stands at the
// path; and records the directory's device and inode. On any failure everything it did is
// undone. Nothing is mounted.
func (m *Manager) Create(owner string, ch types.HostChannel) error {
	if owner == "" {
		return errorf(ErrInvalid, "create of %q: empty container id", ch.PathOnHost)
	}
	ch, err := Check(ch)
	if err != nil {
		return err
	}
	hp := ch.PathOnHost
	m.mu.Lock()
	defer m.mu.Unlock()

	_, missing, err := checkHostFS(hp)
	if err != nil {
		return err
	}
	if err := m.conflicts(hp); err != nil {
		return err
	}
	r := &record{Owner: owner, Channel: ch, State: stateCreating}
	for _, p := range missing {
		r.Parents = append(r.Parents, madeDir{Path: p})
	}
	r.Dir.Path = hp
	if err := m.createRecord(r); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if o, _ := m.loadRecord(hp); o != nil {
				return errorf(ErrExists, "host path %q is already the channel of container %s", hp, o.Owner)
			}
			return errorf(ErrExists, "host path %q is already being created as a channel", hp)
		}
		return fmt.Errorf("host channel: recording %q: %w", hp, err)
	}
	if err := m.makeDirs(r); err != nil {
		m.undo(r)
		return err
	}
	r.State = stateCreated
	if err := m.saveRecord(r); err != nil {
		m.undo(r)
		return fmt.Errorf("host channel: recording %q: %w", hp, err)
	}
	m.log.Info("host channel created", "container", owner, "host", hp, "container_path", ch.PathInContainer, "mode", ch.Permissions, "size", ch.Size)
	return nil
}

// undo rolls back a failed create: directories, then the record. Errors are logged.
func (m *Manager) undo(r *record) {
	if err := m.removeDirs(r, true); err != nil {
		m.log.Error("host channel: rollback of create left something behind", "host", r.Channel.PathOnHost, "err", err)
		return // keep the record so that Reconcile retries
	}
	if err := m.deleteRecord(r); err != nil {
		m.log.Error("host channel: rollback of create could not remove the record", "host", r.Channel.PathOnHost, "err", err)
	}
}

// makeDirs walks from "/" without following symlinks and makes exactly the planned parents
// (r.Parents with no inode yet) and the leaf. Parents and leaf get their dev/ino recorded in
// r (the caller saves r). A planned parent that appears meanwhile, or an unplanned missing
// one, is an error (a race with someone else).
func (m *Manager) makeDirs(r *record) error {
	hp := r.Channel.PathOnHost
	planned := map[string]int{}
	for i, p := range r.Parents {
		if p.Ino == 0 {
			planned[p.Path] = i
		}
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { unix.Close(fd) }()
	comps := strings.Split(hp[1:], "/")
	cur := ""
	for i, c := range comps {
		cur += "/" + c
		leaf := i == len(comps)-1
		if leaf {
			if testHookBeforeLeaf != nil {
				if err := testHookBeforeLeaf(); err != nil {
					return err
				}
			}
			if err := unix.Mkdirat(fd, c, 0o700); err != nil {
				if errors.Is(err, unix.EEXIST) {
					return errorf(ErrExists, "host path %q already exists (want a path that does not exist yet; the engine creates it)", hp)
				}
				return fmt.Errorf("host channel: making %q: %w", hp, err)
			}
			r.Dir.Path = hp
			nfd, err := openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return errorf(ErrUnsafe, "host path %q was replaced right after it was made: %v", hp, err)
			}
			err = unix.Fchmod(nfd, 0o700)
			if err == nil {
				r.Dir.Dev, r.Dir.Ino, err = fstat(nfd)
			}
			unix.Close(nfd)
			if err != nil {
				return fmt.Errorf("host channel: making %q: %w", hp, err)
			}
			return nil
		}
		idx, isPlanned := planned[cur]
		nfd, err := openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err == nil && isPlanned:
			unix.Close(nfd)
			return errorf(ErrExists, "host path %q: parent %q appeared while the engine was making it (retry)", hp, cur)
		case err == nil:
			unix.Close(fd)
			fd = nfd
			continue
		case errors.Is(err, unix.ENOENT) && isPlanned:
		case errors.Is(err, unix.ENOENT):
			return errorf(ErrExists, "host path %q: parent %q disappeared while the engine was making the channel (retry)", hp, cur)
		case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
			return errorf(ErrInvalid, "host path %q: parent %q is a symbolic link or not a directory (want a path below real directories)", hp, cur)
		default:
			return fmt.Errorf("host channel: opening %q: %w", cur, err)
		}
		if err := unix.Mkdirat(fd, c, 0o755); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return errorf(ErrExists, "host path %q: parent %q appeared while the engine was making it (retry)", hp, cur)
			}
			return fmt.Errorf("host channel: making parent %q: %w", cur, err)
		}
		dfd, err := openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return errorf(ErrUnsafe, "host path %q: parent %q was replaced right after it was made: %v", hp, cur, err)
		}
		var dev, ino uint64
		err = unix.Fchmod(dfd, 0o755)
		if err == nil {
			dev, ino, err = fstat(dfd)
		}
		if err != nil {
			unix.Close(dfd)
			return fmt.Errorf("host channel: making parent %q: %w", cur, err)
		}
		r.Parents[idx].Dev, r.Parents[idx].Ino = dev, ino
		unix.Close(fd)
		fd = dfd
	}
	return nil
}

// recreate makes the channel directory again after it vanished (host reboot with the host
// path on a tmpfs), by the create rules. Parents it makes now are added to the record.
func (m *Manager) recreate(r *record) error {
	hp := r.Channel.PathOnHost
	_, missing, err := checkHostFS(hp)
	if err != nil {
		return err
	}
	isMissing := map[string]bool{}
	for _, p := range missing {
		isMissing[p] = true
	}
	var parents []madeDir
	for _, p := range r.Parents { // parents made before that still stand keep their identity
		if !isMissing[p.Path] {
			parents = append(parents, p)
		}
	}
	for _, p := range missing {
		parents = append(parents, madeDir{Path: p})
	}
	sort.Slice(parents, func(i, j int) bool { return len(parents[i].Path) < len(parents[j].Path) })
	r.Parents, r.Dir, r.State = parents, madeDir{Path: hp}, stateCreating
	if err := m.saveRecord(r); err != nil {
		return err
	}
	if err := m.makeDirs(r); err != nil {
		_ = m.removeDirs(r, true)
		return err
	}
	r.State = stateCreated
	if err := m.saveRecord(r); err != nil {
		return err
	}
	m.log.Info("host channel directory made again (it was gone)", "container", r.Owner, "host", hp)
	return nil
}
