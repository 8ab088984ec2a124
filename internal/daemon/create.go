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
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/opts"
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
}

// validate checks a create request completely before anything is created. Every error is
// one line naming the flag, the value and what is wanted.
func (d *Daemon) validate(req *types.CreateRequest) (*plan, error) {
	p := &plan{req: *req}
	cfg, hc := &p.req.Config, &p.req.HostConfig
	if req.Name != "" {
		if err := opts.ValidateName(req.Name); err != nil {
			return nil, err
		}
		p.req.Name = strings.TrimPrefix(req.Name, "/")
	}
	if cfg.Image == "" {
		return nil, fmt.Errorf("image name must not be empty (use none with --external-rootfs DIR): %w", errInvalid)
	}
	if cfg.Image != "none" {
		return nil, fmt.Errorf("image %q: there is no image store yet; use the image name none with --external-rootfs DIR: %w", cfg.Image, errInvalid)
	}
	if hc.ExternalRootfs == "" {
		return nil, fmt.Errorf("image none needs --external-rootfs DIR: %w", errInvalid)
	}
	if !filepath.IsAbs(hc.ExternalRootfs) {
		abs, err := filepath.Abs(hc.ExternalRootfs)
		if err != nil {
			return nil, fmt.Errorf("--external-rootfs %q: %v: %w", hc.ExternalRootfs, err, errInvalid)
		}
		hc.ExternalRootfs = abs
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
	p.rootfs = real
	hc.ExternalRootfs = real
	if len(cfg.Cmd) == 0 || cfg.Cmd[0] == "" {
		return nil, fmt.Errorf("no command specified: give the command after the image name: %w", errInvalid)
	}
	if hc.Runtime == "" {
		hc.Runtime = d.cfg.DefaultRuntime
	}
	if _, err := d.runtime(hc.Runtime); err != nil {
		return nil, fmt.Errorf("--runtime %q: not installed or not configured (have %s): %w", hc.Runtime, d.runtimeNames(), errInvalid)
	}
	switch hc.NetworkMode {
	case "", "none", "default":
		hc.NetworkMode = "none"
	case "host":
	default:
		return nil, fmt.Errorf("--net %q: want host or none: %w", hc.NetworkMode, errInvalid)
	}
	if cfg.StopSignal != "" {
		if _, err := opts.ParseSignal(cfg.StopSignal); err != nil {
			return nil, fmt.Errorf("--stop-signal: %w", err)
		}
	}
	if err := validateRestart(hc); err != nil {
		return nil, err
	}
	if err := validateResources(hc); err != nil {
		return nil, err
	}
	if hc.CgroupParent != "" && !path.IsAbs(hc.CgroupParent) {
		hc.CgroupParent = "/" + hc.CgroupParent
	}
	if hc.CgroupParent != "" {
		clean := path.Clean(hc.CgroupParent)
		if strings.Contains(hc.CgroupParent, "..") || clean == "/" {
			return nil, fmt.Errorf("--cgroup-parent %q: want a cgroup path like /mygroup without ..: %w", hc.CgroupParent, errInvalid)
		}
		hc.CgroupParent = clean
	}
	if _, _, err := d.cfg.logLimits(hc.LogConfig.Config); err != nil {
		return nil, err
	}
	for k := range hc.LogConfig.Config {
		if k != "max-size" && k != "max-file" {
			return nil, fmt.Errorf("--log-opt %q: unknown option (want max-size or max-file): %w", k, errInvalid)
		}
	}
	for _, e := range cfg.Env {
		if e == "" || strings.HasPrefix(e, "=") || strings.ContainsRune(e, 0) {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE: %w", e, errInvalid)
		}
	}
	// Mounts: -v, --mount and --tmpfs become one list.
	for _, b := range hc.Binds {
		m, err := opts.ParseVolume(b)
		if err != nil {
			return nil, err
		}
		p.mounts = append(p.mounts, m)
	}
	for _, m := range hc.Mounts {
		if err := validateMount(m); err != nil {
			return nil, err
		}
		p.mounts = append(p.mounts, m)
	}
	for dst, o := range hc.Tmpfs {
		s := dst
		if o != "" {
			s += ":" + o
		}
		m, err := opts.ParseTmpfs(s)
		if err != nil {
			return nil, err
		}
		p.mounts = append(p.mounts, m)
	}
	seen := map[string]bool{}
	var dests []string
	for _, m := range p.mounts {
		if seen[m.Target] {
			return nil, fmt.Errorf("mount destination %q is given twice: %w", m.Target, errInvalid)
		}
		seen[m.Target] = true
		dests = append(dests, m.Target)
	}
	// System-container options.
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
	if hc.HostChannel != nil && len(hc.HostChannels) == 0 {
		hc.HostChannels = []types.HostChannel{*hc.HostChannel}
	}
	for i, ch := range hc.HostChannels {
		perm := ch.Permissions
		if perm == "" {
			perm = "rw"
		}
		size := "64M"
		if ch.Size != 0 {
			size = strconv.FormatInt(ch.Size, 10)
		}
		if ch.Size < 0 {
			return nil, fmt.Errorf("host channel: invalid size \"%d\": %w", ch.Size, errInvalid)
		}
		norm, err := hostchannel.Parse(ch.PathOnHost + ":" + ch.PathInContainer + ":" + perm + ":" + size)
		if err != nil {
			return nil, err
		}
		hc.HostChannels[i] = norm
	}
	if err := hostchannel.Validate(hc.HostChannels, hostchannel.CheckContext{
		GraphDir: d.cfg.Graph, StateDir: d.cfg.State, Rootfs: p.rootfs, MountDests: dests,
	}); err != nil {
		return nil, err
	}
	if len(hc.HostChannels) > 0 {
		first := hc.HostChannels[0]
		hc.HostChannel = &first
		if w := hostchannel.MemoryWarning(hc.HostChannels, hc.Memory); w != "" {
			p.warnings = append(p.warnings, w)
		}
	} else {
		hc.HostChannel = nil
	}
	p.systemd = hc.SystemContainer && spec.IsSystemdInit(p.rootfs, cfg.Cmd[0])
	return p, nil
}

func validateRestart(hc *types.HostConfig) error {
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", "no":
		hc.RestartPolicy.Name = "no"
	case "always", "unless-stopped", "on-reboot":
	case "on-failure":
		if rp.MaximumRetryCount < 0 {
			return fmt.Errorf("--restart on-failure:%d: want a non-negative retry count: %w", rp.MaximumRetryCount, errInvalid)
		}
	default:
		return fmt.Errorf("--restart %q: want no, always, on-failure[:N], unless-stopped or on-reboot: %w", rp.Name, errInvalid)
	}
	if rp.Name != "on-failure" && rp.MaximumRetryCount != 0 {
		return fmt.Errorf("--restart %s: a retry count is only valid with on-failure: %w", rp.Name, errInvalid)
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "no" {
		return fmt.Errorf("--restart %s: conflicts with --rm: %w", rp.Name, errInvalid)
	}
	return nil
}

func validateResources(hc *types.HostConfig) error {
	if hc.Memory < 0 {
		return fmt.Errorf("--memory %d: want a positive size: %w", hc.Memory, errInvalid)
	}
	if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return fmt.Errorf("--memory %d: the minimum is 6MB: %w", hc.Memory, errInvalid)
	}
	if hc.MemorySwap != 0 && hc.MemorySwap != -1 {
		if hc.Memory == 0 {
			return fmt.Errorf("--memory-swap %d: needs --memory too: %w", hc.MemorySwap, errInvalid)
		}
		if hc.MemorySwap < hc.Memory {
			return fmt.Errorf("--memory-swap %d: must not be lower than --memory %d: %w", hc.MemorySwap, hc.Memory, errInvalid)
		}
	}
	if hc.MemorySwap < -1 {
		return fmt.Errorf("--memory-swap %d: want -1 or a size: %w", hc.MemorySwap, errInvalid)
	}
	if hc.CPUShares < 0 || (hc.CPUShares > 0 && hc.CPUShares < 2) || hc.CPUShares > 262144 {
		return fmt.Errorf("--cpu-shares %d: want 2 to 262144: %w", hc.CPUShares, errInvalid)
	}
	if hc.NanoCPUs < 0 {
		return fmt.Errorf("--cpus: want a positive number: %w", errInvalid)
	}
	if hc.NanoCPUs > 0 && hc.NanoCPUs < 10_000_000 {
		return fmt.Errorf("--cpus %.3f: the minimum is 0.01: %w", float64(hc.NanoCPUs)/1e9, errInvalid)
	}
	return nil
}

