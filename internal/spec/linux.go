package spec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
)

// WithNamespaces sets the namespaces: pid, ipc, uts, mount always private; network private
// unless networkMode is "host"; cgroup private when cgroupns is set (system
// containers, and every container on cgroup v2 as docker does).
func WithNamespaces(networkMode string, cgroupns bool) SpecOpt {
	return func(s *specs.Spec) error {
		// Any mode but host is a namespace of its own; the daemon sets the path of one it
		// made (a network) or joins (container:ID).
		ns := []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
			{Type: specs.MountNamespace},
		}
		if networkMode != "host" {
			ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		}
		if cgroupns {
			ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
		// Keep a user namespace another option added.
		for _, n := range s.Linux.Namespaces {
			if n.Type == specs.UserNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		return nil
	}
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// WithCgroupsPath sets the container's explicit cgroups path.
func WithCgroupsPath(p string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.CgroupsPath = p
		return nil
	}
}

// WithResources applies -m, --memory-swap, --cpu-shares, --cpus and --pids-limit with
// docker's semantics.
func WithResources(hc types.HostConfig) SpecOpt {
	return func(s *specs.Spec) error {
		r := s.Linux.Resources
		if r == nil {
			r = &specs.LinuxResources{}
			s.Linux.Resources = r
		}
		if hc.Memory < 0 {
			return invalidf("--memory %d: must not be negative", hc.Memory)
		}
		if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
			return invalidf("--memory %d: the minimum memory limit is 6MB", hc.Memory)
		}
		switch {
		case hc.MemorySwap < -1:
			return invalidf("--memory-swap %d: want -1 (unlimited), 0 (twice --memory) or a size", hc.MemorySwap)
		case hc.MemorySwap > 0 && hc.Memory == 0:
			return invalidf("--memory-swap needs --memory to be set too")
		case hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory:
			return invalidf("--memory-swap %d: must be at least --memory (%d): it is memory plus swap", hc.MemorySwap, hc.Memory)
		}
		if hc.Memory > 0 {
			limit := hc.Memory
			swap := hc.MemorySwap
			if swap == 0 {
				swap = 2 * hc.Memory
			}
			r.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
		}
		if hc.CPUShares < 0 {
			return invalidf("--cpu-shares %d: must not be negative", hc.CPUShares)
		}
		if hc.CPUShares > 0 || hc.NanoCPUs != 0 {
			r.CPU = &specs.LinuxCPU{}
		}
		if hc.CPUShares > 0 {
			shares := uint64(hc.CPUShares)
			r.CPU.Shares = &shares
		}
		if hc.NanoCPUs < 0 {
			return invalidf("--cpus: must not be negative")
		}
		if hc.NanoCPUs > 0 {
			const period = 100000
			quota := hc.NanoCPUs * period / 1e9
			if quota < 1000 {
				return invalidf("--cpus %.3f: the minimum is 0.01", float64(hc.NanoCPUs)/1e9)
			}
			p := uint64(period)
			r.CPU.Period, r.CPU.Quota = &p, &quota
		}
		if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
			r.Pids = &specs.LinuxPids{Limit: hc.PidsLimit}
		}
		return nil
	}
}

// WithMounts adds the user's mounts (-v, --mount, --tmpfs). A user mount replaces a default
// one at the same destination, as in docker.
func WithMounts(ms []types.Mount) SpecOpt {
	return func(s *specs.Spec) error {
		seen := map[string]bool{}
		for _, m := range ms {
			sm, err := userMount(m)
			if err != nil {
				return err
			}
			if seen[sm.Destination] {
				return invalidf("mount destination %q is given twice", sm.Destination)
			}
			seen[sm.Destination] = true
			s.Mounts = replaceMount(s.Mounts, sm)
			switch propagationOf(sm.Options) {
			case "shared", "rshared":
				s.Linux.RootfsPropagation = "rshared"
			case "slave", "rslave":
				if s.Linux.RootfsPropagation != "rshared" {
					s.Linux.RootfsPropagation = "rslave"
				}
			}
		}
		return nil
	}
}

