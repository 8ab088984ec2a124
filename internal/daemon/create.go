package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/image/store"
	"github.com/isulad-go/isulad/internal/opts"
	"github.com/isulad-go/isulad/internal/rootfs"
	"github.com/isulad-go/isulad/internal/spec"
)

// plan is a validated create request with everything derived from it.
type plan struct {
	req       types.CreateRequest
	rootfs    string
	mounts    []types.Mount
	userRemap *spec.IDMap
	hooks     *specs.Hooks
	systemd   bool
	warnings  []string
	volumes   []string     // named volumes the mounts use (-v NAME:/path)
	image     *store.Image // the image, unless "none"
}

// validate checks a create request completely before anything is created. Every error is
// one line naming the flag, the value and what is wanted.
func (d *Daemon) validate(req *types.CreateRequest) (*plan, error) {
	// Before opts turns the first of HostChannels into HostChannel: a HostChannel that
	// disagrees with the list is refused, not dropped.
	if _, err := hostchannel.Merge(req.HostConfig.HostChannel, req.HostConfig.HostChannels); err != nil {
		return nil, err
	}
	// Values and combinations: the same code the client ran.
	if err := opts.ValidateCreate(req); err != nil {
		return nil, err
	}
	p := &plan{req: *req}
	cfg, hc := &p.req.Config, &p.req.HostConfig
	// What needs the host: the rootfs, the image, the runtime, the mounts' sources, host channels.
	var err error
	if hc.ExternalRootfs != "" {
		if !filepath.IsAbs(hc.ExternalRootfs) {
			return nil, fmt.Errorf("--external-rootfs %q: want an absolute path: %w", hc.ExternalRootfs, errInvalid)
		}
		real, err := filepath.EvalSymlinks(hc.ExternalRootfs)
		if err != nil {
			return nil, fmt.Errorf("--external-rootfs %q: does not exist: %w", hc.ExternalRootfs, errInvalid)
		}
		if st, err := os.Stat(real); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--external-rootfs %q: not a directory: %w", hc.ExternalRootfs, errInvalid)
		}
		if real == "/" {
			return nil, fmt.Errorf("--external-rootfs %q: the host's root cannot be a container's rootfs: %w", hc.ExternalRootfs, errInvalid)
		}
		if err := d.channels.RootfsConflicts(real); err != nil {
			return nil, err
		}
		p.rootfs = real
		hc.ExternalRootfs = real
	}
	if cfg.Image != "none" {
		// An image: its layers are the rootfs (unless --external-rootfs), its config the defaults.
		im, err := d.resolveImage(cfg)
		if err != nil {
			return nil, err
		}
		p.image = &im
	}
	if args := processArgs(*cfg); len(args) == 0 || args[0] == "" {
		return nil, fmt.Errorf("no command specified: give the command after the image name: %w", errInvalid)
	}
	if hc.Runtime == "" {
		hc.Runtime = d.cfg.DefaultRuntime
	}
	if _, ok := d.cfg.Runtimes[hc.Runtime]; !ok {
		return nil, fmt.Errorf("--runtime %q: not installed or not configured (have %s): %w", hc.Runtime, d.runtimeNames(), errInvalid)
	}
	if err := d.validateNetwork(cfg, hc); err != nil { // network.go
		return nil, err
	}
	if hc.CgroupParent != "" {
		hc.CgroupParent = path.Clean("/" + hc.CgroupParent)
	}
	if p.mounts, err = opts.UserMounts(hc); err != nil {
		return nil, err
	}
	var dests []string
	for _, m := range p.mounts {
		if m.Type == "bind" {
			if _, err := os.Stat(m.Source); err != nil {
				return nil, fmt.Errorf("bind mount source %q: does not exist: %w", m.Source, errInvalid)
			}
		}
		dests = append(dests, m.Target)
	}
	if p.mounts, p.volumes, err = d.volumeMounts(p.mounts); err != nil {
		return nil, err
	}
	if err := spec.ValidateSystemOptions(*cfg, *hc); err != nil {
		return nil, err
	}
	if hc.UserRemap != "" {
		if p.userRemap, err = spec.ParseUserRemap(hc.UserRemap); err != nil {
			return nil, err
		}
	}
	if hc.HookSpec != "" {
		if p.hooks, err = spec.ParseHookSpec(hc.HookSpec); err != nil {
			return nil, err
		}
	}
	if hc.EnvTargetFile != "" && !path.IsAbs(hc.EnvTargetFile) {
		return nil, fmt.Errorf("--env-target-file %q: want an absolute path inside the container: %w", hc.EnvTargetFile, errInvalid)
	}
	// Host channels: the daemon always validates, whatever the client did.
	if hc.HostChannels, err = hostchannel.Merge(hc.HostChannel, hc.HostChannels); err != nil {
		return nil, err
	}
	if hc.HostChannels, err = hostchannel.Validate(hc.HostChannels, d.channelCheckContext(p.rootfs, dests)); err != nil {
		return nil, err
	}
	hc.HostChannel = nil
	if len(hc.HostChannels) > 0 {
		first := hc.HostChannels[0]
		hc.HostChannel = &first
		if w := hostchannel.MemoryWarning(hc.HostChannels, hc.Memory); w != "" {
			p.warnings = append(p.warnings, w)
		}
	}
	p.systemd = hc.SystemContainer && rootfs.IsSystemdInit(p.rootfs, processArgs(*cfg)[0])
	return p, nil
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Create validates the request, then records the container: host-channel intents and
// directories first (so a crash can be rolled back), then the record. Nothing is mounted
// and nothing runs yet.
func (d *Daemon) Create(ctx context.Context, req *types.CreateRequest) (*container.Container, []string, error) {
	return d.create(ctx, req, createExtras{})
}

