// Package cgroups answers the few questions the engine asks about the host's cgroup layout:
// which mode it is in (v1, hybrid, v2), where a container's cgroup goes, and where the
// name=systemd hierarchy of cgroup v1 is mounted (system containers get their own subtree of
// it, writable). The engine never changes the host's layout.
package cgroups

import (
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Modes reported by Mode.
const (
	V1     = "v1"     // only v1 hierarchies
	Hybrid = "hybrid" // v1 hierarchies plus a cgroup2 mount at /sys/fs/cgroup/unified
	V2     = "v2"     // unified hierarchy only
)

// DefaultParent is where containers' cgroups go without --cgroup-parent.
const DefaultParent = "/isulad"

// Root is the conventional mount point of the cgroup filesystems.
const Root = "/sys/fs/cgroup"

// Mode tells how the host's cgroups are mounted at /sys/fs/cgroup.
func Mode() string { return ModeAt(Root) }

// ModeAt is Mode for a cgroup root other than /sys/fs/cgroup (tests).
func ModeAt(root string) string {
	if isFS(root, unix.CGROUP2_SUPER_MAGIC) {
		return V2
	}
	if isFS(path.Join(root, "unified"), unix.CGROUP2_SUPER_MAGIC) {
		return Hybrid
	}
	return V1
}

func isFS(p string, magic int64) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return false
	}
	return int64(st.Type) == magic
}

// Path is the absolute cgroups path of container id under parent ("" means DefaultParent).
// A relative parent is taken from the root, as docker does with the cgroupfs driver.
func Path(parent, id string) string {
	if parent == "" {
		parent = DefaultParent
	}
	return path.Join("/", parent, id)
}

// Layout is what the spec needs to know about the host's cgroups to give a system container a
// cgroup filesystem. It is a value so that tests can describe a host that is not this one.
type Layout struct {
	Mode string // V1, Hybrid or V2
	// SystemdMount is where the v1 name=systemd hierarchy is mounted on the host, "" if none
	// (mode V2, or a v1 host without it).
	SystemdMount string
}

// Detect describes this host.
func Detect() Layout {
	l := Layout{Mode: Mode()}
	if l.Mode != V2 {
		if f, err := os.Open("/proc/self/mountinfo"); err == nil {
			l.SystemdMount = systemdMount(f)
			f.Close()
		}
	}
	return l
}

// SystemdPath is the host directory of cgroupsPath in the name=systemd hierarchy, "" when the
// layout has no such hierarchy.
func (l Layout) SystemdPath(cgroupsPath string) string {
	if l.SystemdMount == "" {
		return ""
	}
	return path.Join(l.SystemdMount, cgroupsPath)
}

// systemdMount finds the mount point of the v1 hierarchy named systemd in a mountinfo file.
func systemdMount(r io.Reader) string {
	ms, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return ""
	}
	for _, m := range ms {
		// A bind of a sub-cgroup (root not /) is not the hierarchy's mount point.
		if m.Root == "/" && slices.Contains(strings.Split(m.VFSOptions, ","), "name=systemd") {
			return m.Mountpoint
		}
	}
	return ""
}

// HasController tells whether a runtime can set limits of controller name (e.g. "hugetlb") on
// this host: on v1 and hybrid hosts, a v1 hierarchy with it is mounted (runc and crun configure
// v1 controllers only there; one on the hybrid host's cgroup2 mount is not theirs to set); on a
// v2 host, the root's cgroup.controllers lists it.
func HasController(name string) bool {
	if Mode() == V2 {
		b, err := os.ReadFile(path.Join(Root, "cgroup.controllers"))
		return err == nil && slices.Contains(strings.Fields(string(b)), name)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	return v1Mounted(f, name)
}

// v1Mounted finds a mounted v1 hierarchy with controller name in a mountinfo file.
func v1Mounted(r io.Reader, name string) bool {
	ms, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return false
	}
	for _, m := range ms {
		if slices.Contains(strings.Split(m.VFSOptions, ","), name) {
			return true
		}
	}
	return false
}
