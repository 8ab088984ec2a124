package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/cri"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/shim"
	"github.com/isulad-go/isulad/internal/spec"
)

// The daemon's side of the CRI: internal/cri translates the Kubernetes calls, and criEngine
// carries them out on the engine's own containers, so a pod's containers are ordinary ones
// (same store, shim, runtime, host channels, recovery), shown by `isula ps` with their labels.

// registerCRI puts the CRI RuntimeService on the daemon's gRPC server and starts its
// streaming server; the returned function stops the latter.
func registerCRI(s *Server) (stop func(), err error) {
	d := s.D
	svc, err := cri.New(cri.Config{
		GraphDir: d.cfg.Graph, StateDir: d.cfg.State, RuntimeName: d.cfg.EngineName, RuntimeVersion: Version,
		RecursiveReadOnly: d.recursiveReadOnlyRuntimes(),
		RuntimeHandlers:   strings.Split(d.runtimeNames(), ", "), DefaultRuntime: d.cfg.DefaultRuntime,
		HostChannelRoots: d.cfg.CRIHostChannelRoots, StreamAddress: d.cfg.StreamServerAddress,
		StreamPort: d.cfg.StreamServerPort, Log: d.log.With("edge", "cri"),
	}, &criEngine{d: d}, &criImages{d: d}, newPodNetwork(d))
	if err != nil {
		return nil, fmt.Errorf("CRI: %w", err)
	}
	svc.Register(s.GRPC)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if err := svc.Serve(ctx); err != nil {
			d.log.Error("CRI streaming server", "err", err)
		}
	}()
	return cancel, nil
}

// logFormat is the shim's log format for a container.
func logFormat(c *container.Container) string {
	if c.CRILog != "" {
		return shim.LogFormatCRI
	}
	return ""
}

// criEngine implements cri.Engine on the daemon.
type criEngine struct {
	d      *Daemon
	layers layerUsageCache // cri_images.go
}

func (e *criEngine) CreateContainer(ctx context.Context, cc cri.ContainerConfig) (string, []string, error) {
	hc := types.HostConfig{
		NetworkMode: "none", CgroupParent: cc.CgroupParent,
		Mounts: cc.Mounts, Privileged: cc.Privileged, ReadonlyRootfs: cc.ReadonlyRootfs,
		CapAdd: cc.CapAdd, CapDrop: cc.CapDrop, Memory: cc.Resources.MemoryLimit,
		MemorySwap: cc.Resources.MemorySwap, CPUShares: cc.Resources.CPUShares,
		SystemContainer: cc.SystemContainer, HostChannels: cc.HostChannels,
	}
	if cc.Namespaces["network"] == cri.HostNamespace {
		hc.NetworkMode = "host"
	}
	if cc.NoNewPrivs {
		hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
	}
	if cc.Seccomp != "" {
		hc.SecurityOpt = append(hc.SecurityOpt, "seccomp="+cc.Seccomp)
	}
	if cc.Resources.PidsLimit > 0 {
		n := cc.Resources.PidsLimit
		hc.PidsLimit = &n
	}
	req := &types.CreateRequest{Name: cc.Name, HostConfig: hc, Config: types.Config{
		// The image by ID: the one whose config internal/cri merged (mergeImageConfig).
		Hostname: cc.Hostname, User: cc.User, Env: cc.Env, Entrypoint: cc.Entrypoint, Cmd: cc.Cmd, Image: cc.ImageID,
		WorkingDir: cc.WorkingDir, Tty: cc.Tty, OpenStdin: cc.Stdin, Labels: cc.Labels,
	}}
	logPath := cc.LogPath
	if logPath != "" {
		// The kubelet makes the pod's log directory; crictl does not.
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return "", nil, fmt.Errorf("container log %q: %w", logPath, err)
		}
	}
	var ims []container.ImageMount
	for _, m := range cc.ImageMounts {
		ims = append(ims, container.ImageMount{Image: m.ImageID, Target: m.Target, SubPath: m.SubPath})
	}
	c, warnings, err := e.d.create(ctx, req, createExtras{
		imageName: cc.Image, imageMounts: ims,
		specOpts: []spec.SpecOpt{withCRINamespaces(cc.Namespaces), withCRIResources(cc.Resources),
			withCRIPaths(cc.MaskedPaths, cc.ReadonlyPaths), withSupplementalGroups(cc.SupplementalGroups, cc.SupplementalGroupsStrict)},
		criLog: func(id string) string {
			if logPath != "" {
				return logPath
			}
			// Always a CRI log at an absolute path: the kubelet cleans up what it cannot place.
			return filepath.Join(e.d.store.Dir(id), id+"-cri.log")
		},
	})
	if err != nil {
		return "", nil, err
	}
	return c.ID, warnings, nil
}

