// Package cgroups answers the few questions the engine asks about the host's cgroup layout:
// which mode it is in (v1, hybrid, v2), where a container's cgroup goes, and where the
// name=systemd hierarchy of cgroup v1 is mounted (system containers get their own subtree of
// it, writable). The engine never changes the host's layout.
package cgroups

import (
	"bufio"
	"io"
	"os"
	"path"
	"strings"

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
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// 36 25 0:32 / /sys/fs/cgroup/systemd rw,... shared:9 - cgroup cgroup rw,xattr,name=systemd
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != "cgroup" || pf[3] != "/" {
			continue
		}
		for _, o := range strings.Split(qf[2], ",") {
			if o == "name=systemd" {
				return unescapeMountinfo(pf[4])
			}
		}
	}
	return ""
}

// unescapeMountinfo undoes the octal escapes (\040 for space...) of mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }
