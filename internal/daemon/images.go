package daemon

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/overlay"
	"github.com/isulad-go/isulad/internal/image/reference"
	"github.com/isulad-go/isulad/internal/image/registry"
	"github.com/isulad-go/isulad/internal/image/store"
	"github.com/isulad-go/isulad/internal/opts"
	"github.com/isulad-go/isulad/internal/procs"
	"github.com/isulad-go/isulad/internal/spec"
)

// RegistryConfig is one upstream registry's entry in daemon.json "registries".
type RegistryConfig struct {
	Mirrors []string `json:"mirrors"`
}

// FaultCreateAfterRootfs: a create from an image has mounted its rootfs, no record yet.
const FaultCreateAfterRootfs = "create-after-rootfs"

// DefaultCertsDir is where registry certificates live (iSulad's place).
const DefaultCertsDir = "/etc/isulad/certs.d"

// images is the daemon's image side.
type images struct {
	store *store.Store
	reg   *registry.Client
	creds *registry.Credentials
	// use orders what puts a container on an image (create: from the image lookup to the
	// record) against what removes images (rmi, prune, their GC): a removal sees every
	// container, and a create never gets layers that a removal is deleting.
	use sync.RWMutex
}

func newImages(cfg Config) (*images, error) {
	st, err := store.Open(filepath.Join(cfg.Graph, "images"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	regs := map[string][]string{}
	for host, r := range cfg.Registries {
		regs[host] = r.Mirrors
	}
	creds := registry.NewCredentials(filepath.Join(cfg.Graph, "auths.json"))
	certs := cfg.CertsDir
	if certs == "" {
		certs = DefaultCertsDir
	}
	return &images{store: st, creds: creds, reg: registry.New(registry.Config{
		Mirrors: cfg.RegistryMirrors, Registries: regs, Insecure: cfg.InsecureRegistries, CertsDir: certs, Auth: creds,
	})}, nil
}

// restoreImages runs after the containers are loaded: the rootfs of a container that is
// not running is not mounted, and space that no image or container needs is reclaimed
// (what a pull, load or rmi killed half-way left).
func (d *Daemon) restoreImages() {
	for _, c := range d.store.List() {
		if len(c.Layers) > 0 {
			if st := c.Status(); st != container.Running && st != container.Paused && st != container.Restarting {
				d.unmountRootfs(c)
			}
		}
	}
	if n, err := d.gcImages(); err != nil {
		d.log.Warn("reclaiming image space", "err", err)
	} else if n > 0 {
		d.log.Info("reclaimed image space left by an interrupted operation", "bytes", n)
	}
}

// gcImages collects layers and blobs nothing needs. Called with images.use held (or at
// start). A quarantined container (its record unreadable) may be on layers no record names:
// then nothing is collected until it is repaired or removed.
func (d *Daemon) gcImages() (int64, error) {
	if ents, err := os.ReadDir(filepath.Join(d.cfg.Graph, "containers")); err == nil {
		for _, e := range ents {
			if id := e.Name(); d.store.Owns(id) && !d.store.Known(id) {
				d.log.Warn("image space is not reclaimed while a quarantined container may use its layers", "id", id)
				return 0, nil
			}
		}
	}
	return d.images.store.GC(d.layersInUse())
}

// reclaim frees what a failed pull, load or import stored (layers of its that no image
// has): nothing half-made stays. Exclusive against creates, as rmi.
func (d *Daemon) reclaim() {
	d.images.use.Lock()
	defer d.images.use.Unlock()
	if _, err := d.gcImages(); err != nil {
		d.log.Warn("reclaiming image space", "err", err)
	}
}

func (d *Daemon) layersInUse() []string {
	var out []string
	for _, c := range d.store.List() {
		out = append(out, c.Layers...)
		for _, m := range c.ImageMounts {
			out = append(out, m.Layers...)
		}
	}
	return out
}

// PullImage fetches name from its registry (or a mirror) into the store.
func (d *Daemon) PullImage(ctx context.Context, name string, progress func(store.Progress)) (store.Image, error) {
	return d.pullImage(ctx, name, nil, progress)
}

// pullImage is PullImage with a login for this pull only (the CRI's; nil: the stored ones).
func (d *Daemon) pullImage(ctx context.Context, name string, login *registry.Login, progress func(store.Progress)) (store.Image, error) {
	defer procs.Wide()() // digests, gzip, tar: the machine's CPUs (internal/procs)
	r, err := reference.Parse(name)
	if err != nil {
		return store.Image{}, err
	}
	img, dgst, err := d.images.reg.GetWith(ctx, r, login)
	if err != nil {
		return store.Image{}, err
	}
	var names []string
	if r.Tag != "" && r.Digest == "" {
		names = []string{r.TagString()}
	}
	im, err := d.images.store.Ingest(ctx, img, names, []string{r.Repo() + "@" + dgst}, progress)
	if err != nil {
		d.reclaim()
		if errdefs.Kind(err) == errdefs.ErrUnknown {
			return store.Image{}, registry.Explain(reference.Familiar(r.String()), r.Domain, err)
		}
		return store.Image{}, fmt.Errorf("image %s: %w", reference.Familiar(r.String()), err)
	}
	d.log.Info("image pulled", "image", r.String(), "id", im.ID)
	return im, nil
}

// PushImage sends a stored image to the registry its name says.
func (d *Daemon) PushImage(ctx context.Context, name string, updates chan<- v1.Update) (store.Image, error) {
	defer procs.Wide()() // digests, gzip, tar: the machine's CPUs (internal/procs)
	im, err := d.images.store.Lookup(name)
	if err != nil {
		return store.Image{}, err
	}
	r, err := reference.Parse(name)
	if err != nil {
		return store.Image{}, err
	}
	img, err := d.images.store.V1Image(im)
	if err != nil {
		return store.Image{}, err
	}
	// A repository of the same registry the image was pulled from or pushed to: its blobs
	// can be mounted instead of uploaded.
	from := ""
	for _, dg := range im.Digests {
		if src, err := reference.Parse(dg); err == nil && src.Domain == r.Domain && src.Path != r.Path {
			from = src.Path
		}
	}
	if err := d.images.reg.Push(ctx, r, img, from, updates); err != nil {
		return store.Image{}, err
	}
	d.images.store.AddDigest(im.ID, r.Repo()+"@"+im.ManifestDigest)
	d.log.Info("image pushed", "image", r.String(), "id", im.ID)
	return im, nil
}

// imageConfig is an image's runnable config in docker's shape.
func imageConfig(c *v1.ConfigFile) types.ImageConfig {
	ic := types.ImageConfig{
		User: c.Config.User, Env: c.Config.Env, Cmd: c.Config.Cmd, Entrypoint: c.Config.Entrypoint,
		WorkingDir: c.Config.WorkingDir, Labels: c.Config.Labels, StopSignal: c.Config.StopSignal,
		ExposedPorts: c.Config.ExposedPorts, Volumes: c.Config.Volumes,
	}
	return ic
}

// applyImageConfig merges an image's config into a container's as docker does: the user's
// -e, -u, -w, --stop-signal, --label win; arguments replace Cmd; --entrypoint replaces
// Entrypoint and then the image's Cmd no longer applies.
func applyImageConfig(cfg *types.Config, ic types.ImageConfig) {
	env := slices.Clone(ic.Env)
	for _, e := range cfg.Env {
		k, _, _ := strings.Cut(e, "=")
		env = slices.DeleteFunc(env, func(x string) bool { xk, _, _ := strings.Cut(x, "="); return xk == k })
		env = append(env, e)
	}
	cfg.Env = env
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = ic.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ic.Cmd
		}
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = []string{}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	for p := range ic.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for v := range ic.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
}

// inspectImage is inspect's Image: the image ID (docker's), or the name for none.
func inspectImage(c *container.Container) string {
	if c.Image != "" {
		return c.Image
	}
	return c.Config.Image
}

// rootfsDriver is inspect's Driver.
func rootfsDriver(c *container.Container) string {
	if len(c.Layers) > 0 {
		return "overlay"
	}
	return "external-rootfs"
}

// processArgs is what the container runs: Entrypoint then Cmd.
func processArgs(cfg types.Config) []string {
	return append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
}

// resolveImage finds the image of a create request and merges its config. Called with
// images.use held for reading.
func (d *Daemon) resolveImage(cfg *types.Config) (store.Image, error) {
	im, err := d.images.store.Lookup(cfg.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return store.Image{}, errdefs.Errorf(errdefs.ErrNotFound, "image %s: not found on this host (pull it, or run with --pull missing)", cfg.Image)
		}
		return store.Image{}, err
	}
	ic, err := d.images.store.Config(im)
	if err != nil {
		return store.Image{}, err
	}
	img := imageConfig(ic)
	if err := checkImageConfig(cfg.Image, img); err != nil {
		return store.Image{}, err
	}
	applyImageConfig(cfg, img)
	return im, nil
}

