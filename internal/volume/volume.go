// Package volume is the local volume driver: each named volume is a directory
// <graph>/volumes/<name>/_data with its record <name>/volume.json, bind-mounted into the
// containers that name it (-v NAME:/path). A volume is made whole or not at all (built under
// a temporary name, then renamed into place) and removed by renaming it away first, so a
// crash leaves either the volume or nothing that Open does not clean up.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/opts"
)

// Store is the set of volumes in one directory.
type Store struct {
	dir     string
	mu      sync.Mutex
	pending map[string]int // volumes acquired by creates that have not committed yet
}

// Open opens (making it, mode 0700) the volumes directory and removes what interrupted
// creates and removals left.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return &Store{dir: dir, pending: map[string]int{}}, nil
}

// Path is where the volume's data lives (the source of its bind mounts).
func (s *Store) Path(name string) string { return filepath.Join(s.dir, name, "_data") }

func checkName(name string) error {
	if !opts.ValidVolumeName(name) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid volume name %q (want [a-zA-Z0-9][a-zA-Z0-9_.-]+, at least two characters)", name)
	}
	return nil
}

func tempName(prefix, name string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "." + prefix + "-" + name + "-" + hex.EncodeToString(b)
}

// Create makes the volume name ("" for a random one) with labels. A volume that exists
// already is returned as it is (docker's behaviour), created reports which.
func (s *Store) Create(name string, labels map[string]string) (v types.Volume, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(name, labels)
}

func (s *Store) create(name string, labels map[string]string) (types.Volume, bool, error) {
	if name == "" {
		b := make([]byte, 32)
		rand.Read(b)
		name = hex.EncodeToString(b)
	}
	if err := checkName(name); err != nil {
		return types.Volume{}, false, err
	}
	if v, err := s.get(name); err == nil {
		return v, false, nil
	}
	tmp := filepath.Join(s.dir, tempName("new", name))
	if err := os.MkdirAll(filepath.Join(tmp, "_data"), 0o755); err != nil {
		return types.Volume{}, false, err
	}
	os.Chmod(tmp, 0o701) // containers' users reach _data through it, nobody lists it
	v := types.Volume{Name: name, Driver: "local", Scope: "local", Mountpoint: s.Path(name), CreatedAt: time.Now().UTC(), Labels: labels}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	data, _ := json.MarshalIndent(v, "", "  ")
	if err := atomicfile.Write(filepath.Join(tmp, "volume.json"), data, 0o600); err != nil {
		os.RemoveAll(tmp)
		return types.Volume{}, false, err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			v, err := s.get(name) // made meanwhile by another daemon on this graph
			return v, false, err
		}
		return types.Volume{}, false, err
	}
	return v, true, nil
}

// Get returns the volume name.
func (s *Store) Get(name string) (types.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

func (s *Store) get(name string) (types.Volume, error) {
	if err := checkName(name); err != nil {
		return types.Volume{}, err
	}
	data, err := os.ReadFile(filepath.Join(s.dir, name, "volume.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return types.Volume{}, errdefs.Errorf(errdefs.ErrNotFound, "no such volume: %s", name)
	}
	if err != nil {
		return types.Volume{}, err
	}
	var v types.Volume
	if err := json.Unmarshal(data, &v); err != nil {
		return types.Volume{}, fmt.Errorf("volume %s: its record is damaged: %v", name, err)
	}
	v.Mountpoint = s.Path(name)
	return v, nil
}

// List returns every volume, by name.
func (s *Store) List() ([]types.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	out := []types.Volume{}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if v, err := s.get(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Acquire makes sure the named volumes exist (creating the missing ones) and keeps them from
// being removed until release is called: a container create calls it before its record is
// committed. release(undo) with undo set removes the volumes this call created.
func (s *Store) Acquire(names []string) (release func(undo bool), err error) {
	if len(names) == 0 {
		return func(bool) {}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var created, held []string
	releaseLocked := func(undo bool) {
		for _, n := range held {
			if s.pending[n]--; s.pending[n] <= 0 {
				delete(s.pending, n)
			}
		}
		if undo {
			for _, n := range created {
				if s.pending[n] == 0 {
					s.remove(n)
				}
			}
		}
		held, created = nil, nil
	}
	for _, n := range names {
		_, made, err := s.create(n, nil)
		if err != nil {
			releaseLocked(true)
			return nil, err
		}
		if made {
			created = append(created, n)
		}
		s.pending[n]++
		held = append(held, n)
	}
	return func(undo bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		releaseLocked(undo)
	}, nil
}

// Remove removes the volume unless a container uses it (usedBy names them) or a create is
// about to.
func (s *Store) Remove(name string, usedBy []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(name); err != nil {
		return err
	}
	if len(usedBy) > 0 || s.pending[name] > 0 {
		who := strings.Join(usedBy, ", ")
		if who == "" {
			who = "a container being created"
		}
		return errdefs.Errorf(errdefs.ErrConflict, "volume %s is in use by %s (remove the container(s) first)", name, who)
	}
	return s.remove(name)
}

func (s *Store) remove(name string) error {
	gone := filepath.Join(s.dir, tempName("rm", name))
	if err := os.Rename(filepath.Join(s.dir, name), gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}

// Prune removes every volume no container uses (inUse tells) and returns their names.
func (s *Store) Prune(inUse func(name string) bool) ([]string, error) {
	vs, err := s.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, v := range vs {
		if inUse(v.Name) {
			continue
		}
		if err := s.Remove(v.Name, nil); err == nil {
			removed = append(removed, v.Name)
		}
	}
	return removed, nil
}
