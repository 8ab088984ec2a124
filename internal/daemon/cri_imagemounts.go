package daemon

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/overlay"
)

// Image volumes (the CRI's Mount.image): an image of the store mounted read-only into a
// container, the whole image or one directory of it. Each is an overlay of the image's
// layers with no layer of its own, in the container's directory, bind-mounted at its target;
// it is mounted and unmounted with the container's rootfs (mountRootfs, unmountRootfs), and
// its image is in use, and its layers kept, while the container exists.

// imageMountDirs are the directories of a container's image mount i: the overlay's mount
// point, the empty layer a one-layer image needs below it, and the mount point of SubPath.
func (d *Daemon) imageMountDirs(id string, i int) (root, empty, sub string) {
	base := filepath.Join(d.store.Dir(id), "imagemounts", strconv.Itoa(i))
	return filepath.Join(base, "root"), filepath.Join(base, "empty"), filepath.Join(base, "sub")
}

// resolveImageMounts looks up the images of the image mounts asked for (images.use is held
// for reading by create) and checks their targets and sub paths.
func (d *Daemon) resolveImageMounts(c *container.Container, reqs []container.ImageMount) ([]container.ImageMount, error) {
	if len(c.Layers) == 0 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "image volumes need a container made from an image")
	}
	if c.HostConfig.UserRemap != "" {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "image volumes with --user-remap are not supported")
	}
	var out []container.ImageMount
	for _, r := range reqs {
		if !path.IsAbs(r.Target) || path.Clean(r.Target) == "/" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "image volume at %q: want an absolute path other than /", r.Target)
		}
		if r.SubPath != "" && !validSubPath(r.SubPath) {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "image volume at %q: sub path %q: want a relative path inside the image, without ..", r.Target, r.SubPath)
		}
		im, err := d.images.store.Lookup(r.Image)
		if err != nil {
			return nil, fmt.Errorf("image volume at %q: %w", r.Target, err)
		}
		m := container.ImageMount{Image: im.ID, Target: path.Clean(r.Target), SubPath: r.SubPath}
		for _, l := range im.Layers {
			m.Layers = append(m.Layers, l.DiffID)
		}
		out = append(out, m)
	}
	return out, nil
}

// validSubPath: relative, clean, no "." or ".." component, no NUL.
func validSubPath(p string) bool {
	if p == "" || len(p) > 4096 || path.IsAbs(p) || path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." {
			return false
		}
	}
	return true
}

// imageMountBinds are the container's bind mounts of its image mounts.
func (d *Daemon) imageMountBinds(c *container.Container) []types.Mount {
	var out []types.Mount
	for i, m := range c.ImageMounts {
		root, _, sub := d.imageMountDirs(c.ID, i)
		src := root
		if m.SubPath != "" {
			src = sub
		}
		out = append(out, types.Mount{Type: "bind", Source: src, Target: m.Target, ReadOnly: true})
	}
	return out
}

// mountImageMounts mounts what is not mounted of a container's image mounts.
func (d *Daemon) mountImageMounts(c *container.Container) error {
	for i, m := range c.ImageMounts {
		root, empty, sub := d.imageMountDirs(c.ID, i)
		if !overlay.Mounted(root) {
			for _, dir := range []string{root, empty} {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
			}
			var lowers []string
			for _, l := range m.Layers {
				dir := d.images.store.LayerDir(l)
				if _, err := os.Stat(dir); err != nil {
					return errdefs.Errorf(errdefs.ErrNotFound, "container %s: image volume at %s: layer %s of image %s is missing from the store", c.Name, m.Target, l, m.Image)
				}
				lowers = append(lowers, dir)
			}
			if err := overlay.MountReadOnly(root, empty, lowers); err != nil {
				return err
			}
		}
		if m.SubPath != "" && !overlay.Mounted(sub) {
			if err := bindSubPath(root, m.SubPath, sub); err != nil {
				return fmt.Errorf("container %s: image volume at %s: sub path %q of image %s: %w", c.Name, m.Target, m.SubPath, m.Image, err)
			}
		}
	}
	return nil
}

// bindSubPath attaches at target what sub names inside the mounted image at root: resolved
// inside it (openat2 RESOLVE_IN_ROOT: an image's symbolic link cannot lead out of it), and
// cloned from the file descriptor found, so no path is walked again.
func bindSubPath(root, sub, target string) error {
	fd, st, err := openInRoot(root, sub, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return errdefs.Errorf(errdefs.ErrNotFound, "not in the image")
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
	case unix.S_IFREG:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o600)
		if err != nil {
			return err
		}
		f.Close()
	default:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "not a directory or a regular file")
	}
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// unmountImageMounts unmounts a container's image mounts (sub paths first).
func (d *Daemon) unmountImageMounts(c *container.Container) error {
	var errs []error
	for i := len(c.ImageMounts) - 1; i >= 0; i-- {
		root, _, sub := d.imageMountDirs(c.ID, i)
		errs = append(errs, overlay.Unmount(sub), overlay.Unmount(root))
	}
	return errors.Join(errs...)
}

// unmountOrphanImageMounts unmounts the image mounts a create killed half-way left in the
// container directory dir.
func unmountOrphanImageMounts(dir string) error {
	ents, err := os.ReadDir(filepath.Join(dir, "imagemounts"))
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range ents {
		base := filepath.Join(dir, "imagemounts", e.Name())
		errs = append(errs, overlay.Unmount(filepath.Join(base, "sub")), overlay.Unmount(filepath.Join(base, "root")))
	}
	return errors.Join(errs...)
}
