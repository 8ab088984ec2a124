package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// bundleInfo is what the exit path and a kill of all need from the bundle's
// config.json (server.facts).
type bundleInfo struct {
	cgroupsPath string // linux.cgroupsPath
	ownPidNS    bool   // a new pid namespace (no path): nothing outlives init
	hooks       bool   // poststop hooks (only the runtime runs those)
	ok          bool   // the spec was read
}

func readBundleInfo(bundle string) bundleInfo {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return bundleInfo{}
	}
	var spec struct {
		Hooks *struct {
			Poststop []json.RawMessage `json:"poststop"`
		} `json:"hooks"`
		Linux *struct {
			CgroupsPath string `json:"cgroupsPath"`
			Namespaces  []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if json.Unmarshal(b, &spec) != nil || spec.Linux == nil {
		return bundleInfo{}
	}
	bi := bundleInfo{cgroupsPath: spec.Linux.CgroupsPath, ok: true}
	bi.hooks = spec.Hooks != nil && len(spec.Hooks.Poststop) > 0
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == "pid" && ns.Path == "" {
			bi.ownPidNS = true
		}
	}
	return bi
}

// errNoFastDelete: the container does not qualify; the runtime deletes it.
var errNoFastDelete = errors.New("no fast delete")

// fastDelete removes the state of a stopped container the way `runc delete`
// and `crun delete` do for one (destroy its cgroups, remove the runtime's
// state directory), without starting the runtime binary: that process is
// 15-30 ms on the exit path of every container (docs/PERFORMANCE.md). Only
// for the plain case: init had its own pid namespace (so the kernel killed
// every other process of the container with it), no poststop hooks (the
// runtime runs those), a cgroupfs path (absolute cgroupsPath) and a runtime
// --root. Anything else, or anything that fails, returns an error and the
// caller runs the runtime's delete, which finishes the job.
func (r *runtime) fastDelete(id string, bi bundleInfo) error {
	if !bi.ok || !bi.ownPidNS || bi.hooks || !filepath.IsAbs(bi.cgroupsPath) || r.root == "" ||
		id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return errNoFastDelete
	}
	stateDir := filepath.Join(r.root, id)
	if _, err := os.Lstat(stateDir); err != nil {
		return err
	}
	mounts, err := cachedCgroupMounts()
	if err != nil {
		return err
	}
	rel := filepath.Clean(bi.cgroupsPath)
	if rel == "/" {
		return errNoFastDelete
	}
	for _, m := range mounts {
		if err := removeCgroup(filepath.Join(m, rel)); err != nil {
			return err
		}
	}
	// Moved into the shim's own state directory, which the daemon removes in the
	// background with the container (internal/trash), or the next shim of the container
	// does (removeDeletedRuntimeState): the runtime's directory then goes in one rename on
	// the exit path instead of its unlinks (an rmdir that frees a block is 0.2-0.5 ms on
	// ext4 with discard). Anything else (another file system, a leftover in the way): here.
	if r.stateDir != "" && os.Rename(stateDir, filepath.Join(r.stateDir, deletedRuntimeState)) == nil {
		return nil
	}
	return os.RemoveAll(stateDir)
}

// deletedRuntimeState is the runtime's state directory of a deleted container, moved into the
// shim's state directory by fastDelete.
const deletedRuntimeState = "runtime-state.deleted"

// removeDeletedRuntimeState removes what fastDelete moved into stateDir for an earlier run of
// the container (one that was not removed since: restarted, or started again).
func removeDeletedRuntimeState(stateDir string) {
	os.RemoveAll(filepath.Join(stateDir, deletedRuntimeState))
}

// cachedCgroupMounts is cgroupMounts read once: during an attached start (server.start), so
// that a short run's exit does not parse the mount table, else at the first fast delete.
var cachedCgroupMounts = sync.OnceValues(cgroupMounts)

// cgroupMounts lists the mount points of every cgroup (v1) and cgroup2
// hierarchy visible to the shim.
func cgroupMounts() ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	return hierarchyRoots(ms)
}

// hierarchyRoots is the mount points of ms. A hierarchy mounted from below its
// root (a cgroup namespace, a bind mount of a sub-cgroup) makes the paths
// ambiguous: then an error, and the runtime deletes.
func hierarchyRoots(ms []*mountinfo.Info) ([]string, error) {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Root != "/" {
			return nil, fmt.Errorf("cgroup hierarchy at %s mounted from %s: %w", m.Mountpoint, m.Root, errNoFastDelete)
		}
		out = append(out, m.Mountpoint)
	}
	return out, nil
}

// removeCgroup removes a cgroup directory and its children, deepest first (a
// system container's systemd makes children). A cgroup still holding tasks
// (the last processes of the pid namespace still exiting) is retried for a
// while, as runc does.
func removeCgroup(dir string) error {
	// Most containers' cgroups have no children: one rmdir, no listing.
	switch err := syscall.Rmdir(dir); err {
	case nil, syscall.ENOENT:
		return nil
	case syscall.EBUSY, syscall.ENOTEMPTY:
	default:
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for i := 0; ; i++ {
		err := syscall.Rmdir(dir)
		if err == nil || err == syscall.ENOENT {
			return nil
		}
		if err != syscall.EBUSY || i == 7 {
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		time.Sleep(delay)
		delay *= 2
	}
}
