// Package overlay mounts a container's root filesystem: the image's layers read-only below,
// the container's own layer (upper and work directories) above.
package overlay

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Mount mounts an overlay at target. lowers are the image's layer directories, bottom
// first (the image's order). It uses the new mount API with one "lowerdir+" per layer (no
// page-size limit on the option string, and no path is parsed for ':' or ','); kernels
// without lowerdir+ (before 6.8) get the classic option string.
func Mount(target, upper, work string, lowers []string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("overlay at %s: no layers", target)
	}
	err := mountNew(target, upper, work, lowers)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = mountClassic(target, upper, work, lowers)
	}
	if err != nil {
		return fmt.Errorf("mounting the container's overlay rootfs at %s: %w", target, err)
	}
	return nil
}

// mountNew and mountClassic mount lowers (bottom first) with upper and work above, or
// read-only when upper is "".
func mountNew(target, upper, work string, lowers []string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// overlay's lowerdir lists the top layer first.
	for i := len(lowers) - 1; i >= 0; i-- {
		if err := unix.FsconfigSetString(fd, "lowerdir+", lowers[i]); err != nil {
			return err
		}
	}
	attr := unix.MOUNT_ATTR_RDONLY
	if upper != "" {
		attr = 0
		for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}} {
			if err := unix.FsconfigSetString(fd, kv[0], kv[1]); err != nil {
				return fmt.Errorf("%s=%s: %w", kv[0], kv[1], err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return err
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	return unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

func mountClassic(target, upper, work string, lowers []string) error {
	top := make([]string, len(lowers))
	for i, l := range lowers {
		if strings.ContainsAny(l, ":,") {
			return fmt.Errorf("layer path %q has ':' or ','", l)
		}
		top[len(lowers)-1-i] = l
	}
	if upper == "" {
		return unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(top, ":"))
	}
	return unix.Mount("overlay", target, "overlay", 0,
		"lowerdir="+strings.Join(top, ":")+",upperdir="+upper+",workdir="+work)
}

// Mounted tells whether target is a mount point.
func Mounted(target string) bool {
	ok, err := mountinfo.Mounted(target)
	return err == nil && ok
}

// Unmount unmounts target if it is mounted. A busy mount (a process of the host sitting in
// it) is detached rather than left: the container is gone and its layer must not stay
// pinned under the graph.
func Unmount(target string) error {
	if _, err := os.Lstat(target); os.IsNotExist(err) || !Mounted(target) {
		return nil
	}
	err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmounting %s: %w", target, err)
	}
	return nil
}

// MountReadOnly mounts the layers read-only at target, with no layer of its own (an image
// mounted as a volume). overlay wants two lower layers when there is no upper one: a single
// layer gets the empty directory empty below it.
func MountReadOnly(target, empty string, lowers []string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("overlay at %s: no layers", target)
	}
	if len(lowers) == 1 {
		lowers = []string{empty, lowers[0]}
	}
	err := mountNew(target, "", "", lowers)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = mountClassic(target, "", "", lowers)
	}
	if err != nil {
		return fmt.Errorf("mounting an image read-only at %s: %w", target, err)
	}
	return nil
}
