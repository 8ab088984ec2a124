package spec

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/internal/rootfs"
)

// capNames are the capabilities by bit number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// DefaultCaps is docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// SystemContainerCaps are added to a system container's set: reboot/shutdown from inside
// (SYS_BOOT).
var SystemContainerCaps = []string{"CAP_SYS_BOOT"}

// BoundingSet reads the daemon's own capability bounding set: no container can get more
// (here CAP_SYS_RESOURCE is missing, so "all capabilities" must mean these).
func BoundingSet() ([]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("parsing CapBnd of /proc/self/status: %w", err)
			}
			return capsFromMask(mask), nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no CapBnd in /proc/self/status")
}

func capsFromMask(mask uint64) []string {
	var out []string
	for i, n := range capNames {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// normalizeCap turns "sys_admin", "CAP_SYS_ADMIN", "Sys_Admin" into "CAP_SYS_ADMIN"; "all"
// into "ALL".
func normalizeCap(c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !slices.Contains(capNames, u) {
		return "", fmt.Errorf("unknown capability %q", c)
	}
	return u, nil
}

// Capabilities computes the set as docker does: the default set, minus --cap-drop, plus
// --cap-add (ALL on either side meaning every capability); --privileged means every
// capability in the daemon's bounding set bnd. A capability outside bnd is refused, since the
// runtime could not grant it.
func Capabilities(bnd, add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		return slices.Clone(bnd), nil
	}
	var adds, drops []string
	for _, c := range add {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, invalidf("--cap-add: %v", err)
		}
		if n != "ALL" && !slices.Contains(bnd, n) {
			return nil, invalidf("--cap-add %s: the daemon does not hold this capability, so no container can get it", c)
		}
		adds = append(adds, n)
	}
	for _, c := range drop {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, invalidf("--cap-drop: %v", err)
		}
		drops = append(drops, n)
	}
	var caps []string
	switch {
	case slices.Contains(adds, "ALL"):
		caps = slices.Clone(bnd)
	case slices.Contains(drops, "ALL"):
		caps = nil
	default:
		for _, c := range DefaultCaps {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
	}
	if slices.Contains(adds, "ALL") {
		// docker: --cap-add ALL --cap-drop X keeps X dropped.
		caps = slices.DeleteFunc(caps, func(c string) bool { return slices.Contains(drops, c) })
	}
	for _, c := range adds {
		if c != "ALL" && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// WithCapabilities sets the bounding, effective and permitted sets (no inheritable or ambient
// capabilities, as docker since 23.0).
func WithCapabilities(caps []string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:  slices.Clone(caps),
			Effective: slices.Clone(caps),
			Permitted: slices.Clone(caps),
		}
		return nil
	}
}

// addCaps adds capabilities present in bnd to all sets, unless dropped.
func addCaps(s *specs.Spec, bnd, drop []string, caps ...string) {
	c := s.Process.Capabilities
	for _, n := range caps {
		if !slices.Contains(bnd, n) || slices.Contains(drop, n) {
			continue
		}
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted} {
			if !slices.Contains(*set, n) {
				*set = append(*set, n)
			}
		}
	}
}

// SystemContainerSyscalls are allowed in system containers whatever the capabilities: systemd
// mounts, unmounts, reboots, sets up namespaces for its services and identifies files by handle.
var SystemContainerSyscalls = []string{"mount", "umount2", "reboot", "name_to_handle_at", "unshare"}

// WithSeccomp sets the seccomp filter: profile "" is docker's default profile (moby's, whose
// rules depend on the capabilities, so this option must come after WithCapabilities),
// "unconfined" none, anything else the path of a JSON profile in docker's format. For system
// containers the syscalls systemd needs are allowed in addition.
func WithSeccomp(profile string, systemContainer bool) SpecOpt {
	return func(s *specs.Spec) error {
		var (
			sc  *specs.LinuxSeccomp
			err error
		)
		switch profile {
		case "unconfined":
			s.Linux.Seccomp = nil
			return nil
		case "":
			sc, err = seccomp.GetDefaultProfile(s)
			if err != nil {
				return fmt.Errorf("building the default seccomp profile: %w", err)
			}
		default:
			body, rerr := rootfs.ReadFile("/", profile, maxConfigFile)
			if rerr != nil {
				return invalidf("--security-opt seccomp=%s: %v", profile, rerr)
			}
			sc, err = seccomp.LoadProfile(string(body), s)
			if err != nil {
				return invalidf("--security-opt seccomp=%s: %v", profile, err)
			}
		}
		if sc != nil && systemContainer {
			sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
				Names:  slices.Clone(SystemContainerSyscalls),
				Action: specs.ActAllow,
			})
		}
		s.Linux.Seccomp = sc
		return nil
	}
}
