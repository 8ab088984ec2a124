package daemon

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/rootfs"
	"github.com/isulad-go/isulad/internal/shim"
	"github.com/isulad-go/isulad/internal/spec"
)

// ExecStreams are the client's ends of an exec.
type ExecStreams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan [2]uint16
	Width, Height  uint16 // initial terminal size
	// KillOnCancel: the process is killed when ctx ends before it exited (the CRI's exec).
	KillOnCancel bool
}

// Exec runs a process in a running container and returns its exit code.
func (d *Daemon) Exec(ctx context.Context, c *container.Container, ec types.ExecConfig, st ExecStreams) (int, error) {
	if len(ec.Cmd) == 0 || ec.Cmd[0] == "" {
		return 0, fmt.Errorf("exec: no command given: %w", errInvalid)
	}
	switch c.Status() {
	case container.Running:
	case container.Paused:
		return 0, fmt.Errorf("container %s is paused: unpause it first: %w", c.Name, errConflict)
	default:
		return 0, fmt.Errorf("container %s is not running: %w", c.Name, errConflict)
	}
	client := d.getShim(c.ID)
	if client == nil {
		return 0, fmt.Errorf("container %s has no shim connection: %w", c.Name, errConflict)
	}
	proc, err := d.execProcess(c, ec)
	if err != nil {
		return 0, err
	}
	if ec.Tty && st.Width > 0 && st.Height > 0 {
		proc.ConsoleSize = &specs.Box{Width: uint(st.Width), Height: uint(st.Height)}
	}
	execID := newID()[:16]
	cmd := strings.Join(ec.Cmd, " ")
	d.event(c, "exec_create", "execID", execID, "command", cmd)
	d.event(c, "exec_start", "execID", execID, "command", cmd)
	code, err := client.Exec(ctx, execID, proc, st.Stdin, st.Stdout, st.Stderr, st.Resize,
		shim.ExecOptions{Detach: ec.Detach, KillOnCancel: st.KillOnCancel})
	if err == nil && !ec.Detach {
		d.event(c, "exec_die", "execID", execID, "exitCode", strconv.Itoa(code))
	}
	return code, err
}

// execProcess derives the exec's process from the container's own (capabilities, rlimits,
// apparmor and the rest stay the same), then applies the exec's options.
func (d *Daemon) execProcess(c *container.Container, ec types.ExecConfig) (*specs.Process, error) {
	s, err := d.loadSpec(c)
	if err != nil {
		return nil, err
	}
	return execProcessOf(s.Process, c.Rootfs, ec)
}

// execProcessOf is the exec's process, derived from the container's process base (left as
// it is) in the rootfs rootfsPath.
func execProcessOf(base *specs.Process, rootfsPath string, ec types.ExecConfig) (*specs.Process, error) {
	p := *base
	p.Args = ec.Cmd
	p.Terminal = ec.Tty
	p.ConsoleSize = nil
	for _, e := range ec.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return nil, fmt.Errorf("exec --env %q: want KEY=VALUE: %w", e, errInvalid)
		}
		p.Env = spec.SetEnv(p.Env, e)
	}
	if ec.Tty {
		p.Env = spec.SetEnv(p.Env, "TERM=xterm")
	}
	if ec.WorkingDir != "" {
		if !filepath.IsAbs(ec.WorkingDir) {
			return nil, fmt.Errorf("exec --workdir %q: want an absolute path: %w", ec.WorkingDir, errInvalid)
		}
		p.Cwd = ec.WorkingDir
	}
	if ec.User != "" {
		u, err := rootfs.LookupUser(rootfsPath, ec.User)
		if err != nil {
			return nil, err
		}
		// With a user namespace the ids are the container's own; the runtime maps them.
		p.User = u
	}
	if ec.Privileged && p.Capabilities != nil {
		// The container's bounding set is the limit: the exec gets all of it as effective and
		// permitted. Inheritable (and ambient) stay empty as at create: an inheritable set would
		// hand the capabilities to any file-capability binary the container's user runs
		// (CVE-2022-29162).
		caps := *p.Capabilities
		caps.Effective = slices.Clone(caps.Bounding)
		caps.Permitted = slices.Clone(caps.Bounding)
		caps.Inheritable = nil
		caps.Ambient = nil
		p.Capabilities = &caps
	}
	return &p, nil
}