// createExtras is what a create through the CRI adds (cri.go): changes to the generated OCI
// spec and the path of the CRI log, given the container's ID.
type createExtras struct {
	specOpts []spec.SpecOpt
	criLog   func(id string) string
	// imageMounts are images to mount read-only in the container (Image, Target, SubPath;
	// cri_imagemounts.go).
	imageMounts []container.ImageMount
	// imageName is the image reference to record and show when Config.Image is the image's
	// ID (the CRI pins the image it merged the config of).
	imageName string
}

func (d *Daemon) create(ctx context.Context, req *types.CreateRequest, x createExtras) (*container.Container, []string, error) {
	d.netMu.RLock() // a network in use cannot be removed meanwhile
	defer d.netMu.RUnlock()
	if req.Config.Image != "none" {
		d.images.use.RLock()
		defer d.images.use.RUnlock()
	}
	p, err := d.validate(req)
	if err != nil {
		return nil, nil, err
	}
	if x.imageName != "" && p.image != nil {
		p.req.Config.Image = x.imageName
	}
	id := newID()
	name := p.req.Name
	if name != "" {
		if err := d.store.ReserveName(name, id); err != nil {
			return nil, nil, err
		}
	} else {
		// Concurrent creates may pick one random name: retry until a reservation holds.
		for i := 0; ; i++ {
			name = d.randomName(i)
			if d.store.ReserveName(name, id) == nil {
				break
			}
		}
	}
	cfg, hc := p.req.Config, p.req.HostConfig
	c := &container.Container{
		ID: id, Name: name, Created: time.Now().UTC(), Config: cfg, HostConfig: hc,
		Rootfs: p.rootfs, Runtime: hc.Runtime, SystemdInit: p.systemd,
	}
	if x.criLog != nil {
		c.CRILog = x.criLog(id)
	}
	parent := hc.CgroupParent
	if parent == "" {
		parent = d.cfg.CgroupParent
	}
	c.CgroupsPath = path.Join(parent, id)
	c.StopSignal = spec.DefaultStopSignal(spec.Options{Config: cfg, HostConfig: hc}, p.systemd)
	if c.Config.Hostname == "" {
		c.Config.Hostname = id[:12]
	}
	c.State.Status = string(container.Created)
	if p.image != nil {
		c.Image = p.image.ID
		if hc.ExternalRootfs == "" {
			for _, l := range p.image.Layers {
				c.Layers = append(c.Layers, l.DiffID)
			}
		}
	}

	undo := []func(){func() { d.store.ReleaseName(name, id) }}
	fail := func(err error) (*container.Container, []string, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, nil, err
	}
	if len(x.imageMounts) > 0 {
		if c.ImageMounts, err = d.resolveImageMounts(c, x.imageMounts); err != nil {
			return fail(err)
		}
	}
	release, err := d.claimNetwork(c) // --ip and host ports: one container each
	if err != nil {
		return fail(err)
	}
	undo = append(undo, release)
	for _, ch := range hc.HostChannels {
		if err := d.channels.Create(id, ch); err != nil {
			return fail(err)
		}
		ch := ch
		undo = append(undo, func() { d.channels.Remove(id, ch) })
	}
	if err := fault.Point(fault.CreateAfterMkdir); err != nil {
		return fail(err)
	}
	dir := d.store.Dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	if len(c.Layers) > 0 {
		// The image's rootfs, mounted for what create reads in it (users, systemd); start
		// mounts it again and the container's exit unmounts it.
		c.Rootfs, _, _ = d.rootfsDirs(id)
		if err := d.mountRootfs(c); err != nil {
			d.unmountRootfs(c) // what it mounted before it failed (an image volume's sub path)
			return fail(err)
		}
		// Undone before the directory's removal (undo runs in reverse): never delete
		// through the mount.
		undo = append(undo, func() { d.unmountRootfs(c) })
		if err := fault.Point(FaultCreateAfterRootfs); err != nil {
			return fail(err)
		}
		c.SystemdInit = hc.SystemContainer && rootfs.IsSystemdInit(c.Rootfs, processArgs(cfg)[0])
		c.StopSignal = spec.DefaultStopSignal(spec.Options{Config: cfg, HostConfig: hc}, c.SystemdInit)
		taken := []string{}
		for _, m := range p.mounts {
			taken = append(taken, path.Clean(m.Target))
		}
		for _, ch := range hc.HostChannels {
			taken = append(taken, path.Clean(ch.PathInContainer))
		}
		for _, m := range c.ImageMounts {
			taken = append(taken, m.Target)
		}
		vols, err := d.imageVolumes(ctx, c, taken)
		if err != nil {
			return fail(err)
		}
		p.mounts = append(p.mounts, vols...)
		p.mounts = append(p.mounts, d.imageMountBinds(c)...)
	}
	s, err := spec.Generate(d.specOptions(c, p.mounts, p.userRemap, p.hooks))
	if err != nil {
		return fail(err)
	}
	for _, opt := range x.specOpts {
		if err := opt(s); err != nil {
			return fail(err)
		}
	}
	// crun 1.8 accepts only 1.0.x specs; the fields used here all exist in 1.0.2.
	s.Version = "1.0.2"
	d.withNetworkSpec(s, c)
	// Compact: the runtime reads it once; indented, the 25 KB spec cost a third more to
	// make on every create (docs/PERFORMANCE.md, issue 14's third round).
	data, err := json.Marshal(s)
	if err != nil {
		return fail(err)
	}
	// A --rm container does not outlive a crash (restore removes it unless it runs): none
	// of its files needs to survive a power loss, so none is fsync'd.
	// Durably: fsync'd here, its rename made durable by the commit's sync of the directory.
	// The directory is new and nothing reads it before the commit: its files are written in
	// place (atomicfile.WriteNew).
	durable, commit := true, d.store.Commit
	if hc.AutoRemove {
		durable, commit = false, d.store.CommitTransient
	}
	if err := atomicfile.WriteNew(filepath.Join(dir, "config.json"), data, 0o600, durable); err != nil {
		return fail(err)
	}
	hcData, _ := json.Marshal(c.HostConfig)
	// A copy for readers of the directory; the record below holds the same, durably.
	if err := atomicfile.WriteNew(filepath.Join(dir, "hostconfig.json"), hcData, 0o600, false); err != nil {
		return fail(err)
	}
	releaseVolumes, err := d.volumes.Acquire(p.volumes)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { releaseVolumes(true) })
	// The record is the commit point: once it is on disk the container exists.
	if err := commit(c); err != nil {
		return fail(err)
	}
	c.NoShimYet = true
	d.store.Add(c)
	releaseVolumes(false)
	d.unmountRootfs(c) // mounted again by start
	d.log.Info("container created", "id", id, "name", name)
	if err := fault.Point(fault.CreateAfterRecord); err != nil {
		// A create that reports failure leaves nothing behind, even past its commit point.
		d.Remove(context.Background(), c, true)
		return nil, nil, err
	}
	d.event(c, "create")
	return c, p.warnings, nil
}

