package opts

import (
	"encoding/csv"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/isulad-go/isulad/api/types"
)

// Mount types.
const (
	MountBind  = "bind"
	MountTmpfs = "tmpfs"
)

var propagations = map[string]bool{
	"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true,
}

const (
	volumeWant = "/host/path:/container/path[:OPTIONS] with OPTIONS from ro, rw, z, Z, private, rprivate, shared, rshared, slave, rslave"
	mountWant  = "type=bind,source=/host/path,target=/container/path[,readonly][,bind-propagation=P] or type=tmpfs,target=/container/path[,tmpfs-size=SIZE][,tmpfs-mode=OCTAL][,readonly]"
	tmpfsWant  = "/container/path[:OPTIONS] with OPTIONS from size=SIZE, mode=OCTAL, ro, rw, noexec, nosuid, nodev"
)

// MountVolume is the type ParseVolume gives a -v naming a volume; the daemon turns it into a
// bind of the volume's directory.
const MountVolume = "volume"

// volumeNameRe is docker's rule for volume names.
var volumeNameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) })

// ValidVolumeName tells whether s can name a volume (and so, as a -v source, is not a path).
func ValidVolumeName(s string) bool { return volumeNameRe().MatchString(s) }

// checkPath checks an absolute path and returns it cleaned. what is "source" or "target".
func checkPath(p, what string, allowRoot bool) (string, string) {
	switch {
	case p == "":
		return "", what + " is empty"
	case strings.IndexByte(p, 0) >= 0:
		return "", what + " contains a NUL byte"
	case !filepath.IsAbs(p):
		return "", what + " " + quote(p) + " is not an absolute path"
	}
	c := filepath.Clean(p)
	if c == "/" && !allowRoot {
		return "", what + " " + quote(p) + " is the root directory"
	}
	return c, ""
}

// ParseVolume parses one -v/--volume value, src:dst[:opts]. src is an absolute host path (a
// bind Mount) or the name of a volume (a Mount of type "volume" whose Source is the name;
// ValidVolumeName), dst an absolute container path other than "/"; both are cleaned. opts is a comma list of at most one of ro/rw, one of z/Z (accepted for docker
// compatibility; there is no SELinux relabelling) and one propagation mode. The result is a
// bind Mount. ParseVolume looks at no file system.
func ParseVolume(s string) (types.Mount, error) {
	bad := func(reason string) (types.Mount, error) {
		return types.Mount{}, newErr("--volume", s, reason, volumeWant)
	}
	fields := strings.Split(s, ":")
	if len(fields) < 2 || len(fields) > 3 {
		if len(fields) == 1 {
			return bad("no container path (anonymous volumes are not supported)")
		}
		return bad("too many colons")
	}
	typ := MountBind
	src, why := checkPath(fields[0], "source", true)
	if why != "" && ValidVolumeName(fields[0]) {
		typ, src, why = MountVolume, fields[0], ""
	}
	if why != "" {
		if fields[0] != "" && !strings.HasPrefix(fields[0], "/") {
			why += " (nor a volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]+)"
		}
		return bad(why)
	}
	dst, why := checkPath(fields[1], "target", false)
	if why != "" {
		return bad(why)
	}
	m := types.Mount{Type: typ, Source: src, Target: dst}
	if len(fields) == 3 {
		var rw, label bool
		for _, o := range strings.Split(fields[2], ",") {
			switch {
			case o == "ro" || o == "rw":
				if rw {
					return bad("more than one of ro and rw")
				}
				rw = true
				m.ReadOnly = o == "ro"
			case o == "z" || o == "Z":
				if label {
					return bad("more than one of z and Z")
				}
				label = true
			case propagations[o]:
				if m.Propagation != "" {
					return bad("more than one propagation mode")
				}
				m.Propagation = o
			case o == "":
				return bad("empty option")
			default:
				return bad("unknown option " + quote(o))
			}
		}
	}
	return m, nil
}