// checkImageConfig holds an image's config (its author's input) to what the command line
// may give.
func checkImageConfig(name string, ic types.ImageConfig) error {
	bad := func(what string, v any, want string) error {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "image %s: its config has %s %q (want %s)", name, what, v, want)
	}
	if ic.WorkingDir != "" && (!path.IsAbs(ic.WorkingDir) || strings.ContainsRune(ic.WorkingDir, 0)) {
		return bad("WorkingDir", ic.WorkingDir, "an absolute path")
	}
	if err := opts.ValidateEnv(ic.Env); err != nil {
		return bad("Env", ic.Env, "KEY=VALUE entries")
	}
	if ic.StopSignal != "" {
		if _, err := opts.ParseSignal(ic.StopSignal); err != nil {
			return bad("StopSignal", ic.StopSignal, "a signal name or number")
		}
	}
	for _, a := range append(slices.Clone(ic.Entrypoint), ic.Cmd...) {
		if strings.ContainsRune(a, 0) {
			return bad("command argument", a, "no NUL byte")
		}
	}
	if strings.ContainsAny(ic.User, "\x00\n") || strings.Count(ic.User, ":") > 1 {
		return bad("User", ic.User, "name|uid[:group|gid]")
	}
	return nil
}

// rootfsDirs are the container's overlay directories: the merged mount point and its own
// layer (upper and work).
func (d *Daemon) rootfsDirs(id string) (merged, upper, work string) {
	dir := d.store.Dir(id)
	return filepath.Join(dir, "rootfs"), filepath.Join(dir, "layer", "upper"), filepath.Join(dir, "layer", "work")
}