func checkDestination(d string) (string, error) {
	if !path.IsAbs(d) {
		return "", invalidf("mount destination %q: must be an absolute path", d)
	}
	d = path.Clean(d)
	if d == "/" {
		return "", invalidf("mount destination %q: cannot mount over the container's root", d)
	}
	return d, nil
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

func propagationOf(opts []string) string {
	for _, o := range opts {
		if slices.Contains(propagations, o) {
			return o
		}
	}
	return ""
}

func userMount(m types.Mount) (specs.Mount, error) {
	dst, err := checkDestination(m.Target)
	if err != nil {
		return specs.Mount{}, err
	}
	switch m.Type {
	case "bind", "":
		if !path.IsAbs(m.Source) {
			return specs.Mount{}, invalidf("bind mount source %q: must be an absolute path", m.Source)
		}
		prop := m.Propagation
		if prop == "" {
			prop = "rprivate"
		}
		if !slices.Contains(propagations, prop) {
			return specs.Mount{}, invalidf("bind mount %q: invalid propagation %q (want one of %s)", dst, prop, strings.Join(propagations, ", "))
		}
		opts := []string{"rbind", rwOpt(m.ReadOnly), prop}
		if m.RecursiveReadOnly {
			if !m.ReadOnly || (prop != "private" && prop != "rprivate") {
				return specs.Mount{}, invalidf("bind mount %q: recursive read-only needs read-only and private propagation", dst)
			}
			opts = append(opts, "rro")
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: path.Clean(m.Source), Options: opts}, nil
	case "tmpfs":
		if m.TmpfsSize < 0 {
			return specs.Mount{}, invalidf("tmpfs %q: negative size", dst)
		}
		opts := []string{"noexec", "nosuid", "nodev", rwOpt(m.ReadOnly)}
		if m.TmpfsSize > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsSize))
		}
		if m.TmpfsMode != 0 {
			if m.TmpfsMode&^07777 != 0 {
				return specs.Mount{}, invalidf("tmpfs %q: invalid mode %o", dst, m.TmpfsMode)
			}
			opts = append(opts, fmt.Sprintf("mode=%o", m.TmpfsMode))
		}
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	default:
		return specs.Mount{}, invalidf("mount %q: unsupported type %q (want bind or tmpfs)", dst, m.Type)
	}
}

func rwOpt(ro bool) string {
	if ro {
		return "ro"
	}
	return "rw"
}

// replaceMount puts m in the list, removing any mount at the same destination.
func replaceMount(ms []specs.Mount, m specs.Mount) []specs.Mount {
	ms = slices.DeleteFunc(ms, func(x specs.Mount) bool { return path.Clean(x.Destination) == m.Destination })
	return append(ms, m)
}

// WithHostChannelMounts appends the host-channel bind mounts (already built by
// internal/hostchannel). They come last and win over a default mount at the same destination
// (a channel at /tmp of a system container replaces its /tmp tmpfs).
func WithHostChannelMounts(ms []specs.Mount) SpecOpt {
	return func(s *specs.Spec) error {
		for _, m := range ms {
			dst, err := checkDestination(m.Destination)
			if err != nil {
				return err
			}
			m.Destination = dst
			m.Options = slices.Clone(m.Options)
			s.Mounts = replaceMount(s.Mounts, m)
		}
		return nil
	}
}

// WithPrivileged is --privileged: every host device, all devices allowed, writable /sys and
// /sys/fs/cgroup, no masked or read-only paths. (Capabilities and seccomp are decided by
// Capabilities and WithSeccomp.)
func WithPrivileged(devRoot string) SpecOpt {
	return func(s *specs.Spec) error {
		devs, err := HostDevices(devRoot)
		if err != nil {
			return err
		}
		s.Linux.Devices = devs
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		s.Linux.MaskedPaths = nil
		s.Linux.ReadonlyPaths = nil
		for i, m := range s.Mounts {
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
		return nil
	}
}

// HostDevices lists the device nodes under devRoot (the host's /dev), skipping the
// pseudo-filesystems of a container's own /dev and the console (runc makes those).
func HostDevices(devRoot string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	skipDirs := map[string]bool{"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true, "hugepages": true}
	err := filepath.WalkDir(devRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p == devRoot {
				return err
			}
			return nil // a device that vanished meanwhile
		}
		if d.IsDir() {
			if p != devRoot && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(devRoot, p)
		if rel == "console" || rel == "ptmx" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: "/dev/" + filepath.ToSlash(rel), Type: typ,
			Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing host devices in %s: %w", devRoot, err)
	}
	return out, nil
}
