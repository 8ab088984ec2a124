package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/errdefs"
)

const (
	recordFile = "container.json"
	// commitFile is written, durably, after the record of a new container: with it the
	// create has provably reached its commit point, whatever later happens to the record.
	commitFile = "committed"
)

// Store keeps every container in memory and on disk, one directory each under Root.
// Names are registered here: reserving a name is atomic, so two concurrent creates of one
// name resolve to exactly one winner.
type Store struct {
	Root string
	// RemoveDir removes a deleted container's directory (nil: os.RemoveAll). The daemon
	// gives its trash (internal/trash), which takes it off the removal's path.
	RemoveDir func(string) error

	mu          sync.RWMutex
	byID        map[string]*Container
	byName      map[string]string // name -> id (reserved names included)
	quarantined map[string]bool   // ids of committed containers whose record cannot be read
}

// NewStore opens the store rooted at dir (created if missing).
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{Root: dir, byID: map[string]*Container{}, byName: map[string]string{}, quarantined: map[string]bool{}}, nil
}

// Dir is the container's directory (its OCI bundle too).
func (s *Store) Dir(id string) string { return filepath.Join(s.Root, id) }

// Loaded is what Load found besides the containers it loaded.
type Loaded struct {
	// Unfinished are the directories of creates that never reached their commit point (no
	// record and no commit mark): they are rolled back.
	Unfinished []string
	// Quarantined are committed containers whose record is unreadable or invalid: they are
	// not loaded, and nothing of theirs (runtime, shim, channels, directory) may be touched.
	Quarantined []Quarantined
	// Renamed are containers whose recorded name another container already had: they got
	// a new name (already saved).
	Renamed []Renamed
}

// Quarantined is one container set aside by Load.
type Quarantined struct {
	ID, Dir string
	Err     error
}

// Renamed is one container renamed by Load.
type Renamed struct {
	ID, From, To, Holder string
	SaveErr              error
}

// Load reads every record. A directory with neither record nor commit mark is an unfinished
// create. A directory with a commit mark or a record that cannot be used is a container that
// exists but cannot be loaded: it is quarantined, never taken for an unfinished create.
func (s *Store) Load() (Loaded, error) {
	var out Loaded
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return out, err
	}
	var loaded []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		id, dir := e.Name(), filepath.Join(s.Root, e.Name())
		c, err := readRecord(dir, id)
		if err == nil {
			loaded = append(loaded, c)
			continue
		}
		// Without a commit mark the create never reached a durable commit point: no
		// record, or one that cannot be read (a --rm container's record, written without
		// fsync, cut by a power loss), is an unfinished create.
		if _, merr := os.Lstat(filepath.Join(dir, commitFile)); errors.Is(merr, os.ErrNotExist) {
			out.Unfinished = append(out.Unfinished, dir)
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("the record is missing but the create was committed: %w", err)
		}
		s.quarantined[id] = true
		out.Quarantined = append(out.Quarantined, Quarantined{ID: id, Dir: dir, Err: err})
	}
	// Oldest first keeps its name: a record edited to another's name cannot take it.
	sort.Slice(loaded, func(i, j int) bool {
		if !loaded[i].Created.Equal(loaded[j].Created) {
			return loaded[i].Created.Before(loaded[j].Created)
		}
		return loaded[i].ID < loaded[j].ID
	})
	for _, c := range loaded {
		if holder, taken := s.byName[c.Name]; taken {
			r := Renamed{ID: c.ID, From: c.Name, Holder: holder}
			c.Name = c.Name + "_" + ShortID(c.ID)
			if _, taken := s.byName[c.Name]; taken {
				c.Name = r.From + "_" + c.ID
			}
			r.To = c.Name
			r.SaveErr = s.Save(c)
			out.Renamed = append(out.Renamed, r)
		}
		s.byID[c.ID] = c
		s.byName[c.Name] = c.ID
	}
	return out, nil
}

// readRecord reads and checks the record in dir, which must be container id's.
func readRecord(dir, id string) (*Container, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %v", recordFile, err)
	}
	switch {
	case c.ID != id:
		return nil, fmt.Errorf("%s: names container %q, not %q", recordFile, c.ID, id)
	case c.Name == "":
		return nil, fmt.Errorf("%s: no name", recordFile)
	case transitions[Status(c.State.Status)] == nil:
		return nil, fmt.Errorf("%s: unknown status %q", recordFile, c.State.Status)
	}
	return &c, nil
}

// Owns reports whether id is a container of the store, loaded or quarantined: what belongs
// to it (runtime state, shim, host channels) is not an orphan.
func (s *Store) Owns(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.byID[id]
	return ok || s.quarantined[id]
}

// ReserveName claims name for id. It fails if the name is taken.
func (s *Store) ReserveName(name, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byName[name]; ok && other != id {
		return fmt.Errorf("container name %q is already in use by container %s: %w", name, ShortID(other), errdefs.ErrAlreadyExists)
	}
	s.byName[name] = id
	return nil
}

