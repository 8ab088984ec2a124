package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/containerd/containerd/v2/pkg/archive"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// imageVolumes makes an anonymous volume for each of the image's Volumes that no -v,
// --mount, --tmpfs or host channel covers, as docker does: a directory in the container's
// directory, filled with what the image has at that path, bind-mounted there. They are the
// container's: kept across stop/start, deleted with it. The rootfs must be mounted.
func (d *Daemon) imageVolumes(ctx context.Context, c *container.Container, taken []string) ([]types.Mount, error) {
	var out []types.Mount
	vols := make([]string, 0, len(c.Config.Volumes))
	for v := range c.Config.Volumes {
		vols = append(vols, v)
	}
	slices.Sort(vols)
	for _, v := range vols {
		target := path.Clean("/" + v)
		if target == "/" || slices.Contains(taken, target) {
			continue
		}
		sum := sha256.Sum256([]byte(target))
		dir := filepath.Join(d.store.Dir(c.ID), "volumes", hex.EncodeToString(sum[:8]))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := d.fillVolume(ctx, c, target, dir); err != nil {
			return nil, fmt.Errorf("image %s: volume %s: %w", c.Config.Image, target, err)
		}
		out = append(out, types.Mount{Type: "bind", Source: dir, Target: target})
		taken = append(taken, target)
	}
	return out, nil
}

// fillVolume copies what the image has at target into dir. target is resolved inside the
// rootfs (openat2 RESOLVE_IN_ROOT: an image's symlink cannot lead outside it), the
// directory found is attached at a private mount point, and containerd's tar writer and
// applier copy it (ownership, modes, xattrs, links; nothing followed).
func (d *Daemon) fillVolume(ctx context.Context, c *container.Container, target, dir string) error {
	fd, st, err := openInRoot(c.Rootfs, target, unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		return nil // nothing there in the image: an empty volume
	}
	if errors.Is(err, unix.ENOTDIR) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "not a directory in the image")
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	os.Lchown(dir, int(st.Uid), int(st.Gid))
	os.Chmod(dir, os.FileMode(st.Mode&0o7777))
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	src := dir + ".src"
	if err := os.Mkdir(src, 0o700); err != nil {
		return err
	}
	defer os.Remove(src)
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, src, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return err
	}
	defer unix.Unmount(src, unix.MNT_DETACH)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteDiff(ctx, pw, "", src)) }()
	_, err = archive.Apply(ctx, dir, pr)
	pr.CloseWithError(err)
	return err
}

// openInRoot opens name inside the directory root as an O_PATH descriptor (with extra open
// flags), resolved as if root were "/" (openat2 RESOLVE_IN_ROOT: a symbolic link of an image
// cannot lead out of it), and stats what it found: the caller acts on the descriptor, never
// on the path again.
func openInRoot(root, name string, flags uint64) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, st, err
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | flags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}