// withCRINamespaces makes the container join the pod's pinned namespaces (by path) or share
// the host's (the namespace left out of the spec).
func withCRINamespaces(ns map[string]string) spec.SpecOpt {
	kinds := map[string]specs.LinuxNamespaceType{"network": specs.NetworkNamespace, "ipc": specs.IPCNamespace,
		"uts": specs.UTSNamespace, "pid": specs.PIDNamespace}
	return func(s *specs.Spec) error {
		var out []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			kind := ""
			for k, t := range kinds {
				if t == n.Type {
					kind = k
				}
			}
			switch v, ok := ns[kind]; {
			case !ok || kind == "":
			case v == cri.HostNamespace:
				continue
			default:
				n.Path = v
			}
			out = append(out, n)
		}
		s.Linux.Namespaces = out
		if ns["uts"] == cri.HostNamespace {
			// The host's UTS namespace: the runtime may not set a hostname in it.
			s.Hostname = ""
		}
		return nil
	}
}

// withCRIPaths replaces the masked and read-only paths the CRI gives.
func withCRIPaths(masked, readonly []string) spec.SpecOpt {
	return func(s *specs.Spec) error {
		if masked != nil {
			s.Linux.MaskedPaths = masked
		}
		if readonly != nil {
			s.Linux.ReadonlyPaths = readonly
		}
		return nil
	}
}

