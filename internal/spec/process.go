package spec

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithRootfs sets the root filesystem (the external rootfs' real path) and --read-only.
func WithRootfs(rootfs string, readonly bool) SpecOpt {
	return func(s *specs.Spec) error {
		s.Root = &specs.Root{Path: rootfs, Readonly: readonly}
		return nil
	}
}

// WithProcessArgs sets the command of the container's init.
func WithProcessArgs(args ...string) SpecOpt {
	return func(s *specs.Spec) error {
		if len(args) == 0 || args[0] == "" {
			return invalidf("no command given")
		}
		s.Process.Args = append([]string(nil), args...)
		return nil
	}
}

// WithTTY gives the container a terminal (-t).
func WithTTY(tty bool) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Terminal = tty
		return nil
	}
}

// WithHostname sets the hostname in the container's UTS namespace.
func WithHostname(h string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Hostname = h
		return nil
	}
}

// WithEnv builds the environment as docker does: PATH (default unless given), HOSTNAME,
// TERM=xterm with a terminal, then the user's variables; a later KEY= replaces an earlier one.
func WithEnv(hostname string, tty bool, env []string) SpecOpt {
	return func(s *specs.Spec) error {
		out := []string{"PATH=" + DefaultPath}
		if hostname != "" {
			out = append(out, "HOSTNAME="+hostname)
		}
		if tty {
			out = append(out, "TERM=xterm")
		}
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if k == "" {
				return invalidf("environment variable %q has no name", kv)
			}
			out = SetEnv(out, kv)
		}
		s.Process.Env = out
		return nil
	}
}

// SetEnv sets KEY=VALUE in env, replacing an earlier value of KEY.
func SetEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// WithCwd sets the working directory (-w); "" means /.
func WithCwd(dir string) SpecOpt {
	return func(s *specs.Spec) error {
		if dir == "" {
			dir = "/"
		}
		if !path.IsAbs(dir) {
			return invalidf("--workdir %q: must be an absolute path", dir)
		}
		s.Process.Cwd = path.Clean(dir)
		return nil
	}
}

// WithUser sets the user of the container's processes (-u): uid, uid:gid, name or
// name:group; names are looked up in the rootfs' /etc/passwd and /etc/group, and the user's
// supplementary groups are added as docker does.
func WithUser(rootfs, user string) SpecOpt {
	return func(s *specs.Spec) error {
		u, err := LookupUser(rootfs, user)
		if err != nil {
			return err
		}
		s.Process.User = u
		return nil
	}
}

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// LookupUser resolves -u (uid, uid:gid, name or name:group) against the rootfs's
// /etc/passwd and /etc/group.
func LookupUser(rootfs, user string) (specs.User, error) {
	if user == "" {
		return specs.User{}, nil
	}
	uStr, gStr, hasGroup := strings.Cut(user, ":")
	if uStr == "" || (hasGroup && gStr == "") {
		return specs.User{}, invalidf("--user %q: want user, uid, user:group or uid:gid", user)
	}
	passwd, err := readPasswd(rootfs)
	if err != nil {
		return specs.User{}, err
	}
	var u specs.User
	name := ""
	if id, err := strconv.ParseUint(uStr, 10, 32); err == nil {
		u.UID = uint32(id)
		for _, p := range passwd {
			if p.uid == u.UID {
				u.GID, name = p.gid, p.name
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == uStr {
				u.UID, u.GID, name, found = p.uid, p.gid, p.name, true
				break
			}
		}
		if !found {
			return specs.User{}, invalidf("--user %q: no user %q in the container's /etc/passwd", user, uStr)
		}
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return specs.User{}, err
	}
	if hasGroup {
		if id, err := strconv.ParseUint(gStr, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			found := false
			for _, g := range groups {
				if g.name == gStr {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return specs.User{}, invalidf("--user %q: no group %q in the container's /etc/group", user, gStr)
			}
		}
	}
	if name != "" && !hasGroup {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
				}
			}
		}
	}
	return u, nil
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readColonFile(rootfs, "/etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)})
		}
	})
	return out, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	var out []groupEntry
	err := readColonFile(rootfs, "/etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	})
	return out, err
}

// readColonFile reads a passwd-like file of the rootfs (resolved inside it); a missing file is
// empty.
func readColonFile(rootfs, name string, each func([]string)) error {
	if rootfs == "" {
		return nil
	}
	f, err := OpenInRoot(rootfs, name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		each(strings.Split(line, ":"))
	}
	return sc.Err()
}

// WithNoNewPrivileges sets no_new_privs (--security-opt no-new-privileges).
func WithNoNewPrivileges(on bool) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.NoNewPrivileges = on
		return nil
	}
}

// WithHooks adds OCI hooks (--hook-spec) after any already present.
func WithHooks(h *specs.Hooks) SpecOpt {
	return func(s *specs.Spec) error {
		if h == nil {
			return nil
		}
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		s.Hooks.Prestart = append(s.Hooks.Prestart, h.Prestart...) //nolint:staticcheck // runc 1.1 runs prestart
		s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, h.CreateRuntime...)
		s.Hooks.CreateContainer = append(s.Hooks.CreateContainer, h.CreateContainer...)
		s.Hooks.StartContainer = append(s.Hooks.StartContainer, h.StartContainer...)
		s.Hooks.Poststart = append(s.Hooks.Poststart, h.Poststart...)
		s.Hooks.Poststop = append(s.Hooks.Poststop, h.Poststop...)
		return nil
	}
}
