package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/opts"
)

// volumeMounts turns the -v NAME:/path mounts into binds of the volumes' directories and
// returns the names, which the create acquires (making missing volumes) before its commit.
func (d *Daemon) volumeMounts(ms []types.Mount) ([]types.Mount, []string, error) {
	var names []string
	for i, m := range ms {
		if m.Type != opts.MountVolume {
			continue
		}
		if d.volumes == nil {
			return nil, nil, fmt.Errorf("volume %s: this daemon has no volume store: %w", m.Source, errInvalid)
		}
		names = append(names, m.Source)
		ms[i].Type, ms[i].Source = opts.MountBind, d.volumes.Path(m.Source)
	}
	return ms, names, nil
}

// volumeUsers lists the containers (names) whose -v names the volume.
func (d *Daemon) volumeUsers(name string) []string {
	var users []string
	for _, c := range d.store.List() {
		c.Lock()
		binds := c.HostConfig.Binds
		cname := c.Name
		c.Unlock()
		for _, b := range binds {
			if m, err := opts.ParseVolume(b); err == nil && m.Type == opts.MountVolume && m.Source == name {
				users = append(users, cname)
				break
			}
		}
	}
	slices.Sort(users)
	return users
}

func volumesJSON(vs []types.Volume) *apiv1.VolumeResponse {
	data, _ := json.Marshal(vs)
	return &apiv1.VolumeResponse{VolumesJson: data}
}

func (s *opsService) VolumeCreate(ctx context.Context, r *apiv1.VolumeRequest) (*apiv1.VolumeResponse, error) {
	v, created, err := s.d.volumes.Create(r.Name, r.Labels)
	if err != nil {
		return nil, gerr(err)
	}
	if created {
		s.d.log.Info("volume created", "name", v.Name)
	}
	return volumesJSON([]types.Volume{v}), nil
}

func (s *opsService) VolumeList(ctx context.Context, _ *apiv1.Empty) (*apiv1.VolumeResponse, error) {
	vs, err := s.d.volumes.List()
	if err != nil {
		return nil, gerr(err)
	}
	for i := range vs {
		vs[i].UsedBy = s.d.volumeUsers(vs[i].Name)
	}
	return volumesJSON(vs), nil
}

func (s *opsService) VolumeInspect(ctx context.Context, r *apiv1.VolumeRequest) (*apiv1.VolumeResponse, error) {
	v, err := s.d.volumes.Get(r.Name)
	if err != nil {
		return nil, gerr(err)
	}
	v.UsedBy = s.d.volumeUsers(v.Name)
	return volumesJSON([]types.Volume{v}), nil
}

func (s *opsService) VolumeRemove(ctx context.Context, r *apiv1.VolumeRequest) (*apiv1.Empty, error) {
	if err := s.d.volumes.Remove(r.Name, s.d.volumeUsers(r.Name)); err != nil {
		return nil, gerr(err)
	}
	s.d.log.Info("volume removed", "name", r.Name)
	return &apiv1.Empty{}, nil
}

func (s *opsService) VolumePrune(ctx context.Context, _ *apiv1.Empty) (*apiv1.VolumeResponse, error) {
	names, err := s.d.volumes.Prune(func(n string) bool { return len(s.d.volumeUsers(n)) > 0 })
	if err != nil {
		return nil, gerr(err)
	}
	out := []types.Volume{}
	for _, n := range names {
		out = append(out, types.Volume{Name: n})
	}
	s.d.log.Info("volumes pruned", "count", len(names))
	return volumesJSON(out), nil
}
