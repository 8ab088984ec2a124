package rootfs

import "golang.org/x/sys/unix"

func mountReadOnly(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return err
	}
	return nil
}

func unmount(dir string) { unix.Unmount(dir, unix.MNT_DETACH) }
