package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/cri"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/reference"
	"github.com/isulad-go/isulad/internal/image/registry"
	"github.com/isulad-go/isulad/internal/image/store"
)

// criImages is the CRI's view of the engine's image store (cri.Images): the same images,
// pulls, mirrors and certificates as `isula pull` and `isula images`, so a kubelet and a
// user share one store, and an image a container uses is kept from removal.
type criImages struct{ d *Daemon }

// criImage is a stored image with its config, as internal/cri wants it.
func (c *criImages) criImage(im store.Image) (cri.Image, error) {
	raw, err := c.d.images.store.ReadBlob(im.ID)
	if err != nil {
		return cri.Image{}, fmt.Errorf("image %s: its config is missing: %w", im.ID, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return cri.Image{}, fmt.Errorf("image %s: its config is unreadable: %w", im.ID, err)
	}
	out := cri.Image{ID: im.ID, RepoTags: im.Names, RepoDigests: im.Digests, Config: raw,
		Entrypoint: cfg.Config.Entrypoint, Cmd: cfg.Config.Cmd, Env: cfg.Config.Env,
		WorkingDir: cfg.Config.WorkingDir, User: cfg.Config.User}
	if im.Size > 0 {
		out.Size = uint64(im.Size)
	}
	return out, nil
}

func (c *criImages) Resolve(ctx context.Context, ref string) (cri.Image, error) {
	if !reference.IsID(ref) {
		// Not a name at all: say so, rather than "no such image".
		if _, err := reference.Parse(ref); err != nil {
			return cri.Image{}, err
		}
	}
	im, err := c.d.images.store.Lookup(ref)
	if err != nil {
		return cri.Image{}, err
	}
	return c.criImage(im)
}

func (c *criImages) List(ctx context.Context) ([]cri.Image, error) {
	var out []cri.Image
	for _, im := range c.d.images.store.List() {
		img, err := c.criImage(im)
		if err != nil {
			// One unreadable image is logged, not the end of the listing.
			c.d.log.Warn("CRI: an image is unreadable", "id", im.ID, "err", err)
			continue
		}
		out = append(out, img)
	}
	return out, nil
}

// Pull is the engine's pull (mirrors, certs.d, insecure-registries, the store's shared
// layers) with the request's login, used for that pull only.
func (c *criImages) Pull(ctx context.Context, ref string, auth *cri.PullAuth) (cri.Image, error) {
	var login *registry.Login
	if auth != nil {
		var err error
		if login, err = registry.NewLogin(auth.ServerAddress, auth.Username, auth.Password, auth.Auth,
			auth.IdentityToken, auth.RegistryToken); err != nil {
			return cri.Image{}, fmt.Errorf("pull %s: %w", ref, err)
		}
	}
	im, err := c.d.pullImage(ctx, ref, login, nil)
	if err != nil {
		return cri.Image{}, err
	}
	return c.criImage(im)
}

// Remove deletes the image with every name it has (the CRI's RemoveImage, as containerd's),
// unless a container uses it, then reclaims the layers nothing else needs.
func (c *criImages) Remove(ctx context.Context, ref string) error {
	d := c.d
	d.images.use.Lock()
	defer d.images.use.Unlock()
	im, err := d.images.store.Lookup(ref)
	if err != nil {
		return err
	}
	if users := d.containersOf(im.ID); len(users) > 0 {
		return errdefs.Errorf(errdefs.ErrConflict, "image %s (%s) is used by container %s: remove the container first", ref, im.ID, users[0].Name)
	}
	if err := d.images.store.Delete(im.ID); err != nil {
		return err
	}
	d.log.Info("image removed through the CRI", "image", ref, "id", im.ID)
	if _, err := d.gcImages(); err != nil {
		d.log.Warn("reclaiming image space", "err", err)
	}
	return nil
}

// FsInfo walks the image store (unpacked layers, blobs, records): bytes allocated and
// inodes, each hard-linked inode once. Not cached: it changes with every pull, and what it
// walks is what the node's admin and kubelet pulled, not what a container writes.
func (c *criImages) FsInfo(ctx context.Context) (cri.ImageFsUsage, error) {
	root := filepath.Join(c.d.cfg.Graph, "images")
	used, inodes, err := dirUsage(ctx, root)
	return cri.ImageFsUsage{Mountpoint: root, UsedBytes: used, InodesUsed: inodes}, err
}

// withWritableLayer adds the usage of a container's own layer (of a container made from an
// image) to its stats.
func (e *criEngine) withWritableLayer(c *container.Container, st *cri.ContainerStats) {
	if len(c.Layers) == 0 {
		return
	}
	_, upper, _ := e.d.rootfsDirs(c.ID)
	b, n, ok := e.layers.get(c.ID, upper)
	if !ok {
		return
	}
	st.WritableMount, st.WritableBytes, st.WritableInodes = upper, b, n
}

// layerUsageTTL is how long a writable layer's usage is reused: the layer is the container's
// to fill (a root in it may make millions of files), so the stats calls of a kubelet (every
// few seconds, several calls per round) walk it at most once per period, and one walk at a
// time per container.
const layerUsageTTL = 5 * time.Second

// layerUsageCache keeps the last walk of each container's writable layer.
type layerUsageCache struct {
	mu      sync.Mutex
	entries map[string]*layerUsage
}

type layerUsage struct {
	mu            sync.Mutex // held during the walk
	at            time.Time
	bytes, inodes uint64
	ok            bool
}

func (l *layerUsageCache) get(id, dir string) (used, inodes uint64, ok bool) {
	now := time.Now()
	l.mu.Lock()
	if l.entries == nil {
		l.entries = map[string]*layerUsage{}
	}
	u := l.entries[id]
	if u == nil {
		u = &layerUsage{}
		l.entries[id] = u
	}
	for k, v := range l.entries {
		// Containers not asked about for a while (removed ones) are forgotten.
		if v != u && v.mu.TryLock() {
			if now.Sub(v.at) > time.Minute {
				delete(l.entries, k)
			}
			v.mu.Unlock()
		}
	}
	l.mu.Unlock()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.at.IsZero() || time.Since(u.at) > layerUsageTTL {
		b, n, err := dirUsage(context.Background(), dir)
		u.bytes, u.inodes, u.ok, u.at = b, n, err == nil, time.Now()
	}
	return u.bytes, u.inodes, u.ok
}

// dirUsage is the bytes allocated and the inodes under root, each hard-linked inode once.
func dirUsage(ctx context.Context, root string) (used, inodes uint64, err error) {
	seen := map[uint64]bool{}
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // removed meanwhile (a GC, a pull's tmp)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		inodes++
		used += uint64(st.Blocks) * 512
		return nil
	})
	return used, inodes, err
}