// specOptions gathers what the spec generator needs for a container.
func (d *Daemon) specOptions(c *container.Container, mounts []types.Mount, remap *spec.IDMap, hooks *specs.Hooks) spec.Options {
	cfg := c.Config
	cfg.Cmd = processArgs(cfg) // the spec runs Entrypoint then Cmd
	return spec.Options{
		ID: c.ID, Config: cfg, HostConfig: c.HostConfig, Rootfs: c.Rootfs,
		Mounts: mounts, ExtraMounts: d.channels.SpecMounts(c.HostConfig.HostChannels),
		Hostname: c.Config.Hostname, EngineName: d.cfg.EngineName, UserRemap: remap, Hooks: hooks,
		CgroupsPath: c.CgroupsPath,
	}
}

// channelCheckContext is what host-channel validation needs to know about the engine and the
// other containers: a channel may lie neither in the engine's directories nor in the rootfs
// of any container.
func (d *Daemon) channelCheckContext(rootfs string, dests []string) hostchannel.CheckContext {
	cc := hostchannel.CheckContext{GraphDir: d.cfg.Graph, StateDir: d.cfg.State, Rootfs: rootfs, MountDests: dests}
	for _, c := range d.store.List() {
		if c.Rootfs != "" && c.Rootfs != rootfs {
			cc.OtherRootfs = append(cc.OtherRootfs, c.Rootfs)
		}
	}
	return cc
}