// withSupplementalGroups makes the process's supplementary groups its primary group, the
// groups the user has in the rootfs (the kubelet's Merge policy; left out with strict, its
// Strict policy), then the CRI's, each once. The primary group is one of them as containerd
// makes it, so that the kubelet sees the process's real getgroups() in ContainerStatus.user.
func withSupplementalGroups(gids []uint32, strict bool) spec.SpecOpt {
	return func(s *specs.Spec) error {
		u := &s.Process.User
		groups := []uint32{u.GID}
		from := gids
		if !strict {
			from = append(slices.Clone(u.AdditionalGids), gids...)
		}
		for _, g := range from {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		u.AdditionalGids = groups
		return nil
	}
}

// withCRIResources sets what the CRI gives beyond the engine's flags: CPU quota and period as
// given, cpusets, hugepages and the OOM score (never below the daemon's own, which root here
// may not lower: the runtime would fail).
func withCRIResources(r cri.Resources) spec.SpecOpt {
	return func(s *specs.Spec) error {
		applyCRIResources(s, r)
		return nil
	}
}

func applyCRIResources(s *specs.Spec, r cri.Resources) {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	lr := s.Linux.Resources
	if r.CPUQuota > 0 || r.CPUPeriod > 0 || r.CPUShares > 0 || r.CPUsetCPUs != "" || r.CPUsetMems != "" {
		if lr.CPU == nil {
			lr.CPU = &specs.LinuxCPU{}
		}
		if r.CPUShares > 0 {
			v := uint64(r.CPUShares)
			lr.CPU.Shares = &v
		}
		if r.CPUQuota > 0 {
			v := r.CPUQuota
			lr.CPU.Quota = &v
		}
		if r.CPUPeriod > 0 {
			v := uint64(r.CPUPeriod)
			lr.CPU.Period = &v
		}
		lr.CPU.Cpus, lr.CPU.Mems = r.CPUsetCPUs, r.CPUsetMems
	}
	if r.MemoryLimit > 0 {
		limit := r.MemoryLimit
		swap := r.MemorySwap
		if swap <= 0 {
			swap = limit
		}
		lr.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	lr.HugepageLimits = nil
	// The kubelet gives a limit (0 when the pod asks for none) for every page size the node
	// has, whether or not the hugetlb controller is one the runtime can set; runc then fails the
	// start ("cannot set hugetlb limit"). As cri-o does, they are left out when it is not: on
	// this kind of hybrid host hugetlb is on the cgroup2 mount, which runc does not configure.
	if len(r.HugepageLimits) > 0 && !hugetlbSettable() {
		r.HugepageLimits = nil
	}
	for size, limit := range r.HugepageLimits {
		lr.HugepageLimits = append(lr.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: size, Limit: limit})
	}
	if r.OOMScoreAdj != 0 {
		adj := max(int(r.OOMScoreAdj), ownOOMScoreAdj())
		s.Process.OOMScoreAdj = &adj
	}
}

// hugetlbSettable is cgroups.HasController("hugetlb"), read at each container create: the
// layout can change while the daemon runs (scripts/cgroup-hugetlb.sh moves hugetlb to v1).
var hugetlbSettable = func() bool { return cgroups.HasController("hugetlb") }

func ownOOMScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (e *criEngine) get(id string) (*container.Container, error) { return e.d.store.Get(id) }

func (e *criEngine) StartContainer(ctx context.Context, id string) error {
	c, err := e.get(id)
	if err != nil {
		return err
	}
	return e.d.Start(ctx, c, nil)
}

func (e *criEngine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	c, err := e.get(id)
	if err != nil {
		return err
	}
	return e.d.Stop(ctx, c, int(timeout/time.Second))
}

func (e *criEngine) RemoveContainer(ctx context.Context, id string) error {
	c, err := e.get(id)
	if err != nil {
		return err
	}
	return e.d.Remove(ctx, c, true)
}

func (e *criEngine) state(c *container.Container) cri.ContainerState {
	c.Lock()
	defer c.Unlock()
	st := c.State
	hc := c.HostConfig
	out := cri.ContainerState{ID: c.ID, Name: c.Name, Labels: c.Config.Labels, Image: c.Config.Image,
		Args: processArgs(c.Config), Status: st.Status, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
		OOMKilled: st.OOMKilled, Created: c.Created, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
		LogPath: c.CRILog, Mounts: hc.Mounts,
		Resources: cri.Resources{MemoryLimit: hc.Memory, MemorySwap: hc.MemorySwap, CPUShares: hc.CPUShares}}
	return out
}

func (e *criEngine) Container(id string) (cri.ContainerState, error) {
	c, err := e.get(id)
	if err != nil {
		return cri.ContainerState{}, err
	}
	return e.withSpecResources(e.state(c)), nil
}

// withSpecResources fills the limits from the OCI spec, which holds what the CRI set.
func (e *criEngine) withSpecResources(st cri.ContainerState) cri.ContainerState {
	data, err := os.ReadFile(filepath.Join(e.d.store.Dir(st.ID), "config.json"))
	if err != nil {
		return st
	}
	var s specs.Spec
	if json.Unmarshal(data, &s) != nil {
		return st
	}
	if s.Process != nil {
		u := s.Process.User
		st.User = &cri.User{UID: u.UID, GID: u.GID, Groups: slices.Clone(u.AdditionalGids)}
	}
	if s.Linux == nil || s.Linux.Resources == nil {
		return st
	}
	r := s.Linux.Resources
	if r.CPU != nil {
		if r.CPU.Shares != nil {
			st.Resources.CPUShares = int64(*r.CPU.Shares)
		}
		if r.CPU.Quota != nil {
			st.Resources.CPUQuota = *r.CPU.Quota
		}
		if r.CPU.Period != nil {
			st.Resources.CPUPeriod = int64(*r.CPU.Period)
		}
		st.Resources.CPUsetCPUs, st.Resources.CPUsetMems = r.CPU.Cpus, r.CPU.Mems
	}
	if r.Memory != nil && r.Memory.Limit != nil {
		st.Resources.MemoryLimit = *r.Memory.Limit
		if r.Memory.Swap != nil {
			st.Resources.MemorySwap = *r.Memory.Swap
		}
	}
	if s.Process != nil && s.Process.OOMScoreAdj != nil {
		st.Resources.OOMScoreAdj = int64(*s.Process.OOMScoreAdj)
	}
	return st
}

func (e *criEngine) Containers(label string) []cri.ContainerState {
	var out []cri.ContainerState
	for _, c := range e.d.store.List() {
		c.Lock()
		_, ok := c.Config.Labels[label]
		c.Unlock()
		if ok {
			out = append(out, e.state(c))
		}
	}
	return out
}

func (e *criEngine) Exec(ctx context.Context, id string, p cri.ExecProcess) (int, error) {
	c, err := e.get(id)
	if err != nil {
		return 0, err
	}
	st := ExecStreams{Stdin: p.Streams.Stdin, Stdout: p.Streams.Stdout, Stderr: p.Streams.Stderr, Resize: p.Streams.Resize,
		Width: p.Size[0], Height: p.Size[1], KillOnCancel: true}
	if st.Stdout == nil {
		st.Stdout = io.Discard
	}
	if st.Stderr == nil {
		st.Stderr = io.Discard
	}
	return e.d.Exec(ctx, c, types.ExecConfig{Cmd: p.Args, Tty: p.Tty}, st)
}

func (e *criEngine) Attach(ctx context.Context, id string, s cri.Streams) error {
	c, err := e.get(id)
	if err != nil {
		return err
	}
	if st := c.Status(); st != container.Running && st != container.Paused {
		return fmt.Errorf("container %s is not running: %w", c.Name, errConflict)
	}
	cl := e.d.getShim(c.ID)
	if cl == nil {
		return fmt.Errorf("container %s has no shim connection: %w", c.Name, errConflict)
	}
	if s.Resize != nil {
		go func() {
			for sz := range s.Resize {
				cl.Resize(ctx, sz[0], sz[1])
			}
		}()
	}
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	return cl.Attach(ctx, s.Stdin, stdout, stderr)
}

// UpdateResources writes the new limits into the container's OCI spec (so they hold after a
// restart), then into its cgroup through the runtime when it runs.
func (e *criEngine) UpdateResources(ctx context.Context, id string, r cri.Resources) error {
	c, err := e.get(id)
	if err != nil {
		return err
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	s, err := e.d.loadSpec(c)
	if err != nil {
		return err
	}
	if r.MemoryLimit > 0 && r.MemoryLimit < 6*1024*1024 {
		return fmt.Errorf("memory limit %d: the minimum is 6MB: %w", r.MemoryLimit, errInvalid)
	}
	applyCRIResources(s, r)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if st := c.Status(); st == container.Running || st == container.Paused {
		rt, err := e.d.runtime(c.Runtime)
		if err != nil {
			return err
		}
		if err := rt.Update(ctx, c.ID, s.Linux.Resources); err != nil {
			return fmt.Errorf("updating the resources of container %s: %v: %w", c.Name, err, errInvalid)
		}
	}
	if err := atomicfile.Replace(filepath.Join(e.d.store.Dir(c.ID), "config.json"), data, 0o600); err != nil {
		return err
	}
	c.Lock()
	c.HostConfig.Memory, c.HostConfig.MemorySwap, c.HostConfig.CPUShares = r.MemoryLimit, r.MemorySwap, r.CPUShares
	c.Unlock()
	return e.d.store.Save(c)
}

func (e *criEngine) ReopenLog(ctx context.Context, id string) error {
	c, err := e.get(id)
	if err != nil {
		return err
	}
	cl := e.d.getShim(c.ID)
	if cl == nil {
		return fmt.Errorf("container %s is not running: %w", c.Name, errConflict)
	}
	return cl.ReopenLog(ctx)
}

func (e *criEngine) MemTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// Stats reads a running container's usage from its cgroup (v1 or v2).
func (e *criEngine) Stats(id string) (cri.ContainerStats, error) {
	c, err := e.get(id)
	if err != nil {
		return cri.ContainerStats{}, err
	}
	if st := c.Status(); st != container.Running && st != container.Paused {
		return cri.ContainerStats{}, fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrConflict)
	}
	st, err := readCgroupStats(cgroups.Root, cgroups.Mode(), c.CgroupsPath)
	if err == nil {
		e.withWritableLayer(c, &st) // cri_images.go
	}
	return st, err
}

// readCgroupStats reads CPU and memory usage of the cgroup at path under root.
func readCgroupStats(root, mode, path string) (cri.ContainerStats, error) {
	out := cri.ContainerStats{Timestamp: time.Now()}
	num := func(p string) (uint64, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	kv := func(p string) map[string]uint64 {
		m := map[string]uint64{}
		b, err := os.ReadFile(p)
		if err != nil {
			return m
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 {
				m[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
			}
		}
		return m
	}
	var err error
	if mode == cgroups.V2 {
		dir := filepath.Join(root, path)
		cpu := kv(filepath.Join(dir, "cpu.stat"))
		out.CPUUsageNanos = cpu["usage_usec"] * 1000
		if out.MemoryUsage, err = num(filepath.Join(dir, "memory.current")); err != nil {
			return out, fmt.Errorf("cgroup of %s: %w", path, err)
		}
		mem := kv(filepath.Join(dir, "memory.stat"))
		out.MemoryRSS = mem["anon"]
		out.PageFaults, out.MajorPageFaults = mem["pgfault"], mem["pgmajfault"]
		out.MemoryWorkingSet = out.MemoryUsage - min(out.MemoryUsage, mem["inactive_file"])
		return out, nil
	}
	if out.CPUUsageNanos, err = num(filepath.Join(root, "cpuacct", path, "cpuacct.usage")); err != nil {
		return out, fmt.Errorf("cgroup of %s: %w", path, err)
	}
	if out.MemoryUsage, err = num(filepath.Join(root, "memory", path, "memory.usage_in_bytes")); err != nil {
		return out, fmt.Errorf("cgroup of %s: %w", path, err)
	}
	mem := kv(filepath.Join(root, "memory", path, "memory.stat"))
	out.MemoryRSS = mem["total_rss"]
	out.PageFaults, out.MajorPageFaults = mem["total_pgfault"], mem["total_pgmajfault"]
	out.MemoryWorkingSet = out.MemoryUsage - min(out.MemoryUsage, mem["total_inactive_file"])
	return out, nil
}
