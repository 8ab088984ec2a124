package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/containerd/containerd/v2/pkg/archive"

	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	imgarchive "github.com/isulad-go/isulad/internal/image/archive"
	"github.com/isulad-go/isulad/internal/image/layer"
	"github.com/isulad-go/isulad/internal/image/reference"
	"github.com/isulad-go/isulad/internal/image/store"
	"github.com/isulad-go/isulad/internal/procs"
)

// spool copies an archive stream into a temporary file of the store (decompressing a
// gzip'd or zstd'd archive), so that its members can be read in place.
func (d *Daemon) spool(r io.Reader) (*os.File, error) {
	f, err := d.images.store.TempFile()
	if err != nil {
		return nil, err
	}
	plain, err := layer.Decompress(r)
	if err == nil {
		_, err = io.Copy(f, plain)
		plain.Close()
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("receiving the archive: %w", err)
	}
	return f, nil
}

// LoadImages stores every image of a docker-archive or OCI archive. tag names the
// archive's image when it has exactly one.
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader, tag string, progress func(store.Progress)) ([]store.Image, error) {
	defer procs.Wide()() // digests, gzip, tar: the machine's CPUs (internal/procs)
	if tag != "" {
		if _, err := reference.Parse(tag); err != nil {
			return nil, fmt.Errorf("--tag: %w", err)
		}
	}
	f, err := d.spool(r)
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	f.Close()
	a, err := imgarchive.Open(f.Name())
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer a.Close()
	imgs, err := a.Images()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if tag != "" && len(imgs) != 1 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "load --tag %s: the archive holds %d images (want one)", tag, len(imgs))
	}
	var out []store.Image
	for _, l := range imgs {
		names := l.Names
		if tag != "" {
			names = []string{tag}
		}
		var norm []string
		for _, n := range names {
			r, err := reference.Parse(n)
			if err != nil || r.Tag == "" {
				return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "load: the archive names an image %q: want NAME:TAG", n)
			}
			norm = append(norm, r.TagString())
		}
		img, err := store.NewBlobImage(l.Manifest, l.Config, l.MediaType, l.Layers)
		if err != nil {
			return nil, err
		}
		im, err := d.images.store.Ingest(ctx, img, norm, nil, progress)
		if err != nil {
			d.reclaim()
			return nil, fmt.Errorf("load: %w", err)
		}
		d.log.Info("image loaded", "id", im.ID, "names", norm)
		out = append(out, im)
	}
	return out, nil
}

// SaveImages writes images as a docker-archive or (format oci) an OCI archive.
func (d *Daemon) SaveImages(w io.Writer, names []string, format string) error {
	defer procs.Wide()() // digests, gzip, tar: the machine's CPUs (internal/procs)
	if format != "" && format != "docker-archive" && format != "oci" && format != "oci-archive" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--format %q: want docker-archive or oci", format)
	}
	var items []imgarchive.Item
	for _, n := range names {
		im, err := d.images.store.Lookup(n)
		if err != nil {
			return err
		}
		it := imgarchive.Item{MediaType: im.ManifestMediaType, ConfigDigest: im.ID}
		if r, err := reference.Parse(n); err == nil && r.Digest == "" && !reference.IsID(n) {
			it.Names = []string{r.TagString()}
		}
		if it.Manifest, err = d.images.store.ReadBlob(im.ManifestDigest); err != nil {
			return fmt.Errorf("image %s: its manifest is missing: %w", n, err)
		}
		if it.Config, err = d.images.store.ReadBlob(im.ID); err != nil {
			return fmt.Errorf("image %s: its config is missing: %w", n, err)
		}
		for _, l := range im.Layers {
			p := d.images.store.BlobPath(l.Digest)
			it.Layers = append(it.Layers, store.BlobLayer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType,
				Open: func() (io.ReadCloser, error) { return os.Open(p) }})
		}
		items = append(items, it)
	}
	if format == "oci" || format == "oci-archive" {
		return imgarchive.WriteOCI(w, items)
	}
	return imgarchive.WriteDocker(w, items)
}

// ImportImage makes a one-layer image of a rootfs tarball.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, ref, message string) (store.Image, error) {
	defer procs.Wide()() // digests, gzip, tar: the machine's CPUs (internal/procs)
	var names []string
	if ref != "" {
		rr, err := reference.Parse(ref)
		if err != nil {
			return store.Image{}, err
		}
		if rr.Digest != "" {
			return store.Image{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "import %s: want REPO[:TAG], not a digest", ref)
		}
		names = []string{rr.TagString()}
	}
	f, err := d.images.store.TempFile()
	if err != nil {
		return store.Image{}, err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	f.Close()
	if err != nil {
		return store.Image{}, fmt.Errorf("receiving the tarball: %w", err)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if message == "" {
		message = "Imported from tarball"
	}
	l, err := imgarchive.Import(f.Name(), map[string]any{"architecture": runtime.GOARCH, "os": "linux", "created": now,
		"config": map[string]any{}, "history": []map[string]any{{"created": now, "comment": message}}})
	if err != nil {
		return store.Image{}, err
	}
	img, err := store.NewBlobImage(l.Manifest, l.Config, l.MediaType, l.Layers)
	if err != nil {
		return store.Image{}, err
	}
	im, err := d.images.store.Ingest(ctx, img, names, nil, nil)
	if err != nil {
		d.reclaim()
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	return im, nil
}

// ExportContainer writes a container's rootfs as a tarball. A running container could
// change its files under the walk (a directory swapped for a symlink to the host's): it
// must be stopped.
func (d *Daemon) ExportContainer(ctx context.Context, c *container.Container, w io.Writer) error {
	defer procs.Wide()() // digests, gzip, tar: the machine's CPUs (internal/procs)
	c.Op.Lock()
	defer c.Op.Unlock()
	if st := c.Status(); st == container.Running || st == container.Paused || st == container.Restarting {
		return errdefs.Errorf(errdefs.ErrConflict, "container %s is %s: stop it before export (a running container can change its files under the copy)", c.Name, st)
	}
	dir := c.Rootfs
	if len(c.Layers) > 0 {
		if err := d.mountRootfs(c); err != nil {
			return err
		}
		defer d.unmountRootfs(c)
	}
	return archive.WriteDiff(ctx, w, "", dir)
}
