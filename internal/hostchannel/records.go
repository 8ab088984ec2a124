package hostchannel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
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

// record is the durable state of one channel: one JSON file per channel in the record
// directory, named after the SHA-256 of the clean host path.
type record struct {
	Owner   string            `json:"Owner"`
	Channel types.HostChannel `json:"Channel"`
	State   string            `json:"State"`
	Parents []madeDir         `json:"Parents"` // parents made for the channel, root first
	Dir     madeDir           `json:"Dir"`     // the channel directory itself
	MountID int               `json:"MountID"` // mount ID of the bind on the host path, for the log (mounts are found by their tmpfs, see mount.go)

	file string // record file name
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
	return atomicfile.SyncDir(m.dir)
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
	return atomicfile.SyncDir(m.dir)
}

func (m *Manager) deleteRecord(r *record) error {
	if err := os.Remove(filepath.Join(m.dir, r.file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(m.dir)
}

// readRecord reads one record. The record directory is root's (NewManager checks it); as a
// second line of defence a record file must be a regular file of the daemon's user that no
// one else can write, or it is refused as forged.
func (m *Manager) readRecord(name string) (*record, error) {
	f, err := os.OpenFile(filepath.Join(m.dir, name), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("host channel: record %s is not a file of the daemon's own (uid %d, mode %o); ignoring it", name, st.Uid, st.Mode)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
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
