package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/opts"
	"github.com/isulad-go/isulad/internal/spec"
)

// mergeUpdate returns hc with the update applied, checked with create's rules.
func mergeUpdate(hc types.HostConfig, u types.UpdateConfig) (types.HostConfig, error) {
	if u.Memory != 0 {
		hc.Memory = u.Memory
	}
	if u.MemorySwap != 0 {
		hc.MemorySwap = u.MemorySwap
	}
	if u.NanoCPUs != 0 {
		hc.NanoCPUs = u.NanoCPUs
	}
	if u.CPUShares != 0 {
		hc.CPUShares = u.CPUShares
	}
	if u.PidsLimit != nil {
		p := *u.PidsLimit
		hc.PidsLimit = &p
	}
	if u.RestartPolicy != nil {
		hc.RestartPolicy = *u.RestartPolicy
	}
	// Create's validation of the resources and the restart policy, on a request holding
	// only them (and what their checks compare against).
	req := types.CreateRequest{Config: types.Config{Cmd: []string{"x"}, Image: "none"}, HostConfig: types.HostConfig{
		Memory: hc.Memory, MemorySwap: hc.MemorySwap, NanoCPUs: hc.NanoCPUs, CPUShares: hc.CPUShares,
		PidsLimit: hc.PidsLimit, RestartPolicy: hc.RestartPolicy, AutoRemove: hc.AutoRemove, ExternalRootfs: "/",
	}}
	if err := opts.ValidateCreate(&req); err != nil {
		return hc, fmt.Errorf("update: %w", err)
	}
	hc.RestartPolicy = req.HostConfig.RestartPolicy
	return hc, nil
}

// resourcesOf is the OCI resources of hc, as create makes them; a pids limit of 0 or -1 is
// written as "no limit" (-1) so that the runtime lifts an earlier one.
func resourcesOf(hc types.HostConfig) (*specs.LinuxResources, error) {
	s := &specs.Spec{Linux: &specs.Linux{}}
	if err := spec.WithResources(hc)(s); err != nil {
		return nil, err
	}
	r := s.Linux.Resources
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		unlimited := int64(-1)
		r.Pids = &specs.LinuxPids{Limit: &unlimited}
	}
	return r, nil
}

