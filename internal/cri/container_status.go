package cri

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func criState(status string) runtimeapi.ContainerState {
	switch status {
	case "created":
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case "running", "paused", "restarting":
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case "exited", "dead", "removing":
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func (s *Service) containerStatus(c ContainerState) *runtimeapi.ContainerStatus {
	m, _ := metaOf(c)
	st := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: &runtimeapi.ContainerMetadata{Name: m.Name, Attempt: m.Attempt},
		State: criState(c.Status), CreatedAt: c.Created.UnixNano(),
		Image: m.imageSpec(), ImageRef: m.ImageID, ImageId: m.ImageID,
		Labels: criLabels(c, m), Annotations: m.Annotations, LogPath: c.LogPath,
		Resources: &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{
			CpuShares: c.Resources.CPUShares, CpuQuota: c.Resources.CPUQuota, CpuPeriod: c.Resources.CPUPeriod,
			CpusetCpus: c.Resources.CPUsetCPUs, CpusetMems: c.Resources.CPUsetMems,
			MemoryLimitInBytes: c.Resources.MemoryLimit, MemorySwapLimitInBytes: c.Resources.MemorySwap,
			OomScoreAdj: c.Resources.OOMScoreAdj,
		}},
	}
	if u := c.User; u != nil {
		lu := &runtimeapi.LinuxContainerUser{Uid: int64(u.UID), Gid: int64(u.GID)}
		for _, g := range u.Groups {
			lu.SupplementalGroups = append(lu.SupplementalGroups, int64(g))
		}
		st.User = &runtimeapi.ContainerUser{Linux: lu}
	}
	if !c.StartedAt.IsZero() && st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		st.StartedAt = c.StartedAt.UnixNano()
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		st.FinishedAt = c.FinishedAt.UnixNano()
		st.ExitCode = int32(c.ExitCode)
		switch {
		case c.OOMKilled:
			st.Reason = "OOMKilled"
		case c.ExitCode == 0:
			st.Reason = "Completed"
		default:
			st.Reason = "Error"
		}
		st.Message = c.Error
	}
	podFiles := s.pods.filesDir(m.SandboxID) + "/"
	for _, mt := range c.Mounts {
		if mt.Type != "bind" || strings.HasPrefix(mt.Source, podFiles) {
			continue // the pod's own files are not the kubelet's mounts
		}
		prop := runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		switch mt.Propagation {
		case "rslave", "slave":
			prop = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		case "rshared", "shared":
			prop = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
		}
		st.Mounts = append(st.Mounts, &runtimeapi.Mount{HostPath: mt.Source, ContainerPath: mt.Target, Readonly: mt.ReadOnly, Propagation: prop})
	}
	for _, im := range m.ImageMounts {
		st.Mounts = append(st.Mounts, &runtimeapi.Mount{ContainerPath: im.Target, Readonly: true, ImageSubPath: im.SubPath,
			Image: &runtimeapi.ImageSpec{Image: im.Image, UserSpecifiedImage: im.UserImage, ImageRef: im.ImageID}})
	}
	return st
}

func (s *Service) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, m, err := s.container(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(c)}
	if r.Verbose {
		info, _ := json.Marshal(map[string]any{"sandboxId": m.SandboxID, "pid": c.Pid, "args": c.Args, "engineName": c.Name, "status": c.Status})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (s *Service) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := r.GetFilter()
	cs := s.engine.Containers(labelMeta)
	slices.SortFunc(cs, func(a, b ContainerState) int { return a.Created.Compare(b.Created) })
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range cs {
		m, ok := metaOf(c)
		if !ok {
			continue
		}
		st := criState(c.Status)
		labels := criLabels(c, m)
		if f != nil {
			if (f.Id != "" && !strings.HasPrefix(c.ID, f.Id)) || (f.PodSandboxId != "" && !strings.HasPrefix(m.SandboxID, f.PodSandboxId)) ||
				(f.State != nil && f.State.State != st) || !labelsMatch(labels, f.LabelSelector) {
				continue
			}
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: m.SandboxID, Metadata: &runtimeapi.ContainerMetadata{Name: m.Name, Attempt: m.Attempt},
			Image: m.imageSpec(), ImageRef: m.ImageID, ImageId: m.ImageID, State: st,
			CreatedAt: c.Created.UnixNano(), Labels: labels, Annotations: m.Annotations,
		})
	}
	return resp, nil
}
