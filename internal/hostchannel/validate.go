package hostchannel

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"github.com/moby/sys/mountinfo"
)

// CheckContext is what Validate needs to know about the engine and the container.
type CheckContext struct {
	GraphDir, StateDir string   // engine dirs: a channel may not be inside or contain them
	Rootfs             string   // the container's rootfs
	MountDests         []string // container destinations of the container's other user mounts (-v, --mount, --tmpfs)
}

// pseudoFSTypes are the file systems a host path may not lie inside or contain.
var pseudoFSTypes = map[string]bool{
	"proc": true, "sysfs": true, "devtmpfs": true, "devpts": true, "cgroup": true, "cgroup2": true,
	"mqueue": true, "securityfs": true, "debugfs": true, "tracefs": true, "pstore": true, "bpf": true,
	"configfs": true, "fusectl": true, "binfmt_misc": true, "efivarfs": true, "nsfs": true,
	"hugetlbfs": true, "rpc_pipefs": true, "selinuxfs": true,
}

// Validate checks one container's list of channels before anything is created: every channel
// by itself (as Check does), duplicates and nesting among them, container paths against the
// container's other user mounts, host paths against pseudo-filesystems (/proc, /sys, /dev and
// every proc/sysfs/cgroup/... mount in /proc/self/mountinfo), the engine's directories and
// the container's rootfs, and finally the host file system: the host path must not exist,
// and every existing parent must be a real directory (not a symlink, not a file).
// Conflicts with other containers' channels are checked by Manager.Create (and
// Manager.Conflicts), which sees every record. It returns the channels in the normal form
// Check gives them.
func Validate(chs []types.HostChannel, c CheckContext) ([]types.HostChannel, error) {
	clean := make([]types.HostChannel, len(chs))
	for i, ch := range chs {
		cc, err := Check(ch)
		if err != nil {
			return nil, err
		}
		clean[i] = cc
	}
	if err := validateSet(clean, c); err != nil {
		return nil, err
	}
	return clean, nil
}

// validateSet is Validate's checks of checked channels against each other and the host.
func validateSet(clean []types.HostChannel, c CheckContext) error {
	for i := range clean {
		for j := 0; j < i; j++ {
			a, b := clean[i], clean[j]
			switch {
			case a.PathOnHost == b.PathOnHost:
				return errorf(ErrInvalid, "host path %q is given twice (want one channel per host path)", a.PathOnHost)
			case within(a.PathOnHost, b.PathOnHost):
				return errorf(ErrInvalid, "host path %q lies inside host path %q of another channel of this container (want separate directories)", a.PathOnHost, b.PathOnHost)
			case within(b.PathOnHost, a.PathOnHost):
				return errorf(ErrInvalid, "host path %q contains host path %q of another channel of this container (want separate directories)", a.PathOnHost, b.PathOnHost)
			case a.PathInContainer == b.PathInContainer:
				return errorf(ErrInvalid, "container path %q is given twice (want one channel per container path)", a.PathInContainer)
			case within(a.PathInContainer, b.PathInContainer):
				return errorf(ErrInvalid, "container path %q lies inside container path %q of another channel of this container (want separate directories)", a.PathInContainer, b.PathInContainer)
			case within(b.PathInContainer, a.PathInContainer):
				return errorf(ErrInvalid, "container path %q contains container path %q of another channel of this container (want separate directories)", a.PathInContainer, b.PathInContainer)
			}
		}
	}
	for _, ch := range clean {
		for _, d := range c.MountDests {
			if d != "" && filepath.Clean(d) == ch.PathInContainer {
				return errorf(ErrInvalid, "container path %q is also the destination of another mount of the container (-v, --mount or --tmpfs); want a different path", ch.PathInContainer)
			}
		}
	}
	pseudo, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return !pseudoFSTypes[i.FSType], false
	})
	if err != nil {
		return errorf(ErrInvalid, "cannot read /proc/self/mountinfo to check host paths: %v", err)
	}
	engine := []struct{ what, dir string }{
		{"the engine's graph directory (--graph)", c.GraphDir},
		{"the engine's state directory (--state)", c.StateDir},
		{"the container's rootfs", c.Rootfs},
	}
	for _, ch := range clean {
		hp := ch.PathOnHost
		for _, m := range pseudo {
			mp := filepath.Clean(m.Mountpoint)
			if within(hp, mp) {
				return errorf(ErrInvalid, "host path %q lies inside the %s filesystem mounted at %q (want a path outside pseudo-filesystems)", hp, m.FSType, mp)
			}
			if within(mp, hp) {
				return errorf(ErrInvalid, "host path %q contains the %s filesystem mounted at %q (want a path outside pseudo-filesystems)", hp, m.FSType, mp)
			}
		}
		for _, e := range engine {
			for _, d := range dirForms(e.dir) {
				if within(hp, d) {
					return errorf(ErrInvalid, "host path %q lies inside %s %q (want a path outside it)", hp, e.what, d)
				}
				if within(d, hp) {
					return errorf(ErrInvalid, "host path %q contains %s %q (want a path outside it)", hp, e.what, d)
				}
			}
		}
		if _, _, err := checkHostFS(hp); err != nil {
			return err
		}
	}
	return nil
}

// dirForms returns the clean form of an engine directory and, when it differs, the form with
// symlinks resolved: a host path has no symlinks in it (they are refused), so it must be
// compared with both.
func dirForms(d string) []string {
	if d == "" {
		return nil
	}
	d = filepath.Clean(d)
	if !filepath.IsAbs(d) {
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
	}
	out := []string{d}
	if r, err := filepath.EvalSymlinks(d); err == nil && r != d {
		out = append(out, r)
	}
	return out
}

// checkHostFS checks the host file system for a clean absolute host path: the path must not
// exist (as anything, a dangling symlink included) and each existing ancestor must be a real
// directory. It returns the existing ancestors and the ancestors that are missing (which
// Create will make), both ordered from the root down.
func checkHostFS(hp string) (existing, missing []string, err error) {
	if _, err := os.Lstat(hp); err == nil {
		return nil, nil, errorf(ErrExists, "host path %q already exists (want a path that does not exist yet; the engine creates it)", hp)
	}
	comps := strings.Split(strings.TrimPrefix(hp, "/"), "/")
	cur := "/"
	for i, c := range comps[:len(comps)-1] {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			for _, c2 := range comps[i : len(comps)-1] {
				if len(missing) == 0 {
					missing = append(missing, cur)
				} else {
					missing = append(missing, filepath.Join(missing[len(missing)-1], c2))
				}
			}
			break
		}
		if err != nil {
			return nil, nil, errorf(ErrInvalid, "host path %q: cannot check parent %q: %v", hp, cur, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			hint := ""
			if r, err := filepath.EvalSymlinks(cur); err == nil {
				hint = ", e.g. " + strings.TrimSuffix(r, "/") + strings.TrimPrefix(hp, cur)
			}
			return nil, nil, errorf(ErrInvalid, "host path %q: parent %q is a symbolic link (want a path without symbolic links%s)", hp, cur, hint)
		}
		if !fi.IsDir() {
			return nil, nil, errorf(ErrInvalid, "host path %q: parent %q is not a directory (want a path below directories)", hp, cur)
		}
		existing = append(existing, cur)
	}
	return existing, missing, nil
}
