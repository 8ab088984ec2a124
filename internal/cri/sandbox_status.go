package cri

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (sb *sandbox) state() runtimeapi.PodSandboxState {
	if sb.ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func (sb *sandbox) metadata() *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: sb.Name, Namespace: sb.Namespace, Uid: sb.UID, Attempt: sb.Attempt}
}

func nsMode(host bool, pod runtimeapi.NamespaceMode) runtimeapi.NamespaceMode {
	if host {
		return runtimeapi.NamespaceMode_NODE
	}
	return pod
}

func (s *Service) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.pods.get(r.PodSandboxId)
	if err != nil {
		return nil, gerr(err)
	}
	st := &runtimeapi.PodSandboxStatus{
		Id: sb.ID, Metadata: sb.metadata(), State: sb.state(), CreatedAt: sb.Created.UnixNano(),
		Labels: sb.Labels, Annotations: sb.Annotations, RuntimeHandler: sb.RuntimeName,
		Network: &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: nsMode(sb.HostNetwork, runtimeapi.NamespaceMode_POD),
			Ipc:     nsMode(sb.HostIPC, runtimeapi.NamespaceMode_POD),
			Pid:     nsMode(sb.HostPID, map[bool]runtimeapi.NamespaceMode{true: runtimeapi.NamespaceMode_POD, false: runtimeapi.NamespaceMode_CONTAINER}[sb.SharedPID]),
		}}},
	}
	if len(sb.IPs) > 0 {
		st.Network.Ip = sb.IPs[0]
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	for _, c := range s.podContainers(sb.ID) {
		resp.ContainersStatuses = append(resp.ContainersStatuses, s.containerStatus(c))
	}
	if r.Verbose {
		info, _ := json.Marshal(map[string]any{"namespaces": sb.Namespaces, "cgroupParent": sb.CgroupParent,
			"hostname": sb.Hostname, "sysctls": sb.Sysctls, "dns": sb.DNS, "ports": sb.Ports,
			"podFiles": s.pods.filesDir(sb.ID), "initPid": sb.Init.Pid})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (s *Service) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	pods := s.pods.list()
	slices.SortFunc(pods, func(a, b *sandbox) int { return a.Created.Compare(b.Created) })
	for _, sb := range pods {
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(sb.ID, f.Id) {
				continue
			}
			if f.State != nil && f.State.State != sb.state() {
				continue
			}
			if !labelsMatch(sb.Labels, f.LabelSelector) {
				continue
			}
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{Id: sb.ID, Metadata: sb.metadata(), State: sb.state(),
			CreatedAt: sb.Created.UnixNano(), Labels: sb.Labels, Annotations: sb.Annotations, RuntimeHandler: sb.RuntimeName})
	}
	return resp, nil
}

// labelsMatch is the CRI's label selector: every pair must be there.
func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// PodSandboxStats sums the pod's containers.
func (s *Service) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.pods.get(r.PodSandboxId)
	if err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(sb)}, nil
}

func (s *Service) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range s.pods.list() {
		if f != nil && ((f.Id != "" && !strings.HasPrefix(sb.ID, f.Id)) || !labelsMatch(sb.Labels, f.LabelSelector)) {
			continue
		}
		resp.Stats = append(resp.Stats, s.podStats(sb))
	}
	return resp, nil
}

func (s *Service) podStats(sb *sandbox) *runtimeapi.PodSandboxStats {
	attrs := &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: sb.metadata(), Labels: sb.Labels, Annotations: sb.Annotations}
	lx := &runtimeapi.LinuxPodSandboxStats{Cpu: &runtimeapi.CpuUsage{}, Memory: &runtimeapi.MemoryUsage{}}
	var cpu, ws, usage, rss uint64
	var ts int64
	for _, c := range s.podContainers(sb.ID) {
		cs := s.containerStats(c)
		if cs == nil {
			continue
		}
		lx.Containers = append(lx.Containers, cs)
		cpu += cs.Cpu.GetUsageCoreNanoSeconds().GetValue()
		ws += cs.Memory.GetWorkingSetBytes().GetValue()
		usage += cs.Memory.GetUsageBytes().GetValue()
		rss += cs.Memory.GetRssBytes().GetValue()
		ts = max(ts, cs.Cpu.GetTimestamp())
	}
	lx.Cpu = &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}}
	lx.Memory = &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws},
		UsageBytes: &runtimeapi.UInt64Value{Value: usage}, RssBytes: &runtimeapi.UInt64Value{Value: rss}}
	return &runtimeapi.PodSandboxStats{Attributes: attrs, Linux: lx}
}
