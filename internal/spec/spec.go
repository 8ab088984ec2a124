// Package spec generates the OCI runtime spec (config.json) of a container from its docker-shaped
// configuration. The spec is built by small functional options (WithProcessArgs, WithMounts,
// WithResources, WithCapabilities, WithSeccomp, WithSystemContainer...), each testable alone;
// Generate applies them in the one order that makes the result right (capabilities before the
// seccomp profile, whose rules depend on them; mounts sorted last).
package spec

import (
	"path"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// ErrInvalid marks errors caused by the user's configuration (bad flag values, forbidden
// combinations): it is errdefs.ErrInvalidArgument. Test with errors.Is.
var ErrInvalid = errdefs.ErrInvalidArgument

func invalidf(format string, a ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, a...)
}

// Options is everything Generate needs. The daemon resolves what needs resolving (command,
// hostname, rootfs real path, cgroups path) before calling it.
type Options struct {
	ID          string
	Config      types.Config     // Cmd (non-empty), Env, User, WorkingDir, Tty, OpenStdin, Hostname
	HostConfig  types.HostConfig // resources, caps, privileged, security opts, system-container fields
	Rootfs      string           // absolute real path of the external rootfs
	Mounts      []types.Mount    // user mounts, parsed and validated (-v, --mount, --tmpfs)
	ExtraMounts []specs.Mount    // host-channel bind mounts; appended last, replace a default at the same destination
	Hostname    string           // resolved hostname
	EngineName  string           // "isulad": value of container= in system containers
	UserRemap   *IDMap           // parsed --user-remap or nil
	Hooks       *specs.Hooks     // parsed --hook-spec or nil
	CgroupsPath string           // absolute: <CgroupParent or /isulad>/<id>
}

// IDMap is a --user-remap: container id 0 maps to host UID/GID, Size ids long.
type IDMap struct{ UID, GID, Size uint32 }

// SpecOpt changes a spec under construction.
type SpecOpt func(*specs.Spec) error

// Host is what generation reads from the machine it runs on. Tests replace it.
type Host struct {
	Cgroups  cgroups.Layout
	CapBnd   []string // the daemon's bounding set (CAP_ names)
	ProcSys  string   // where to enumerate /proc/sys for --ns-change-opt
	DevRoot  string   // where to enumerate devices for --privileged
	PageSize int
}

// hostCgroups is the host's cgroup layout, read once per process: the cgroup mode and the
// name=systemd hierarchy do not change under a running daemon, and reading them parses the
// whole mount table, which grows with every container (with 100 pods, 4% of the daemon's CPU
// in bench/cri.sh when it was read for each spec).
var hostCgroups = sync.OnceValue(cgroups.Detect)

// boundingSet is the daemon's bounding set, read once per process: it can only shrink, and
// the daemon drops no capability (reading /proc/self/status was 0.05-0.1 ms of every create).
var boundingSetOnce = sync.OnceValues(BoundingSet)

func boundingSet() ([]string, error) {
	b, err := boundingSetOnce()
	return slices.Clone(b), err
}

// detectHost is replaced in tests.
var detectHost = func() (Host, error) {
	bnd, err := boundingSet()
	if err != nil {
		return Host{}, err
	}
	return Host{Cgroups: hostCgroups(), CapBnd: bnd, ProcSys: "/proc/sys", DevRoot: "/dev"}, nil
}

// Generate builds the OCI spec of a container.
func Generate(o Options) (*specs.Spec, error) {
	h, err := detectHost()
	if err != nil {
		return nil, err
	}
	return GenerateOn(h, o)
}