// mountRootfs mounts the overlay of a container made from an image (a no-op for an
// external rootfs, or when it is mounted already).
func (d *Daemon) mountRootfs(c *container.Container) error {
	if len(c.Layers) == 0 {
		return nil
	}
	merged, upper, work := d.rootfsDirs(c.ID)
	if overlay.Mounted(merged) {
		return d.mountImageMounts(c) // cri_imagemounts.go
	}
	for _, dir := range []string{merged, upper, work} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// The container's / has the upper directory's owner and mode: a root's 0755, not the
	// 0700 of the engine's own directories.
	if err := os.Chmod(upper, 0o755); err != nil {
		return err
	}
	var lowers []string
	for _, l := range c.Layers {
		dir := d.images.store.LayerDir(l)
		if _, err := os.Stat(dir); err != nil {
			return errdefs.Errorf(errdefs.ErrNotFound, "container %s: layer %s of its image is missing from the store", c.Name, l)
		}
		lowers = append(lowers, dir)
	}
	if c.HostConfig.UserRemap != "" {
		m, err := spec.ParseUserRemap(c.HostConfig.UserRemap)
		if err != nil {
			return err
		}
		// The runtime mounts the rootfs from inside the user namespace, as the mapped root:
		// it must be able to walk to it. As docker does: the graph and its containers
		// directory may be traversed (not listed) by anyone, the container's directory by the
		// mapped root's group only; what is inside stays root-only.
		for _, p := range []string{d.cfg.Graph, filepath.Dir(d.store.Dir(c.ID))} {
			if err := os.Chmod(p, 0o711); err != nil {
				return err
			}
		}
		if err := os.Lchown(d.store.Dir(c.ID), 0, int(m.GID)); err != nil {
			return err
		}
		if err := os.Chmod(d.store.Dir(c.ID), 0o710); err != nil {
			return err
		}
		return overlay.MountMapped(merged, upper, work, lowers, overlay.IDMap{UID: m.UID, GID: m.GID, Size: m.Size})
	}
	if err := overlay.Mount(merged, upper, work, lowers); err != nil {
		return err
	}
	return d.mountImageMounts(c)
}

// unmountOrphanRootfs unmounts the image rootfs a create killed half-way left mounted in
// the container directory dir.
func unmountOrphanRootfs(dir string) error {
	if err := unmountOrphanImageMounts(dir); err != nil {
		return err
	}
	return overlay.Unmount(filepath.Join(dir, "rootfs"))
}

// unmountRootfs unmounts a container's overlay rootfs (its own layer stays).
func (d *Daemon) unmountRootfs(c *container.Container) error {
	if len(c.Layers) == 0 {
		return nil
	}
	merged, _, _ := d.rootfsDirs(c.ID)
	if err := d.unmountImageMounts(c); err != nil {
		d.log.Error("unmounting a container's image volumes", "id", c.ID, "err", err)
		return err
	}
	if err := overlay.Unmount(merged); err != nil {
		d.log.Error("unmounting a container's rootfs", "id", c.ID, "err", err)
		return err
	}
	return nil
}
