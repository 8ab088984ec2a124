package cri

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// sandbox is a pod: a record plus pinned namespaces, no process. It is stored as
// <graph>/cri/sandboxes/<id>/sandbox.json beside the files its containers bind (hostname,
// hosts, resolv.conf); its namespaces are pinned in <state>/cri/sandboxes/<id>/.
type sandbox struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	UID         string            `json:"uid"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
	// Stopped is set once StopPodSandbox has run: the pod is NOTREADY for good.
	Stopped bool `json:"stopped"`

	Hostname     string            `json:"hostname,omitempty"`
	LogDirectory string            `json:"logDirectory,omitempty"`
	CgroupParent string            `json:"cgroupParent,omitempty"`
	RuntimeName  string            `json:"runtimeHandler,omitempty"`
	HostNetwork  bool              `json:"hostNetwork,omitempty"`
	HostIPC      bool              `json:"hostIPC,omitempty"`
	HostPID      bool              `json:"hostPID,omitempty"`
	Namespaces   map[nsKind]string `json:"namespaces,omitempty"` // pinned ones, by kind
	IPs          []string          `json:"ips,omitempty"`
	Ports        []PortMapping     `json:"ports,omitempty"`
	DNS          DNSConfig         `json:"dns"`
	Sysctls      map[string]string `json:"sysctls,omitempty"`
	// NetworkUp is set between a successful network Setup and its Teardown.
	NetworkUp bool `json:"networkUp,omitempty"`
	// SharedPID pods have one PID namespace, held by Init.
	SharedPID bool    `json:"sharedPID,omitempty"`
	Init      podInit `json:"init"`
}

// fullName is what makes a pod unique for the kubelet: a second RunPodSandbox with the same
// metadata is refused while the first exists.
func (s *sandbox) fullName() string {
	return strings.Join([]string{s.Name, s.Namespace, s.UID, fmt.Sprint(s.Attempt)}, "_")
}

// ready tells whether the pod can run containers: not stopped, and every namespace it pinned
// still pinned (they are gone after a reboot).
func (s *sandbox) ready() bool {
	if s.Stopped || (s.SharedPID && !s.Init.alive()) {
		return false
	}
	for _, p := range s.Namespaces {
		if !namespacePinned(p) {
			return false
		}
	}
	return true
}

// sandboxStore keeps the pods' records in memory and on disk.
type sandboxStore struct {
	recordDir, pinDir string

	mu    sync.Mutex
	byID  map[string]*sandbox
	names map[string]string // fullName -> ID, reservations included
	locks map[string]*sync.Mutex
}

func newSandboxStore(recordDir, pinDir string) (*sandboxStore, error) {
	for _, d := range []string{recordDir, pinDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return &sandboxStore{recordDir: recordDir, pinDir: pinDir, byID: map[string]*sandbox{},
		names: map[string]string{}, locks: map[string]*sync.Mutex{}}, nil
}

func (st *sandboxStore) recordPath(id string) string {
	return filepath.Join(st.recordDir, id, "sandbox.json")
}
func (st *sandboxStore) filesDir(id string) string { return filepath.Join(st.recordDir, id) }
func (st *sandboxStore) pinPath(id string) string  { return filepath.Join(st.pinDir, id) }

// load reads every record and removes what a RunPodSandbox interrupted before its record
// was written left behind: pinned namespaces and directories of pods without a record.
func (st *sandboxStore) load(log *slog.Logger) error {
	ents, err := os.ReadDir(st.recordDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		data, err := os.ReadFile(st.recordPath(e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			log.Warn("removing a pod whose RunPodSandbox did not finish", "id", e.Name())
			killPodInitIn(st.pinPath(e.Name()))
			unpinNamespaces(st.pinPath(e.Name()))
			os.RemoveAll(st.pinPath(e.Name()))
			os.RemoveAll(st.filesDir(e.Name()))
			continue
		}
		var sb sandbox
		if err == nil {
			err = json.Unmarshal(data, &sb)
		}
		if err != nil || sb.ID != e.Name() {
			// Left alone, not removed: a record damaged by hand is for the admin to look at.
			log.Error("pod record unreadable: pod left out", "id", e.Name(), "err", err)
			continue
		}
		st.byID[sb.ID] = &sb
		st.names[sb.fullName()] = sb.ID
	}
	pins, _ := os.ReadDir(st.pinDir)
	for _, e := range pins {
		if _, ok := st.byID[e.Name()]; !ok {
			if _, err := os.Stat(st.filesDir(e.Name())); errors.Is(err, os.ErrNotExist) {
				killPodInitIn(st.pinPath(e.Name()))
				unpinNamespaces(st.pinPath(e.Name()))
				os.RemoveAll(st.pinPath(e.Name()))
			}
		}
	}
	return nil
}

// reserve claims a pod's full name for a new ID, or says which pod holds it.
func (st *sandboxStore) reserve(full, id string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if other, ok := st.names[full]; ok {
		return errdefs.Errorf(errdefs.ErrAlreadyExists, "pod sandbox %q already exists (id %s): remove it first", full, other)
	}
	st.names[full] = id
	return nil
}

func (st *sandboxStore) release(full, id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.names[full] == id {
		delete(st.names, full)
	}
}

// lock serialises lifecycle operations on one pod.
func (st *sandboxStore) lock(id string) func() {
	st.mu.Lock()
	l, ok := st.locks[id]
	if !ok {
		l = &sync.Mutex{}
		st.locks[id] = l
	}
	st.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// get finds a pod by ID or unique ID prefix, as crictl abbreviates them.
func (st *sandboxStore) get(ref string) (*sandbox, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if sb, ok := st.byID[ref]; ok {
		return sb.copy(), nil
	}
	var found *sandbox
	if ref != "" {
		for id, sb := range st.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "pod sandbox ID prefix %q matches more than one pod", ref)
				}
				found = sb
			}
		}
	}
	if found == nil {
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "pod sandbox %q not found", ref)
	}
	return found.copy(), nil
}

func (st *sandboxStore) list() []*sandbox {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*sandbox, 0, len(st.byID))
	for _, sb := range st.byID {
		out = append(out, sb.copy())
	}
	return out
}

// save writes a pod's record durably, then makes it the one in memory.
func (st *sandboxStore) save(sb *sandbox) error {
	data, err := json.MarshalIndent(sb, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(st.recordPath(sb.ID), data, 0o600); err != nil {
		return fmt.Errorf("pod %s: writing its record: %w", sb.ID, err)
	}
	st.mu.Lock()
	st.byID[sb.ID] = sb.copy()
	st.names[sb.fullName()] = sb.ID
	st.mu.Unlock()
	return nil
}

// delete removes a pod's record (first, so a crash after it leaves only what load sweeps),
// then its directories.
func (st *sandboxStore) delete(sb *sandbox) error {
	if err := os.Remove(st.recordPath(sb.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st.mu.Lock()
	delete(st.byID, sb.ID)
	if st.names[sb.fullName()] == sb.ID {
		delete(st.names, sb.fullName())
	}
	st.mu.Unlock()
	killPodInitIn(st.pinPath(sb.ID))
	if err := unpinNamespaces(st.pinPath(sb.ID)); err != nil {
		return err
	}
	os.RemoveAll(st.pinPath(sb.ID))
	return os.RemoveAll(st.filesDir(sb.ID))
}

func (sb *sandbox) copy() *sandbox {
	c := *sb
	return &c
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
