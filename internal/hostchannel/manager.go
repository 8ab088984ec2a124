package hostchannel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/isulad-go/isulad/api/types"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Record states.
const (
	stateCreating = "creating" // intent recorded, directories may be partly made
	stateCreated  = "created"  // directory made, dev/ino recorded
	stateRemoving = "removing" // removal started; Reconcile finishes it
)

// madeDir is a directory the engine made, identified by device and inode (0/0 while the
// mkdir is pending or when the daemon died before it could record them).
type madeDir struct {
	Path string `json:"Path"`
	Dev  uint64 `json:"Dev"`
	Ino  uint64 `json:"Ino"`
}

// pendingMount is the intent to mount, written before the mount syscall, so that a tmpfs
// mounted by a daemon that died before recording its ID can still be recognised: a tmpfs at
// the host path, on top of ParentMountID, in boot BootID.
type pendingMount struct {
	BootID        string `json:"BootID"`
	ParentMountID int    `json:"ParentMountID"`
}

// record is the durable state of one channel: one JSON file per channel in the record
// directory, named after the SHA-256 of the clean host path.
type record struct {
	Owner   string            `json:"Owner"`
	Channel types.HostChannel `json:"Channel"`
	State   string            `json:"State"`
	Parents []madeDir         `json:"Parents"` // parents made for the channel, root first
	Dir     madeDir           `json:"Dir"`     // the channel directory itself
	MountID int               `json:"MountID"` // mount ID of our tmpfs, valid in boot BootID
	BootID  string            `json:"BootID"`
	Pending *pendingMount     `json:"Pending,omitempty"`

	file string // record file name
}

// testHookBeforeLeaf, when set by a test, runs after the parents are made and before the
// channel directory is, to inject failures.
var testHookBeforeLeaf func() error

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

func recordName(hostPath string) string {
	sum := sha256.Sum256([]byte(hostPath))
	return hex.EncodeToString(sum[:]) + ".json"
}

// writeTemp writes r to a synced temporary file in the record directory.
func (m *Manager) writeTemp(r *record) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(m.dir, ".tmp-")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// createRecord publishes a new, complete record exclusively: link(2) of a synced temporary
// file fails with EEXIST when a record for the host path exists, so of concurrent creates
// of one path exactly one wins, and a record is never seen half-written.
func (m *Manager) createRecord(r *record) error {
	tmp, err := m.writeTemp(r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	r.file = recordName(r.Channel.PathOnHost)
	if err := os.Link(tmp, filepath.Join(m.dir, r.file)); err != nil {
		return err
	}
	return syncDir(m.dir)
}

// saveRecord replaces a record atomically (rename) and durably.
func (m *Manager) saveRecord(r *record) error {
	tmp, err := m.writeTemp(r)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, r.file)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(m.dir)
}

func (m *Manager) deleteRecord(r *record) error {
	if err := os.Remove(filepath.Join(m.dir, r.file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(m.dir)
}

func (m *Manager) readRecord(name string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(m.dir, name))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("host channel: record %s is corrupt: %v", name, err)
	}
	r.file = name
	return &r, nil
}

// loadRecord returns the record of a host path, or nil.
func (m *Manager) loadRecord(hostPath string) (*record, error) {
	r, err := m.readRecord(recordName(hostPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

// allRecords returns every readable record; corrupt ones are logged and skipped.
func (m *Manager) allRecords() ([]*record, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := m.readRecord(e.Name())
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				m.log.Error("host channel: skipping unreadable record", "file", e.Name(), "err", err)
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
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
	r.Parents, r.Dir, r.MountID, r.BootID, r.State = parents, madeDir{Path: hp}, 0, "", stateCreating
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
	if err := m.unmountOurs(r); err != nil {
		return abort(err)
	}
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
			if err := m.adoptPending(r); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := m.remove(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