// ReleaseName frees a name reserved for id.
func (s *Store) ReleaseName(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[name] == id {
		delete(s.byName, name)
	}
}

// Add makes a saved container visible.
func (s *Store) Add(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[c.ID] = c
	s.byName[c.Name] = c.ID
}

// Commit writes the record of a new container durably, then its commit mark, durably: the
// mark is the create's commit point. Once it is on disk the container exists, and nothing
// that happens to its record later makes it look like an unfinished create.
//
// Files the caller wrote into the container's directory with atomicfile.WriteSynced before
// (its spec) are made durable with the record: the directory is synced once for both. Last,
// the store's own directory is synced, so that the container's directory itself (made by
// the create) is linked in it after a power loss: without that, a committed container could
// vanish whole.
func (s *Store) Commit(c *Container) error {
	if err := s.save(c, writeNewSynced); err != nil {
		return err
	}
	dir := s.Dir(c.ID)
	atomicfile.SyncDir(dir) // the spec's and the record's entries, before the mark
	// New files of a new directory, written in place (atomicfile.WriteNew): nothing reads the
	// record before the mark exists, and a record without a mark is an unfinished create.
	if err := writeNewSynced(filepath.Join(dir, commitFile), nil, 0o600); err != nil {
		return err
	}
	atomicfile.SyncDir(dir)
	atomicfile.SyncDir(s.Root)
	return nil
}

func writeNewSynced(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteNew(path, data, perm, true)
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteNew(path, data, perm, false)
}

// CommitTransient writes the record of a new --rm container without fsync and without a
// commit mark. Such a container never outlives a crash (a restarted daemon removes every
// --rm container that is not running, and after a power loss none is), so durability buys
// nothing: a process crash still finds the record whole (rename), and a power loss may leave
// no record or a torn one, which Load then takes for an unfinished create.
func (s *Store) CommitTransient(c *Container) error { return s.save(c, writeNew) }

// Save writes a state change of the record atomically. It does not fsync: after a power
// loss every container is stopped anyway, and restore works from whichever record is found.
func (s *Store) Save(c *Container) error { return s.save(c, atomicfile.Replace) }

func (s *Store) save(c *Container, write func(string, []byte, os.FileMode) error) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if c.deleted {
		return nil
	}
	c.mu.Lock()
	data, err := json.Marshal(c)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return write(filepath.Join(s.Dir(c.ID), recordFile), data, 0o600)
}

// Update changes the record with change (under the record's lock) and saves it. If change
// or the save fails, the record is put back as it was, so memory never holds a state the disk
// does not: every state change is saved or the operation fails.
func (s *Store) Update(c *Container, change func(c *Container) error) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	old := persisted{c.State, c.RestartCount, c.ManualStop, c.StartedOnce}
	err := change(c)
	var data []byte
	if err == nil && !c.deleted {
		data, err = json.Marshal(c)
	}
	c.mu.Unlock()
	if err == nil && data != nil {
		if err = atomicfile.Replace(filepath.Join(s.Dir(c.ID), recordFile), data, 0o600); err != nil {
			err = fmt.Errorf("saving the record of container %s: %w", ShortID(c.ID), err)
		}
	}
	if err != nil {
		c.mu.Lock()
		c.State, c.RestartCount, c.ManualStop, c.StartedOnce = old.state, old.restartCount, old.manualStop, old.startedOnce
		c.mu.Unlock()
	}
	return err
}

// persisted is what Update puts back when a change cannot be saved.
type persisted struct {
	state        types.State
	restartCount int
	manualStop   bool
	startedOnce  bool
}

// Delete forgets the container and removes its directory.
func (s *Store) Delete(c *Container) error {
	s.mu.Lock()
	delete(s.byID, c.ID)
	if s.byName[c.Name] == c.ID {
		delete(s.byName, c.Name)
	}
	s.mu.Unlock()
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.deleted = true
	if s.RemoveDir != nil {
		return s.RemoveDir(s.Dir(c.ID))
	}
	return os.RemoveAll(s.Dir(c.ID))
}

// Rename changes a container's name atomically in the registry.
func (s *Store) Rename(c *Container, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byName[newName]; ok {
		return fmt.Errorf("container name %q is already in use by container %s: %w", newName, ShortID(other), errdefs.ErrAlreadyExists)
	}
	c.mu.Lock()
	old := c.Name
	c.Name = newName
	c.mu.Unlock()
	delete(s.byName, old)
	s.byName[newName] = c.ID
	return nil
}

// Get resolves a full ID, a name, or a unique ID prefix.
func (s *Store) Get(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, fmt.Errorf("container name or ID must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.byName[ref]; ok {
		if c, ok := s.byID[id]; ok {
			return c, nil
		}
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("container ID prefix %q is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

// List returns all containers, newest first.
func (s *Store) List() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// Known reports whether id is a container of the store.
func (s *Store) Known(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.byID[id]
	return ok
}