// GenerateOn is Generate for a described host.
func GenerateOn(h Host, o Options) (*specs.Spec, error) {
	if len(o.Config.Cmd) == 0 {
		return nil, invalidf("no command given")
	}
	if !path.IsAbs(o.Rootfs) {
		return nil, invalidf("rootfs %q is not an absolute path", o.Rootfs)
	}
	if o.CgroupsPath != "" && !path.IsAbs(o.CgroupsPath) {
		return nil, invalidf("cgroups path %q is not absolute", o.CgroupsPath)
	}
	hc := o.HostConfig
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	caps, err := Capabilities(h.CapBnd, hc.CapAdd, hc.CapDrop, hc.Privileged)
	if err != nil {
		return nil, err
	}
	if net, _, err := parseNsChangeOpt(hc.NsChangeOpt); err == nil && net && hc.NsChangeOpt != "" {
		// Writing /proc/sys/net needs CAP_NET_ADMIN; it acts on the container's own network
		// namespace only (--ns-change-opt net is refused with --net host).
		if c := "CAP_NET_ADMIN"; !slices.Contains(caps, c) && slices.Contains(h.CapBnd, c) && !dropped(hc.CapDrop, c) {
			caps = append(caps, c)
		}
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = o.Config.Hostname
	}
	env := o.Config.Env
	if hc.SystemContainer {
		env = append([]string{"container=" + engineName(o.EngineName)}, env...)
	}

	s := Default()
	opts := []SpecOpt{
		WithRootfs(o.Rootfs, hc.ReadonlyRootfs),
		WithProcessArgs(o.Config.Cmd...),
		WithTTY(o.Config.Tty),
		WithHostname(hostname),
		WithEnv(hostname, o.Config.Tty, env),
		WithCwd(o.Config.WorkingDir),
		WithUser(o.Rootfs, o.Config.User),
		WithNamespaces(hc.NetworkMode, hc.SystemContainer || h.Cgroups.Mode == cgroups.V2),
		WithCgroupsPath(o.CgroupsPath),
		WithCapabilities(caps),
		WithNoNewPrivileges(sec.noNewPrivileges),
	}
	if hc.Privileged {
		opts = append(opts, WithPrivileged(h.DevRoot))
	}
	if hc.SystemContainer {
		opts = append(opts, WithSystemContainer(SystemContainer{
			Cgroups:     h.Cgroups,
			CgroupsPath: o.CgroupsPath,
			Memory:      hc.Memory,
			Privileged:  hc.Privileged,
			CapBnd:      h.CapBnd,
			CapDrop:     hc.CapDrop,
		}))
	}
	if hc.NsChangeOpt != "" {
		opts = append(opts, WithNsChangeOpt(hc.NsChangeOpt, h.ProcSys))
	}
	if o.UserRemap != nil {
		opts = append(opts, WithUserRemap(*o.UserRemap))
		if hc.SystemContainer {
			opts = append(opts, WithCgroupChown(h.Cgroups, o.CgroupsPath, *o.UserRemap))
		}
	}
	opts = append(opts,
		WithResources(hc),
		WithMounts(o.Mounts),
		WithHostChannelMounts(o.ExtraMounts),
	)
	if !hc.Privileged || sec.seccomp != "" {
		opts = append(opts, WithSeccomp(sec.seccomp, hc.SystemContainer))
	}
	opts = append(opts, WithHooks(o.Hooks), withSortedMounts())
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func engineName(n string) string {
	if n == "" {
		return "isulad"
	}
	return n
}

// Default is docker's default container: private namespaces, default capabilities, masked
// and read-only /proc paths, the usual pseudo-filesystems, the default device allow list, no
// rlimits (hard limits above the daemon's would make runc fail) and no oom_score_adj.
func Default() *specs.Spec {
	return &specs.Spec{
		// crun 1.8 accepts only 1.0.x specs; every field used here exists in 1.0.2.
		Version: OCIVersion,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: []string{"sh"},
			Cwd:  "/",
			Env:  []string{"PATH=" + DefaultPath},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  slices.Clone(DefaultCaps),
				Effective: slices.Clone(DefaultCaps),
				Permitted: slices.Clone(DefaultCaps),
			},
		},
		Mounts: DefaultMounts(),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources:     &specs.LinuxResources{Devices: DefaultDeviceRules()},
			MaskedPaths:   slices.Clone(MaskedPaths),
			ReadonlyPaths: slices.Clone(ReadonlyPaths),
		},
	}
}

// OCIVersion is the ociVersion written in generated specs.
const OCIVersion = "1.0.2"

// DefaultPath is the PATH of a container whose environment sets none (docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MaskedPaths are docker's: hidden from the container (a /dev/null or empty tmpfs over them).
var MaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// ReadonlyPaths are docker's: bind-mounted read-only over themselves.
var ReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// DefaultMounts are docker's pseudo-filesystems.
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev", "relatime"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// DefaultDeviceRules is the device cgroup allow list of docker (deny all, then mknod of
// anything, and the usual character devices).
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	i := func(v int64) *int64 { return &v }
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "b", Access: "m"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},    // null
		{Allow: true, Type: "c", Major: i(1), Minor: i(8), Access: "rwm"},    // random
		{Allow: true, Type: "c", Major: i(1), Minor: i(7), Access: "rwm"},    // full
		{Allow: true, Type: "c", Major: i(5), Minor: i(0), Access: "rwm"},    // tty
		{Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "rwm"},    // zero
		{Allow: true, Type: "c", Major: i(1), Minor: i(9), Access: "rwm"},    // urandom
		{Allow: true, Type: "c", Major: i(5), Minor: i(1), Access: "rwm"},    // console
		{Allow: true, Type: "c", Major: i(136), Access: "rwm"},               // pts/*
		{Allow: true, Type: "c", Major: i(5), Minor: i(2), Access: "rwm"},    // ptmx
		{Allow: true, Type: "c", Major: i(10), Minor: i(200), Access: "rwm"}, // tun
	}
}

// securityOpts is the parsed --security-opt list.
type securityOpts struct {
	seccomp         string // "", "unconfined" or a profile path
	noNewPrivileges bool
}

func parseSecurityOpts(list []string) (securityOpts, error) {
	var so securityOpts
	for _, o := range list {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":") // docker's old form seccomp:FILE
		}
		switch {
		case k == "seccomp" && ok && v != "":
			so.seccomp = v
		case k == "no-new-privileges" && !ok:
			so.noNewPrivileges = true
		case k == "no-new-privileges" && (v == "true" || v == "false"):
			so.noNewPrivileges = v == "true"
		case (k == "apparmor" && v == "unconfined") || (k == "label" && v == "disable"):
			// No AppArmor or SELinux support: asking for none of it is fine.
		default:
			return so, invalidf("--security-opt %q: unsupported (want seccomp=unconfined, seccomp=FILE or no-new-privileges)", o)
		}
	}
	if so.seccomp != "" && so.seccomp != "unconfined" && !path.IsAbs(so.seccomp) {
		return so, invalidf("--security-opt seccomp=%s: the profile must be an absolute path (or unconfined)", so.seccomp)
	}
	return so, nil
}

// withSortedMounts orders mounts parents first (stable, by depth of the destination), so a
// user mount at /tmp/x comes after the /tmp tmpfs of a system container.
func withSortedMounts() SpecOpt {
	return func(s *specs.Spec) error {
		slices.SortStableFunc(s.Mounts, func(a, b specs.Mount) int {
			return depth(a.Destination) - depth(b.Destination)
		})
		return nil
	}
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// dropped tells whether --cap-drop names capability c (or ALL).
func dropped(drop []string, c string) bool {
	for _, d := range drop {
		if n, err := normalizeCap(d); err == nil && (n == c || n == "ALL") {
			return true
		}
	}
	return false
}
