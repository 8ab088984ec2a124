package spec

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/internal/cgroups"
)

// SystemContainer is what WithSystemContainer needs to know.
type SystemContainer struct {
	Cgroups     cgroups.Layout // the host's cgroup layout
	CgroupsPath string         // the container's absolute cgroups path
	Memory      int64          // -m, bytes (0: none); sizes /run, /run/lock and /tmp at half of it
	Privileged  bool           // keep the privileged cgroup filesystem (all writable)
	CapBnd      []string       // the daemon's bounding set (capabilities beyond it are not added)
	CapDrop     []string       // --cap-drop, normalized or not: not added back
}

// WithSystemContainer applies the system-container template: tmpfs /run, /run/lock, /tmp and
// /dev/shm; the cgroup filesystem systemd needs (see withSystemdCgroups); SYS_BOOT. The
// cgroup namespace is set by WithNamespaces and container= by the environment.
func WithSystemContainer(sc SystemContainer) SpecOpt {
	return func(s *specs.Spec) error {
		size := ""
		if sc.Memory > 0 {
			size = fmt.Sprintf("size=%d", sc.Memory/2)
		}
		withSize := func(opts ...string) []string {
			if size != "" {
				opts = append(opts, size)
			}
			return opts
		}
		for _, m := range []specs.Mount{
			{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: withSize("nosuid", "nodev", "mode=755")},
			{Destination: "/run/lock", Type: "tmpfs", Source: "tmpfs", Options: withSize("nosuid", "nodev", "noexec", "mode=755")},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: withSize("nosuid", "nodev", "mode=1777")},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"}},
		} {
			s.Mounts = replaceMount(s.Mounts, m)
		}
		drop := make([]string, 0, len(sc.CapDrop))
		for _, c := range sc.CapDrop {
			if n, err := normalizeCap(c); err == nil {
				drop = append(drop, n)
			}
		}
		if !slices.Contains(drop, "ALL") {
			addCaps(s, sc.CapBnd, drop, SystemContainerCaps...)
		}
		if sc.Privileged {
			return nil
		}
		return withSystemdCgroups(s, sc.Cgroups, sc.CgroupsPath)
	}
}

// withSystemdCgroups gives the container a cgroup filesystem systemd accepts, on which the
// engine's limits cannot be raised from inside.
//
// v1 and hybrid: runc mounts every v1 hierarchy of the container's own cgroup (a cgroup
// namespace makes it the root) read-only under a tmpfs at /sys/fs/cgroup; then the
// container's own directory of the name=systemd hierarchy is bind-mounted read-write over
// /sys/fs/cgroup/systemd, so systemd can make its slices and scopes there. Writing
// memory.limit_in_bytes fails with EROFS.
//
// v2: the container's own cgroup is mounted read-write (systemd must create children and
// move processes). Its limits stay out of reach because the cgroup namespace root's own
// control files are not writable from inside when the host mounts cgroup2 with nsdelegate
// (systemd hosts do).
func withSystemdCgroups(s *specs.Spec, l cgroups.Layout, cgroupsPath string) error {
	cg := specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}}
	if l.Mode == cgroups.V2 {
		cg.Options = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
		s.Mounts = replaceMount(s.Mounts, cg)
		return nil
	}
	s.Mounts = replaceMount(s.Mounts, cg)
	src := l.SystemdPath(cgroupsPath)
	if src == "" {
		return fmt.Errorf("system container: the host has no name=systemd cgroup hierarchy (cgroup %s); systemd cannot run in a container here", l.Mode)
	}
	if cgroupsPath == "" {
		return fmt.Errorf("system container: no cgroups path")
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup/systemd", Type: "bind", Source: src,
		Options: []string{"rbind", "rw", "nosuid", "noexec", "nodev", "rprivate"}})
	if l.Mode == cgroups.Hybrid {
		// The container's own directory of the host's cgroup2 (which holds no controller on a
		// hybrid host), read-write: with it systemd runs in hybrid mode and learns that a
		// unit's cgroup got empty from cgroup.events. Without it (legacy mode, and no release
		// agent in a container) a unit whose last process was not systemd's child, such as
		// the console's login shell at shutdown, stays "deactivating" until its stop timeout.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup/unified", Type: "bind",
			Source: unifiedPath(cgroupsPath), Options: []string{"rbind", "rw", "nosuid", "noexec", "nodev", "rprivate"}})
	}
	return nil
}

// unifiedPath is the host directory of cgroupsPath in the cgroup2 hierarchy of a hybrid host.
func unifiedPath(cgroupsPath string) string {
	return path.Join(cgroups.Root, "unified", cgroupsPath)
}