func validateMount(m types.Mount) error {
	if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
		return fmt.Errorf("--mount target %q: want an absolute path other than /: %w", m.Target, errInvalid)
	}
	switch m.Type {
	case "bind":
		if !filepath.IsAbs(m.Source) {
			return fmt.Errorf("--mount source %q: want an absolute host path: %w", m.Source, errInvalid)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("--mount source %q: does not exist: %w", m.Source, errInvalid)
		}
	case "tmpfs":
		if m.Source != "" {
			return fmt.Errorf("--mount type=tmpfs takes no source (got %q): %w", m.Source, errInvalid)
		}
	default:
		return fmt.Errorf("--mount type %q: want bind or tmpfs: %w", m.Type, errInvalid)
	}
	return nil
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
	p, err := d.validate(req)
	if err != nil {
		return nil, nil, err
	}
	id := newID()
	name := p.req.Name
	if name == "" {
		name = d.randomName()
	}
	if err := d.store.ReserveName(name, id); err != nil {
		return nil, nil, err
	}
	cfg, hc := p.req.Config, p.req.HostConfig
	c := &container.Container{
		ID: id, Name: name, Created: time.Now().UTC(), Config: cfg, HostConfig: hc,
		Rootfs: p.rootfs, Runtime: hc.Runtime, SystemdInit: p.systemd,
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

	undo := []func(){func() { d.store.ReleaseName(name, id) }}
	fail := func(err error) (*container.Container, []string, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, nil, err
	}
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
	s, err := spec.Generate(d.specOptions(c, p.mounts, p.userRemap, p.hooks))
	if err != nil {
		return fail(err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return fail(err)
	}
	hcData, _ := json.MarshalIndent(c.HostConfig, "", "  ")
	if err := atomicfile.Write(filepath.Join(dir, "hostconfig.json"), hcData, 0o600); err != nil {
		return fail(err)
	}
	// The record is the commit point: once it is on disk the container exists.
	if err := d.store.Save(c); err != nil {
		return fail(err)
	}
	d.store.Add(c)
	d.log.Info("container created", "id", id, "name", name)
	if err := fault.Point(fault.CreateAfterRecord); err != nil {
		return c, p.warnings, err
	}
	return c, p.warnings, nil
}

// specOptions gathers what the spec generator needs for a container.
func (d *Daemon) specOptions(c *container.Container, mounts []types.Mount, remap *spec.IDMap, hooks *specs.Hooks) spec.Options {
	return spec.Options{
		ID: c.ID, Config: c.Config, HostConfig: c.HostConfig, Rootfs: c.Rootfs,
		Mounts: mounts, ExtraMounts: hostchannel.SpecMounts(c.HostConfig.HostChannels),
		Hostname: c.Config.Hostname, EngineName: d.cfg.EngineName, UserRemap: remap, Hooks: hooks,
		CgroupsPath: c.CgroupsPath,
	}
}
