package hostchannel

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// CheckContext is what Validate needs to know about the engine and the container.
type CheckContext struct {
	GraphDir, StateDir string   // engine dirs: a channel may not be inside or contain them
	Rootfs             string   // the container's rootfs
	OtherRootfs        []string // the rootfs of every other container: a channel may not be inside or contain them
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
// by itself (as Check does), duplicates and nesting among them, the sum of their sizes (at
// most half of the host's memory), host paths against pseudo-filesystems (/proc, /sys, /dev
// and every proc/sysfs/cgroup/... mount in /proc/self/mountinfo), the engine's directories,
// the container's rootfs and every other container's, the host file system (the host path
// must not exist, and every existing parent must be a real directory, not a symlink or a
// file), and finally container paths against the container's other user mounts and its
// rootfs (a directory there, or nothing yet).
// Conflicts with other containers' channels are checked by Manager.Create (and
// Manager.Conflicts), which sees every record. It returns the channels in the normal form
// Check gives them.
func Validate(chs []types.HostChannel, c CheckContext) ([]types.HostChannel, error) {
	clean := make([]types.HostChannel, len(chs))
	if len(chs) == 0 {
		// Nothing to check, and no reason to read the mount table: it grows with every pod
		// and container, and every create of one without channels came here to parse it.
		return clean, nil
	}
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
	if err := checkSum(clean); err != nil {
		return err
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
	for _, r := range c.OtherRootfs {
		engine = append(engine, struct{ what, dir string }{"the rootfs of another container", r})
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
	return checkContainerSide(clean, c)
}

// checkContainerSide checks container paths against the container's other mounts and its
// rootfs.
func checkContainerSide(clean []types.HostChannel, c CheckContext) error {
	for _, ch := range clean {
		underMount := false
		for _, d := range c.MountDests {
			if d == "" {
				continue
			}
			if filepath.Clean(d) == ch.PathInContainer {
				return errorf(ErrInvalid, "container path %q is also the destination of another mount of the container (-v, --mount or --tmpfs); want a different path", ch.PathInContainer)
			}
			underMount = underMount || within(ch.PathInContainer, filepath.Clean(d))
		}
		if c.Rootfs != "" && !underMount {
			if err := checkInRootfs(c.Rootfs, ch.PathInContainer); err != nil {
				return err
			}
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

// checkSum refuses channels whose sizes add up to more than half of the host's memory: each
// size is checked alone by Check, but the sum is what the host pays.
func checkSum(chs []types.HostChannel) error {
	if len(chs) < 2 {
		return nil
	}
	total, _, err := readMeminfo()
	if err != nil {
		return errorf(ErrInvalid, "cannot check the channels' sizes against the host's memory: %v", err)
	}
	var sum int64
	sizes := make([]string, len(chs))
	for i, ch := range chs {
		sizes[i] = strconv.FormatInt(ch.Size, 10)
		if sum > math.MaxInt64-ch.Size {
			sum = math.MaxInt64
		} else {
			sum += ch.Size
		}
	}
	if sum > total/2 {
		return errorf(ErrInvalid, "sizes %s add up to %d bytes, more than half of total memory (%d bytes); want channels that add up to at most that", strings.Join(sizes, " + "), sum, total/2)
	}
	return nil
}

// checkInRootfs refuses a container path that is, or lies below, something other than a
// directory in the rootfs (a file such as /etc/hosts, a device, a FIFO): the runtime would
// fail on it or, worse, mount over a file. Symbolic links are resolved inside the rootfs
// (RESOLVE_IN_ROOT), as the runtime resolves them. A path that does not exist yet is fine:
// the runtime makes it.
func checkInRootfs(rootfs, ctrPath string) error {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errorf(ErrInvalid, "container path %q: cannot open the rootfs %q: %v", ctrPath, rootfs, err)
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, strings.TrimPrefix(ctrPath, "/"), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR):
		return errorf(ErrInvalid, "container path %q lies below something in the rootfs that is not a directory (want a directory, or a path that does not exist yet)", ctrPath)
	case err != nil:
		return errorf(ErrInvalid, "container path %q: cannot check it in the rootfs: %v", ctrPath, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return errorf(ErrInvalid, "container path %q: cannot check it in the rootfs: %v", ctrPath, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errorf(ErrInvalid, "container path %q is a %s in the rootfs, not a directory (want a directory, or a path that does not exist yet)", ctrPath, fileKind(st.Mode))
	}
	return nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	}
	return "non-directory"
}

// Merge returns a create request's channels from its two fields: HostChannels (the list)
// and HostChannel (iSulad's single field, which inspect shows as the first channel). Given
// alone, HostChannel is the list's one channel; given with HostChannels it must be the
// list's first (what our client and inspect's output send), anything else is refused rather
// than dropped.
func Merge(legacy *types.HostChannel, list []types.HostChannel) ([]types.HostChannel, error) {
	if legacy == nil {
		return list, nil
	}
	if len(list) == 0 {
		return []types.HostChannel{*legacy}, nil
	}
	a, errA := Check(*legacy)
	b, errB := Check(list[0])
	if errA != nil || errB != nil || a != b {
		return nil, errorf(ErrInvalid, "HostChannel %s:%s is given together with HostChannels whose first is %s:%s (want only HostChannels, or HostChannel equal to its first entry)",
			legacy.PathOnHost, legacy.PathInContainer, list[0].PathOnHost, list[0].PathInContainer)
	}
	return list, nil
}