// WithCgroupChown hands the container's writable cgroup subtree (name=systemd on v1, its own
// cgroup on v2) to the mapped root of a --user-remap container, through a createRuntime hook
// (the cgroup exists only once the runtime has made it).
func WithCgroupChown(l cgroups.Layout, cgroupsPath string, m IDMap) SpecOpt {
	return func(s *specs.Spec) error {
		var dir string
		if l.Mode == cgroups.V2 {
			dir = path.Join(cgroups.Root, cgroupsPath)
		} else {
			dir = l.SystemdPath(cgroupsPath)
		}
		if dir == "" || cgroupsPath == "" {
			return nil
		}
		owner := fmt.Sprintf("%d:%d", m.UID, m.GID)
		args := []string{"chown", "-R", owner, dir}
		if l.Mode == cgroups.Hybrid {
			args = append(args, unifiedPath(cgroupsPath))
		}
		if l.Mode == cgroups.V2 {
			// Only the delegation files: the limits stay root's.
			args = []string{"chown", owner, dir, dir + "/cgroup.procs", dir + "/cgroup.subtree_control", dir + "/cgroup.threads"}
		}
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, specs.Hook{Path: chownPath(), Args: args})
		return nil
	}
}

func chownPath() string {
	for _, p := range []string{"/usr/bin/chown", "/bin/chown"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/bin/chown"
}

// WithUserRemap runs the container in a user namespace mapping container ids 0..Size-1 to
// host UID.. and GID.. . Mounts are adjusted to what works inside a user namespace: devpts'
// gid=5 only when gid 5 is mapped, and /sys bound from the host when there is no private
// network namespace (sysfs cannot be mounted then).
func WithUserRemap(m IDMap) SpecOpt {
	return func(s *specs.Spec) error {
		if m.Size == 0 {
			return invalidf("--user-remap: the size of the mapping must be at least 1")
		}
		if !hasNamespace(s, specs.UserNamespace) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.UID, Size: m.Size}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GID, Size: m.Size}}
		for i, mt := range s.Mounts {
			switch {
			case mt.Type == "devpts" && m.Size <= 5:
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(mt.Options), func(o string) bool { return o == "gid=5" })
			case mt.Type == "sysfs" && !hasNamespace(s, specs.NetworkNamespace):
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
					Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro", "rslave"}}
			}
		}
		return nil
	}
}

// WithNsChangeOpt makes the namespaced sysctls chosen by --ns-change-opt (net, ipc)
// writable. runc refuses mounts under /proc, so instead of making all of /proc/sys read-only,
// each of its other entries is listed in the read-only paths (enumerated from procSys, the
// host's /proc/sys), leaving /proc/sys/net (net) or kernel.shm*, kernel.msg*, kernel.sem* and
// /proc/sys/fs/mqueue (ipc) writable.
func WithNsChangeOpt(opt, procSys string) SpecOpt {
	return func(s *specs.Spec) error {
		net, ipc, err := parseNsChangeOpt(opt)
		if err != nil {
			return err
		}
		if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
			return nil // --privileged: nothing is read-only, nothing to open up
		}
		writable := func(rel string) bool {
			switch {
			case net && rel == "net":
				return true
			case ipc && rel == "fs/mqueue":
				return true
			case ipc && strings.HasPrefix(rel, "kernel/"):
				b := strings.TrimPrefix(rel, "kernel/")
				return strings.HasPrefix(b, "shm") || strings.HasPrefix(b, "msg") || strings.HasPrefix(b, "sem")
			}
			return false
		}
		// Directories that hold writable entries are split one level down.
		split := map[string]bool{}
		if ipc {
			split["kernel"], split["fs"] = true, true
		}
		var ro []string
		top, err := os.ReadDir(procSys)
		if err != nil {
			return fmt.Errorf("--ns-change-opt: listing %s: %w", procSys, err)
		}
		for _, e := range top {
			rel := e.Name()
			if writable(rel) {
				continue
			}
			if !split[rel] {
				ro = append(ro, "/proc/sys/"+rel)
				continue
			}
			sub, err := os.ReadDir(path.Join(procSys, rel))
			if err != nil {
				return fmt.Errorf("--ns-change-opt: listing %s: %w", path.Join(procSys, rel), err)
			}
			for _, se := range sub {
				r := rel + "/" + se.Name()
				if !writable(r) {
					ro = append(ro, "/proc/sys/"+r)
				}
			}
		}
		paths := slices.DeleteFunc(s.Linux.ReadonlyPaths, func(p string) bool { return p == "/proc/sys" })
		s.Linux.ReadonlyPaths = append(paths, ro...)
		return nil
	}
}

func parseNsChangeOpt(opt string) (net, ipc bool, err error) {
	for _, v := range strings.Split(opt, ",") {
		switch strings.TrimSpace(v) {
		case "net":
			net = true
		case "ipc":
			ipc = true
		default:
			return false, false, invalidf("--ns-change-opt %q: invalid value %q (want net, ipc or net,ipc)", opt, v)
		}
	}
	return net, ipc, nil
}

// DefaultStopSignal is the signal `stop` sends: --stop-signal if given; SIGRTMIN+3 (systemd's
// "halt") when the container is a system container whose PID 1 is systemd; else SIGTERM.
func DefaultStopSignal(o Options, systemd bool) string {
	if o.Config.StopSignal != "" {
		return o.Config.StopSignal
	}
	if systemd && o.HostConfig.SystemContainer {
		return "SIGRTMIN+3"
	}
	return "SIGTERM"
}