// ParseMount parses one --mount value: comma-separated key=value fields (CSV quoting allowed,
// as docker), keys case-insensitive: type (bind or tmpfs, required), source/src,
// target/destination/dst, readonly/ro (bare, or =true/false/1/0), bind-propagation,
// tmpfs-size, tmpfs-mode (octal). Keys must not repeat and must fit the type.
func ParseMount(s string) (types.Mount, error) {
	bad := func(reason string) (types.Mount, error) {
		return types.Mount{}, newErr("--mount", s, reason, mountWant)
	}
	if s == "" {
		return bad("empty")
	}
	if strings.ContainsAny(s, "\r\n") {
		return bad("contains a line break")
	}
	r := csv.NewReader(strings.NewReader(s))
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return bad("cannot split into fields")
	}
	var m types.Mount
	var src, tmpfsSize, tmpfsMode, prop string
	seen := map[string]bool{}
	for _, f := range fields {
		k, v, hasValue := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		canon := k
		switch k {
		case "src":
			canon = "source"
		case "destination", "dst":
			canon = "target"
		case "ro":
			canon = "readonly"
		}
		if canon == "" {
			return bad("empty field")
		}
		if seen[canon] {
			return bad("field " + quote(canon) + " given twice")
		}
		seen[canon] = true
		if !hasValue && canon != "readonly" {
			return bad("field " + quote(k) + " has no value")
		}
		switch canon {
		case "type":
			switch v {
			case MountBind, MountTmpfs:
				m.Type = v
			case "volume", "npipe", "cluster", "image":
				return bad("type " + quote(v) + " is not supported")
			default:
				return bad("unknown type " + quote(v))
			}
		case "source":
			src = v
		case "target":
			t, why := checkPath(v, "target", false)
			if why != "" {
				return bad(why)
			}
			m.Target = t
		case "readonly":
			if hasValue {
				switch strings.ToLower(v) {
				case "true", "1":
					m.ReadOnly = true
				case "false", "0":
					m.ReadOnly = false
				default:
					return bad("readonly value " + quote(v) + " is not true, false, 1 or 0")
				}
			} else {
				m.ReadOnly = true
			}
		case "bind-propagation":
			prop = v
		case "tmpfs-size":
			tmpfsSize = v
		case "tmpfs-mode":
			tmpfsMode = v
		default:
			return bad("unknown field " + quote(k))
		}
	}
	switch m.Type {
	case "":
		return bad("no type")
	case MountBind:
		if !seen["source"] {
			return bad("a bind mount needs a source")
		}
		p, why := checkPath(src, "source", true)
		if why != "" {
			return bad(why)
		}
		m.Source = p
		if seen["tmpfs-size"] || seen["tmpfs-mode"] {
			return bad("tmpfs-size and tmpfs-mode are for type=tmpfs")
		}
		if seen["bind-propagation"] {
			if !propagations[prop] {
				return bad("bind-propagation " + quote(prop) + " is not one of private, rprivate, shared, rshared, slave, rslave")
			}
			m.Propagation = prop
		}
	case MountTmpfs:
		if seen["source"] {
			return bad("a tmpfs mount takes no source")
		}
		if seen["bind-propagation"] {
			return bad("bind-propagation is for type=bind")
		}
		if seen["tmpfs-size"] {
			n, err := parseSize("--mount", tmpfsSize)
			if err != nil || n <= 0 {
				return bad("tmpfs-size " + quote(tmpfsSize) + " is not a size above 0 such as 64m")
			}
			m.TmpfsSize = n
		}
		if seen["tmpfs-mode"] {
			mode, ok := parseMode(tmpfsMode)
			if !ok {
				return bad("tmpfs-mode " + quote(tmpfsMode) + " is not an octal mode from 1 to 7777 such as 1777")
			}
			m.TmpfsMode = mode
		}
	}
	if !seen["target"] {
		return bad("no target")
	}
	return m, nil
}

// parseMode parses an octal file mode 1..07777.
func parseMode(s string) (uint32, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n == 0 || n > 0o7777 {
		return 0, false
	}
	return uint32(n), true
}

// ParseTmpfs parses one --tmpfs value: /container/path[:OPTIONS], OPTIONS a comma list of
// size=SIZE (above 0), mode=OCTAL, ro, rw, and noexec, nosuid, nodev (always applied by the
// engine, so accepted as no-ops). Other tmpfs options are refused.
func ParseTmpfs(s string) (types.Mount, error) {
	dst, o, hasOpts := strings.Cut(s, ":")
	if hasOpts && o == "" {
		return types.Mount{}, newErr("--tmpfs", s, "empty options after the colon", tmpfsWant)
	}
	return tmpfsEntry(s, dst, o)
}

