package spec

import (
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/internal/rootfs"
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
func WithUser(rootfsPath, user string) SpecOpt {
	return func(s *specs.Spec) error {
		u, err := rootfs.LookupUser(rootfsPath, user)
		if err != nil {
			return err
		}
		s.Process.User = u
		return nil
	}
}

// WithNoNewPrivileges sets no_new_privs (--security-opt no-new-privileges).
func WithNoNewPrivileges(on bool) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.NoNewPrivileges = on
		return nil
	}
}

// WithHooks adds OCI hooks (--hook-spec) after any already present. The deprecated prestart
// hooks are never set: ParseHookSpec makes them createRuntime hooks.
func WithHooks(h *specs.Hooks) SpecOpt {
	return func(s *specs.Spec) error {
		if h == nil {
			return nil
		}
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, h.CreateRuntime...)
		s.Hooks.CreateContainer = append(s.Hooks.CreateContainer, h.CreateContainer...)
		s.Hooks.StartContainer = append(s.Hooks.StartContainer, h.StartContainer...)
		s.Hooks.Poststart = append(s.Hooks.Poststart, h.Poststart...)
		s.Hooks.Poststop = append(s.Hooks.Poststop, h.Poststop...)
		return nil
	}
}
