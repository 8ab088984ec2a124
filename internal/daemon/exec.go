package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
)

// ExecStreams are the client's ends of an exec.
type ExecStreams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan [2]uint16
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
	return client.Exec(ctx, newID()[:16], proc, st.Stdin, st.Stdout, st.Stderr, st.Resize, ec.Detach)
}

// execProcess derives the exec's process from the container's own (capabilities, rlimits,
// apparmor and the rest stay the same), then applies the exec's options.
func (d *Daemon) execProcess(c *container.Container, ec types.ExecConfig) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(d.store.Dir(c.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	p := *s.Process
	p.Args = ec.Cmd
	p.Terminal = ec.Tty
	p.ConsoleSize = nil
	for _, e := range ec.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return nil, fmt.Errorf("exec --env %q: want KEY=VALUE: %w", e, errInvalid)
		}
		p.Env = setEnv(p.Env, e)
	}
	if ec.Tty {
		p.Env = setEnv(p.Env, "TERM=xterm")
	}
	if ec.WorkingDir != "" {
		if !filepath.IsAbs(ec.WorkingDir) {
			return nil, fmt.Errorf("exec --workdir %q: want an absolute path: %w", ec.WorkingDir, errInvalid)
		}
		p.Cwd = ec.WorkingDir
	}
	if ec.User != "" {
		u, err := resolveUser(c.Rootfs, ec.User)
		if err != nil {
			return nil, err
		}
		// With a user namespace the ids are the container's own; the runtime maps them.
		p.User = u
	}
	if ec.Privileged && p.Capabilities != nil {
		// Bounding set of the container is the limit; give the exec everything in it.
		p.Capabilities.Effective = p.Capabilities.Bounding
		p.Capabilities.Permitted = p.Capabilities.Bounding
		p.Capabilities.Inheritable = p.Capabilities.Bounding
	}
	return &p, nil
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// resolveUser turns "name", "uid", "name:group" or "uid:gid" into ids, reading the
// rootfs's /etc/passwd and /etc/group (never following a link out of the rootfs: the files
// are read through the rootfs path, and a missing file just means numeric ids only).
func resolveUser(rootfs, user string) (specs.User, error) {
	name, group, hasGroup := strings.Cut(user, ":")
	var u specs.User
	uid, err := strconv.ParseUint(name, 10, 32)
	found := false
	gid := uint64(0)
	if err == nil {
		u.UID = uint32(uid)
		found = true
	}
	for _, f := range readColonFile(rootfs, "/etc/passwd") {
		if len(f) < 4 {
			continue
		}
		if (err != nil && f[0] == name) || (err == nil && f[2] == name) {
			id, e1 := strconv.ParseUint(f[2], 10, 32)
			g, e2 := strconv.ParseUint(f[3], 10, 32)
			if e1 == nil && e2 == nil {
				u.UID, gid, found = uint32(id), g, true
			}
			break
		}
	}
	if !found {
		return u, fmt.Errorf("--user %q: no such user in the container's /etc/passwd: %w", user, errInvalid)
	}
	u.GID = uint32(gid)
	if hasGroup {
		g, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			ok := false
			for _, f := range readColonFile(rootfs, "/etc/group") {
				if len(f) >= 3 && f[0] == group {
					if g, err = strconv.ParseUint(f[2], 10, 32); err == nil {
						ok = true
					}
					break
				}
			}
			if !ok {
				return u, fmt.Errorf("--user %q: no such group in the container's /etc/group: %w", user, errInvalid)
			}
		}
		u.GID = uint32(g)
	}
	return u, nil
}

func readColonFile(rootfs, name string) [][]string {
	p := filepath.Join(rootfs, name)
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
