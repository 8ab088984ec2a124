package opts

import (
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/image/refcheck"
)

// MinMemory is the smallest -m docker accepts (6 MiB).
const MinMemory = 6 << 20

// NumCPU is the host's CPU count for the --cpus range check (a variable for tests).
var NumCPU = runtime.NumCPU

var capabilities = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID
		SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK
		IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
		SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
		MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
		CHECKPOINT_RESTORE`) {
		capabilities["CAP_"+c] = true
	}
}

// NormalizeCapability returns a --cap-add/--cap-drop value in canonical form: "ALL" or
// "CAP_NAME" in upper case ("net_admin", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN").
func NormalizeCapability(flag, s string) (string, error) {
	u := strings.ToUpper(s)
	if u == "ALL" {
		return "ALL", nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !capabilities[u] {
		return "", newErr(flag, s, "unknown capability", "ALL or a Linux capability such as NET_ADMIN or CAP_SYS_TIME")
	}
	return u, nil
}

// NormalizeCapabilities applies NormalizeCapability to a list.
func NormalizeCapabilities(flag string, list []string) ([]string, error) {
	var out []string
	for _, c := range list {
		n, err := NormalizeCapability(flag, c)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

const securityOptWant = "seccomp=unconfined, seccomp=/abs/profile.json or no-new-privileges[=true|false]"

// ValidateSecurityOpt checks one --security-opt value.
func ValidateSecurityOpt(s string) error {
	k, v, hasValue := strings.Cut(s, "=")
	if !hasValue {
		k, v, hasValue = strings.Cut(s, ":")
	}
	switch k {
	case "seccomp":
		switch {
		case v == "unconfined":
		case strings.HasPrefix(strings.TrimSpace(v), "{"): // a profile sent inline (API)
		case filepath.IsAbs(v) && strings.IndexByte(v, 0) < 0:
		default:
			return newErr("--security-opt", s, "", securityOptWant)
		}
		return nil
	case "no-new-privileges":
		if !hasValue {
			return nil
		}
		if _, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			return nil
		}
	}
	return newErr("--security-opt", s, "", securityOptWant)
}

// ParseUserRemap parses --user-remap uid:gid:offset: container root becomes host uid/gid,
// offset ids long (1..65535).
func ParseUserRemap(s string) (uid, gid, size uint32, err error) {
	const want = "uid:gid:offset, e.g. 100000:100000:65535, offset from 1 to 65535"
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return 0, 0, 0, newErr("--user-remap", s, "", want)
	}
	var n [3]uint64
	for i, x := range f {
		if !isDigits(x) || len(x) > 10 {
			return 0, 0, 0, newErr("--user-remap", s, "", want)
		}
		n[i], _ = strconv.ParseUint(x, 10, 64)
	}
	if n[2] < 1 || n[2] > 65535 {
		return 0, 0, 0, newErr("--user-remap", s, "offset out of range", want)
	}
	const maxID = 1<<32 - 2 // 4294967295 is (uid_t)-1
	if n[0]+n[2]-1 > maxID || n[1]+n[2]-1 > maxID {
		return 0, 0, 0, newErr("--user-remap", s, "the id range overflows 32 bits", want)
	}
	return uint32(n[0]), uint32(n[1]), uint32(n[2]), nil
}

// ParseNsChangeOpt parses --ns-change-opt: a comma list of net and ipc.
func ParseNsChangeOpt(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, x := range strings.Split(s, ",") {
		if (x != "net" && x != "ipc") || seen[x] {
			return nil, newErr("--ns-change-opt", s, "", "net, ipc or net,ipc")
		}
		seen[x] = true
		out = append(out, x)
	}
	return out, nil
}

var hostnameRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?)*$`)
})

// ValidateHostname checks -h/--hostname: labels of letters, digits, "-" and "_", dot
// separated, at most 64 bytes (the kernel's limit).
func ValidateHostname(s string) error {
	if len(s) > 64 || !hostnameRe().MatchString(s) {
		return newErr("--hostname", s, "", "a host name of letters, digits, '-', '_' and '.', at most 64 characters")
	}
	return nil
}

var runtimeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// ValidateLogOpts checks --log-opt keys: max-size (a size above 0) and max-file (1..1000).
func ValidateLogOpts(cfg map[string]string) error {
	for k, v := range cfg {
		switch k {
		case "max-size":
			if n, err := parseSize("--log-opt", v); err != nil || n <= 0 {
				return newErr("--log-opt", k+"="+v, "", "max-size=SIZE above 0, e.g. 10m")
			}
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || !isDigits(v) || n < 1 || n > 1000 {
				return newErr("--log-opt", k+"="+v, "", "max-file=N with N from 1 to 1000")
			}
		default:
			return newErr("--log-opt", k+"="+v, "unknown option", "max-size=SIZE or max-file=N")
		}
	}
	return nil
}

func cleanPathFlag(flag, p string, mustAbs bool) error {
	if strings.IndexByte(p, 0) >= 0 {
		return newErr(flag, p, "contains a NUL byte", "a path")
	}
	if mustAbs && !filepath.IsAbs(p) {
		return newErr(flag, p, "not an absolute path", "an absolute path")
	}
	return nil
}

// ValidateCreate checks a whole create request as the daemon receives it (the client runs it
// too, before sending). It checks values and combinations only; what needs the host (the
// rootfs exists, host channels, runtimes) is the daemon's job. It normalizes in place: the
// name loses a leading "/", capabilities become CAP_X, an empty restart policy becomes "no".
func ValidateCreate(req *types.CreateRequest) error {
	if req.Name != "" {
		n, err := NormalizeName(req.Name)
		if err != nil {
			return err
		}
		req.Name = n
	}
	c, hc := &req.Config, &req.HostConfig

	// Image and rootfs.
	switch {
	case c.Image == "":
		return invalidf("no image given (want an image name, or none with --external-rootfs DIR)")
	case hc.ExternalRootfs == "" && c.Image == "none":
		return invalidf("image none needs --external-rootfs DIR (the root file system to run)")
	case c.Image != "none" && !refcheck.IsID(c.Image):
		// An image: its rootfs (or --external-rootfs DIR) with its config. Checked with
		// distribution's grammar where internal/image/reference is linked (the daemon, the
		// full client); the front decides only plain references (refcheck).
		if err := refcheck.Check(c.Image); err != nil {
			return err
		}
	}
	if hc.ExternalRootfs != "" {
		if err := cleanPathFlag("--external-rootfs", hc.ExternalRootfs, true); err != nil {
			return err
		}
	}

	if c.Hostname != "" {
		if err := ValidateHostname(c.Hostname); err != nil {
			return err
		}
	}
	if err := ValidateEnv(c.Env); err != nil {
		return err
	}
	if c.WorkingDir != "" {
		if err := cleanPathFlag("--workdir", c.WorkingDir, true); err != nil {
			return err
		}
	}
	if c.User != "" {
		if strings.Count(c.User, ":") > 1 || strings.HasPrefix(c.User, ":") || strings.HasSuffix(c.User, ":") ||
			strings.ContainsAny(c.User, "\x00\n ") {
			return newErr("--user", c.User, "", "name|uid[:group|gid]")
		}
	}
	if c.StopSignal != "" {
		if _, err := ParseSignal(c.StopSignal); err != nil {
			return WithFlag(err, "--stop-signal")
		}
	}
	if c.StopTimeout != nil && *c.StopTimeout < 0 {
		return invalidf("invalid stop timeout %d (want 0 or more seconds)", *c.StopTimeout)
	}
	for _, x := range c.Cmd {
		if strings.IndexByte(x, 0) >= 0 {
			return invalidf("invalid command %q: contains a NUL byte", x)
		}
	}

	// Mounts.
	if _, err := UserMounts(hc); err != nil {
		return err
	}

	// Resources.
	if hc.Memory < 0 {
		return invalidf("invalid --memory %d (want 0 for no limit, or at least 6MiB)", hc.Memory)
	}
	if hc.Memory > 0 && hc.Memory < MinMemory {
		return invalidf("invalid --memory %d: the minimum memory limit is 6MiB (6291456 bytes)", hc.Memory)
	}
	switch {
	case hc.MemorySwap == 0, hc.MemorySwap == -1 && hc.Memory > 0:
	case hc.MemorySwap < -1:
		return invalidf("invalid --memory-swap %d (want -1 for unlimited, or a size)", hc.MemorySwap)
	case hc.Memory == 0:
		return invalidf("--memory-swap needs --memory (the swap limit counts memory plus swap)")
	case hc.MemorySwap < hc.Memory:
		return invalidf("invalid --memory-swap %d: it must be at least --memory %d (it counts memory plus swap)", hc.MemorySwap, hc.Memory)
	}
	if hc.CPUShares < 0 || (hc.CPUShares > 0 && hc.CPUShares < 2) || hc.CPUShares > 262144 {
		return invalidf("invalid --cpu-shares %d (want 2 to 262144, or 0 for the default)", hc.CPUShares)
	}
	if hc.NanoCPUs < 0 {
		return invalidf("invalid --cpus: negative value")
	}
	if hc.NanoCPUs > 0 {
		n := int64(NumCPU())
		if hc.NanoCPUs < 1e7 || hc.NanoCPUs > n*1e9 {
			return invalidf("invalid --cpus %s: the range is 0.01 to %d, as there are %d CPUs", strconv.FormatFloat(float64(hc.NanoCPUs)/1e9, 'f', -1, 64), n, n)
		}
	}
	if hc.PidsLimit != nil && *hc.PidsLimit < -1 {
		return invalidf("invalid --pids-limit %d (want -1 or 0 for no limit, or a positive number)", *hc.PidsLimit)
	}
	if hc.CgroupParent != "" {
		if strings.IndexByte(hc.CgroupParent, 0) >= 0 || strings.Contains("/"+hc.CgroupParent+"/", "/../") {
			return newErr("--cgroup-parent", hc.CgroupParent, "", "a cgroup path without .. components")
		}
	}

	// Security.
	var err error
	if hc.CapAdd, err = NormalizeCapabilities("--cap-add", hc.CapAdd); err != nil {
		return err
	}
	if hc.CapDrop, err = NormalizeCapabilities("--cap-drop", hc.CapDrop); err != nil {
		return err
	}
	for _, o := range hc.SecurityOpt {
		if err := ValidateSecurityOpt(o); err != nil {
			return err
		}
	}

	// Lifecycle.
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = RestartNo
	}
	if err := ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return err
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != RestartNo {
		return invalidf("conflicting options: --restart %s and --rm (a container removed at exit cannot be restarted)", hc.RestartPolicy.Name)
	}
	if hc.Runtime != "" && !runtimeRe().MatchString(hc.Runtime) {
		return newErr("--runtime", hc.Runtime, "", "a runtime name such as runc or crun")
	}
	if err := validateNetworking(c, hc); err != nil { // network.go
		return err
	}
	if hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file" {
		return newErr("--log-driver", hc.LogConfig.Type, "", "json-file")
	}
	if err := ValidateLogOpts(hc.LogConfig.Config); err != nil {
		return err
	}

	// System containers.
	if hc.NsChangeOpt != "" {
		if !hc.SystemContainer {
			return invalidf("--ns-change-opt needs --system-container")
		}
		if _, err := ParseNsChangeOpt(hc.NsChangeOpt); err != nil {
			return err
		}
	}
	if hc.UserRemap != "" {
		// The rootfs is --external-rootfs DIR (shifted by its owner) or an image (its
		// layers id-mapped at mount).
		if !hc.SystemContainer {
			return invalidf("--user-remap needs --system-container")
		}
		if _, _, _, err := ParseUserRemap(hc.UserRemap); err != nil {
			return err
		}
	}
	if hc.EnvTargetFile != "" {
		if err := cleanPathFlag("--env-target-file", hc.EnvTargetFile, true); err != nil {
			return err
		}
	}
	if hc.HookSpec != "" {
		if err := cleanPathFlag("--hook-spec", hc.HookSpec, true); err != nil {
			return err
		}
	}
	if hc.HostChannel != nil && len(hc.HostChannels) == 0 {
		hc.HostChannels = []types.HostChannel{*hc.HostChannel}
	}
	if len(hc.HostChannels) > 0 {
		first := hc.HostChannels[0]
		hc.HostChannel = &first
	}
	return nil
}