// TmpfsEntry parses one element of HostConfig.Tmpfs (target -> options), as ParseTmpfs.
func TmpfsEntry(target, options string) (types.Mount, error) {
	s := target
	if options != "" {
		s += ":" + options
	}
	return tmpfsEntry(s, target, options)
}

func tmpfsEntry(s, dst, o string) (types.Mount, error) {
	bad := func(reason string) (types.Mount, error) {
		return types.Mount{}, newErr("--tmpfs", s, reason, tmpfsWant)
	}
	t, why := checkPath(dst, "target", false)
	if why != "" {
		return bad(why)
	}
	m := types.Mount{Type: MountTmpfs, Target: t}
	if strings.IndexByte(o, ':') >= 0 {
		return bad("too many colons")
	}
	if o == "" {
		return m, nil
	}
	seen := map[string]bool{}
	for _, opt := range strings.Split(o, ",") {
		k, v, hasValue := strings.Cut(opt, "=")
		key := k
		if k == "ro" || k == "rw" {
			key = "ro/rw"
		}
		if seen[key] {
			return bad("option " + quote(k) + " given twice or with its opposite")
		}
		seen[key] = true
		switch k {
		case "size":
			n, err := parseSize("--tmpfs", v)
			if !hasValue || err != nil || n <= 0 {
				return bad("size " + quote(v) + " is not a size above 0 such as 64m")
			}
			m.TmpfsSize = n
		case "mode":
			mode, ok := parseMode(v)
			if !hasValue || !ok {
				return bad("mode " + quote(v) + " is not an octal mode from 1 to 7777 such as 1777")
			}
			m.TmpfsMode = mode
		case "ro", "rw", "noexec", "nosuid", "nodev":
			if hasValue {
				return bad("option " + quote(k) + " takes no value")
			}
			if k == "ro" {
				m.ReadOnly = true
			}
		case "":
			return bad("empty option")
		default:
			return bad("unsupported option " + quote(k))
		}
	}
	return m, nil
}

// ValidateMount checks one element of HostConfig.Mounts as it comes from the API and returns
// it with clean paths.
func ValidateMount(m types.Mount) (types.Mount, error) {
	desc := m.Type + " mount " + m.Source + ":" + m.Target
	bad := func(reason string) (types.Mount, error) {
		return types.Mount{}, newErr("--mount", desc, reason, mountWant)
	}
	t, why := checkPath(m.Target, "target", false)
	if why != "" {
		return bad(why)
	}
	m.Target = t
	switch m.Type {
	case MountBind:
		s, why := checkPath(m.Source, "source", true)
		if why != "" {
			return bad(why)
		}
		m.Source = s
		if m.Propagation != "" && !propagations[m.Propagation] {
			return bad("unknown propagation " + quote(m.Propagation))
		}
		if m.TmpfsSize != 0 || m.TmpfsMode != 0 {
			return bad("tmpfs-size and tmpfs-mode are for type=tmpfs")
		}
	case MountTmpfs:
		if m.Source != "" {
			return bad("a tmpfs mount takes no source")
		}
		if m.Propagation != "" {
			return bad("bind-propagation is for type=bind")
		}
		if m.TmpfsSize < 0 {
			return bad("negative tmpfs-size")
		}
		if m.TmpfsMode > 0o7777 {
			return bad("tmpfs-mode above 7777")
		}
	default:
		return bad("unknown type " + quote(m.Type))
	}
	return m, nil
}

// UserMounts returns every user mount of a host config in one list: the -v binds
// (HostConfig.Binds, parsed with ParseVolume), then --mount (HostConfig.Mounts, checked with
// ValidateMount), then --tmpfs (HostConfig.Tmpfs, sorted by target). Two mounts on one
// container path are refused.
func UserMounts(hc *types.HostConfig) ([]types.Mount, error) {
	var out []types.Mount
	for _, b := range hc.Binds {
		m, err := ParseVolume(b)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, m := range hc.Mounts {
		c, err := ValidateMount(m)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	targets := make([]string, 0, len(hc.Tmpfs))
	for t := range hc.Tmpfs {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		m, err := TmpfsEntry(t, hc.Tmpfs[t])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	seen := map[string]bool{}
	for _, m := range out {
		if seen[m.Target] {
			return nil, invalidf("duplicate mount point %s (-v, --mount and --tmpfs targets must differ)", m.Target)
		}
		seen[m.Target] = true
	}
	return out, nil
}