// Update changes c's resources and restart policy: live through the runtime's update when
// it runs, in its OCI spec for the next start, and in its record (inspect shows them).
// Nothing is changed when the runtime refuses.
func (d *Daemon) Update(ctx context.Context, c *container.Container, u types.UpdateConfig) ([]string, error) {
	c.Op.Lock()
	defer c.Op.Unlock()
	if st := c.Status(); st == container.Removing || st == container.Dead {
		return nil, fmt.Errorf("update: container %s is being removed: %w", c.Name, errConflict)
	}
	c.Lock()
	old := c.HostConfig
	c.Unlock()
	hc, err := mergeUpdate(old, u)
	if err != nil {
		return nil, err
	}
	res, err := resourcesOf(hc)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	undo := func() {}
	if len(u.HostChannels) > 0 {
		if hc, undo, err = d.resizeChannels(c, hc, u.HostChannels); err != nil {
			return nil, err
		}
	}
	var warnings []string
	if u.Memory != 0 || len(u.HostChannels) > 0 {
		// Create's warning, for a lower limit as for bigger channels.
		if w := hostchannel.MemoryWarning(hc.HostChannels, hc.Memory); w != "" {
			warnings = append(warnings, w)
		}
	}
	if st := c.Status(); st == container.Running || st == container.Paused {
		rt, err := d.runtime(c.Runtime)
		if err != nil {
			undo()
			return nil, err
		}
		live := res
		if filepath.Base(rt.Binary()) == "crun" && res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit < 0 {
			// crun (1.8) writes -1 into pids.max, which the kernel refuses, and ignores 0:
			// the kernel's pid_max is the same "no limit".
			l := *res
			max := pidMax()
			l.Pids = &specs.LinuxPids{Limit: &max}
			live = &l
		}
		if err := rt.Update(ctx, c.ID, live); err != nil {
			undo()
			return nil, d.updateError(c, hc, err)
		}
	}
	s, err := d.loadSpec(c)
	if err != nil {
		return nil, err
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	s.Linux.Resources.Memory, s.Linux.Resources.CPU, s.Linux.Resources.Pids = res.Memory, res.CPU, res.Pids
	if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit <= 0 {
		s.Linux.Resources.Pids = nil // no limit
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Replace(filepath.Join(d.store.Dir(c.ID), "config.json"), data, 0o600); err != nil {
		return nil, err
	}
	c.Lock()
	c.HostConfig = hc
	c.Unlock()
	if err := d.store.Save(c); err != nil {
		return nil, err
	}
	d.log.Info("container updated", "id", c.ID, "memory", hc.Memory, "cpus", hc.NanoCPUs, "restart", hc.RestartPolicy.Name)
	d.event(c, "update")
	return warnings, nil
}

// updateError turns the runtime's refusal into one line; a memory limit below what the
// container holds now (the kernel cannot reclaim it) says so with the numbers.
func (d *Daemon) updateError(c *container.Container, hc types.HostConfig, err error) error {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if hc.Memory > 0 {
		var st types.Stats
		cgroupReader{root: cgroups.Root, mode: cgroups.Mode()}.sample(c.CgroupsPath, &st)
		if st.MemUsage > 0 && uint64(hc.Memory) < st.MemUsage || strings.Contains(msg, "busy") {
			return fmt.Errorf("update: cannot set the memory limit of %s to %d bytes: it uses %d bytes now and the kernel cannot reclaim enough: %w",
				c.Name, hc.Memory, st.MemUsage, errConflict)
		}
	}
	return fmt.Errorf("update: the runtime refused the new resources of %s: %s: %w", c.Name, msg, errConflict)
}

func (s *opsService) Update(ctx context.Context, r *apiv1.UpdateRequest) (*apiv1.UpdateResponse, error) {
	var u types.UpdateConfig
	if err := decodeStrict(r.UpdateJson, &u); err != nil {
		return nil, gerr(fmt.Errorf("update request: %v: %w", err, errInvalid))
	}
	c, err := s.d.store.Get(r.Id)
	if err != nil {
		return nil, gerr(err)
	}
	w, err := s.d.Update(ctx, c, u)
	if err != nil {
		return nil, gerr(err)
	}
	return &apiv1.UpdateResponse{Warnings: w}, nil
}

// resizeChannels resizes c's channels named by container path (path -> bytes) and returns
// hc with the new sizes and an undo that puts the old sizes back.
func (d *Daemon) resizeChannels(c *container.Container, hc types.HostConfig, sizes map[string]int64) (types.HostConfig, func(), error) {
	chs := slices.Clone(hc.HostChannels)
	var done []types.HostChannel // old values of the ones resized
	undo := func() {
		for _, old := range done {
			if _, err := d.channels.Resize(c.ID, old, old.Size); err != nil {
				d.log.Error("putting a host channel's size back", "id", c.ID, "path", old.PathOnHost, "err", err)
			}
		}
	}
	for path := range sizes {
		if !slices.ContainsFunc(chs, func(ch types.HostChannel) bool { return ch.PathInContainer == path }) {
			return hc, nil, fmt.Errorf("update --host-channel %s: container %s has no host channel at %s: %w", path, c.Name, path, errInvalid)
		}
	}
	// As at create: all of a container's channels together stay within half of the memory.
	var sum uint64
	for _, ch := range chs {
		if n, ok := sizes[ch.PathInContainer]; ok {
			sum += uint64(n)
		} else {
			sum += uint64(ch.Size)
		}
	}
	if half := memTotal() / 2; sum > half {
		return hc, nil, fmt.Errorf("update --host-channel: the channels of %s would take %d bytes together, more than half of the host's memory (%d bytes): %w", c.Name, sum, half, errInvalid)
	}
	for i, ch := range chs {
		size, ok := sizes[ch.PathInContainer]
		if !ok || size == ch.Size {
			continue
		}
		resized, err := d.channels.Resize(c.ID, ch, size)
		if err != nil {
			undo()
			return hc, nil, fmt.Errorf("update --host-channel %s: %w", ch.PathInContainer, err)
		}
		done = append(done, ch)
		chs[i] = resized
		d.channelEvent(c, "resize", resized)
	}
	hc.HostChannels = chs
	if len(chs) > 0 {
		first := chs[0]
		hc.HostChannel = &first
	}
	return hc, undo, nil
}

// pidMax is the kernel's largest pid (/proc/sys/kernel/pid_max).
func pidMax() int64 {
	b, _ := os.ReadFile("/proc/sys/kernel/pid_max")
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 4194304 // PID_MAX_LIMIT on 64-bit
	}
	return n
}
