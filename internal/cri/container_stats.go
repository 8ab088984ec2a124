package cri

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerStats reads one container's usage; nil when it has none to give (not running).
func (s *Service) containerStats(c ContainerState) *runtimeapi.ContainerStats {
	m, _ := metaOf(c)
	st, err := s.engine.Stats(c.ID)
	if err != nil {
		return nil
	}
	ts := st.Timestamp.UnixNano()
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: c.ID, Metadata: &runtimeapi.ContainerMetadata{Name: m.Name, Attempt: m.Attempt},
			Labels: criLabels(c, m), Annotations: m.Annotations},
		Cpu: &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: u(st.CPUUsageNanos)},
		Memory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: u(st.MemoryWorkingSet), UsageBytes: u(st.MemoryUsage),
			RssBytes: u(st.MemoryRSS), PageFaults: u(st.PageFaults), MajorPageFaults: u(st.MajorPageFaults)},
	}
	if st.WritableMount != "" {
		out.WritableLayer = &runtimeapi.FilesystemUsage{Timestamp: ts, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: st.WritableMount},
			UsedBytes: u(st.WritableBytes), InodesUsed: u(st.WritableInodes)}
	}
	return out
}

func (s *Service) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, _, err := s.container(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	st := s.containerStats(c)
	if st == nil {
		// A container that does not run has no cgroup: its usage is zero.
		st = &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{Id: c.ID}}
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

func (s *Service) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, c := range s.engine.Containers(labelMeta) {
		m, ok := metaOf(c)
		if !ok || criState(c.Status) != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if f != nil && ((f.Id != "" && !strings.HasPrefix(c.ID, f.Id)) || (f.PodSandboxId != "" && !strings.HasPrefix(m.SandboxID, f.PodSandboxId)) ||
			!labelsMatch(criLabels(c, m), f.LabelSelector)) {
			continue
		}
		if st := s.containerStats(c); st != nil {
			resp.Stats = append(resp.Stats, st)
		}
	}
	return resp, nil
}
