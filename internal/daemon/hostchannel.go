package daemon

import (
	"encoding/json"
	"path/filepath"

	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/container"
)

// bindChannelsFromBacking makes the container's OCI spec bind each host channel from its
// backing mount (a path only root controls). Specs written by engines before backing mounts
// bind the host path itself, which a user owning one of its ancestors can swap for a symlink
// between the channel's mount and the runtime's bind; start rewrites them once.
func (d *Daemon) bindChannelsFromBacking(c *container.Container) error {
	chs := c.HostConfig.HostChannels
	if len(chs) == 0 {
		return nil
	}
	s, err := d.loadSpec(c)
	if err != nil {
		return err
	}
	want := d.channels.SpecMounts(chs)
	changed := false
	for i, m := range s.Mounts {
		for j, ch := range chs {
			if m.Type == "bind" && filepath.Clean(m.Destination) == ch.PathInContainer && m.Source == ch.PathOnHost {
				s.Mounts[i].Source = want[j].Source
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(filepath.Join(d.store.Dir(c.ID), "config.json"), data, 0o600); err != nil {
		return err
	}
	d.log.Info("host channels now bound from their backing mounts", "id", c.ID)
	return nil
}
