package cri

import (
	"context"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI's metrics calls (ListMetricDescriptors, ListPodSandboxMetrics): the kubelet's
// cAdvisor-less path, with cAdvisor's metric names and labels. Each value is read from the
// container's cgroup, /proc and its writable layer (ContainerMetrics of the engine), or from
// its OCI spec; the network is the pod's, seen from its network namespace.

// Label keys, as cAdvisor's.
var (
	containerLabels = []string{"container", "id", "image", "name", "namespace", "pod"}
	networkLabels   = append(append([]string{}, containerLabels...), "interface")
	fsLabels        = append(append([]string{}, containerLabels...), "device")
	failureLabels   = append(append([]string{}, containerLabels...), "failure_type", "scope")
	blkioLabels     = append(append([]string{}, containerLabels...), "device", "major", "minor", "operation")
)

type metricDesc struct {
	name, help string
	labels     []string
	typ        runtimeapi.MetricType
}

func counter(name, help string, labels []string) metricDesc {
	return metricDesc{name, help, labels, runtimeapi.MetricType_COUNTER}
}

func gauge(name, help string, labels []string) metricDesc {
	return metricDesc{name, help, labels, runtimeapi.MetricType_GAUGE}
}

// metricDescs are the metrics this runtime reports.
var metricDescs = []metricDesc{
	counter("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", containerLabels),
	counter("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", containerLabels),
	counter("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", containerLabels),
	counter("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", containerLabels),
	counter("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", containerLabels),
	counter("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", containerLabels),
	gauge("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", containerLabels),
	gauge("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", containerLabels),
	gauge("container_memory_working_set_bytes", "Current working set in bytes.", containerLabels),
	gauge("container_memory_rss", "Size of RSS in bytes.", containerLabels),
	gauge("container_memory_cache", "Number of bytes of page cache memory.", containerLabels),
	gauge("container_memory_swap", "Container swap usage in bytes.", containerLabels),
	gauge("container_memory_mapped_file", "Size of memory mapped files in bytes.", containerLabels),
	gauge("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", containerLabels),
	counter("container_memory_failcnt", "Number of memory usage hits limits.", containerLabels),
	counter("container_memory_failures_total", "Cumulative count of memory allocation failures.", failureLabels),
	counter("container_oom_events_total", "Count of out of memory events observed for the container.", containerLabels),
	gauge("container_processes", "Number of processes running inside the container.", containerLabels),
	gauge("container_threads", "Number of threads running inside the container.", containerLabels),
	gauge("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", containerLabels),
	gauge("container_file_descriptors", "Number of open file descriptors for the container.", containerLabels),
	gauge("container_sockets", "Number of open sockets for the container.", containerLabels),
	gauge("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", fsLabels),
	gauge("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", fsLabels),
	gauge("container_fs_inodes_free", "Number of available Inodes.", fsLabels),
	gauge("container_fs_inodes_total", "Number of Inodes.", fsLabels),
	counter("container_fs_reads_bytes_total", "Cumulative count of bytes read.", fsLabels),
	counter("container_fs_reads_total", "Cumulative count of reads completed.", fsLabels),
	counter("container_fs_writes_bytes_total", "Cumulative count of bytes written.", fsLabels),
	counter("container_fs_writes_total", "Cumulative count of writes completed.", fsLabels),
	counter("container_blkio_device_usage_total", "Blkio device bytes usage.", blkioLabels),
	gauge("container_spec_cpu_period", "CPU period of the container.", containerLabels),
	gauge("container_spec_cpu_shares", "CPU share of the container.", containerLabels),
	gauge("container_spec_memory_limit_bytes", "Memory limit for the container.", containerLabels),
	gauge("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", containerLabels),
	gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", containerLabels),
	gauge("container_last_seen", "Last time a container was seen by the exporter.", containerLabels),
	counter("container_network_receive_bytes_total", "Cumulative count of bytes received.", networkLabels),
	counter("container_network_receive_packets_total", "Cumulative count of packets received.", networkLabels),
	counter("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", networkLabels),
	counter("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", networkLabels),
	counter("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", networkLabels),
	counter("container_network_transmit_packets_total", "Cumulative count of packets transmitted.", networkLabels),
	counter("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", networkLabels),
	counter("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", networkLabels),
}

func (s *Service) ListMetricDescriptors(ctx context.Context, r *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	resp := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, d := range metricDescs {
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: d.labels})
	}
	return resp, nil
}

func (s *Service) ListPodSandboxMetrics(ctx context.Context, r *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, sb := range s.pods.list() {
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID}
		for _, c := range s.podContainers(sb.ID) {
			if c.Status != "running" && c.Status != "paused" {
				continue
			}
			m, err := s.engine.ContainerMetrics(ctx, c.ID)
			if err != nil {
				continue // gone meanwhile, or not running any more
			}
			meta, _ := metaOf(c)
			labels := []string{meta.Name, c.ID, meta.Image, c.Name, sb.Namespace, sb.Name}
			cm := &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: containerMetrics(m, c, labels)}
			pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
			if len(pm.Metrics) == 0 {
				// The pod's network: every container of the pod shares its namespace; the
				// first running one's view is the pod's (labels of the pod, no container).
				pm.Metrics = networkMetrics(m, []string{"", sb.ID, "", sb.Name, sb.Namespace, sb.Name})
			}
		}
		resp.PodMetrics = append(resp.PodMetrics, pm)
	}
	return resp, nil
}

func metric(ts int64, d metricDesc, labels []string, v uint64) *runtimeapi.Metric {
	return &runtimeapi.Metric{Name: d.name, Timestamp: ts, MetricType: d.typ, LabelValues: labels,
		Value: &runtimeapi.UInt64Value{Value: v}}
}

func descOf(name string) metricDesc {
	for _, d := range metricDescs {
		if d.name == name {
			return d
		}
	}
	panic("cri: no metric descriptor " + name)
}

// containerMetrics are a container's metrics but the network's. Seconds are whole seconds
// (the CRI's values are integers), counters of time are rounded down.
func containerMetrics(m ContainerMetrics, c ContainerState, labels []string) []*runtimeapi.Metric {
	ts := m.Timestamp.UnixNano()
	secs := func(ns uint64) uint64 { return ns / uint64(time.Second) }
	var out []*runtimeapi.Metric
	add := func(name string, v uint64) { out = append(out, metric(ts, descOf(name), labels, v)) }
	add("container_cpu_usage_seconds_total", secs(m.CPUUsageNanos))
	add("container_cpu_user_seconds_total", secs(m.CPUUserNanos))
	add("container_cpu_system_seconds_total", secs(m.CPUSystemNanos))
	add("container_cpu_cfs_periods_total", m.CFSPeriods)
	add("container_cpu_cfs_throttled_periods_total", m.CFSThrottledPeriods)
	add("container_cpu_cfs_throttled_seconds_total", secs(m.CFSThrottledNanos))
	add("container_memory_usage_bytes", m.MemoryUsage)
	add("container_memory_max_usage_bytes", m.MemoryMaxUsage)
	add("container_memory_working_set_bytes", m.MemoryWorkingSet)
	add("container_memory_rss", m.MemoryRSS)
	add("container_memory_cache", m.MemoryCache)
	add("container_memory_swap", m.MemorySwap)
	add("container_memory_mapped_file", m.MemoryMappedFile)
	add("container_memory_kernel_usage", m.MemoryKernel)
	add("container_memory_failcnt", m.MemoryFailcnt)
	fail := descOf("container_memory_failures_total")
	for _, f := range []struct {
		typ string
		v   uint64
	}{{"pgfault", m.PageFaults}, {"pgmajfault", m.MajorPageFaults}} {
		out = append(out, metric(ts, fail, append(append([]string{}, labels...), f.typ, "container"), f.v))
	}
	add("container_oom_events_total", m.OOMEvents)
	add("container_processes", m.Processes)
	add("container_threads", m.Threads)
	add("container_threads_max", m.ThreadsMax)
	add("container_file_descriptors", m.FileDescriptors)
	add("container_sockets", m.Sockets)
	fsl := append(append([]string{}, labels...), m.FSDevice)
	for _, f := range []struct {
		name string
		v    uint64
	}{{"container_fs_usage_bytes", m.FSUsageBytes}, {"container_fs_limit_bytes", m.FSLimitBytes},
		{"container_fs_inodes_free", m.FSInodesFree}, {"container_fs_inodes_total", m.FSInodesTotal}} {
		out = append(out, metric(ts, descOf(f.name), fsl, f.v))
	}
	for _, b := range m.BlockIO {
		dl := append(append([]string{}, labels...), b.Device)
		out = append(out, metric(ts, descOf("container_fs_reads_bytes_total"), dl, b.ReadBytes),
			metric(ts, descOf("container_fs_reads_total"), dl, b.Reads),
			metric(ts, descOf("container_fs_writes_bytes_total"), dl, b.WriteBytes),
			metric(ts, descOf("container_fs_writes_total"), dl, b.Writes))
		for _, op := range []struct {
			name string
			v    uint64
		}{{"Read", b.ReadBytes}, {"Write", b.WriteBytes}} {
			bl := append(append([]string{}, labels...), b.Device, strconv.FormatUint(b.Major, 10), strconv.FormatUint(b.Minor, 10), op.name)
			out = append(out, metric(ts, descOf("container_blkio_device_usage_total"), bl, op.v))
		}
	}
	add("container_spec_cpu_period", uint64(max(c.Resources.CPUPeriod, 0)))
	add("container_spec_cpu_shares", uint64(max(c.Resources.CPUShares, 0)))
	add("container_spec_memory_limit_bytes", uint64(max(c.Resources.MemoryLimit, 0)))
	add("container_spec_memory_swap_limit_bytes", uint64(max(c.Resources.MemorySwap, 0)))
	add("container_start_time_seconds", uint64(max(c.StartedAt.Unix(), 0)))
	add("container_last_seen", uint64(m.Timestamp.Unix()))
	return out
}

// networkMetrics are the interfaces' counters (lo left out, as cAdvisor does).
func networkMetrics(m ContainerMetrics, labels []string) []*runtimeapi.Metric {
	ts := m.Timestamp.UnixNano()
	var out []*runtimeapi.Metric
	for _, n := range m.Network {
		l := append(append([]string{}, labels...), n.Name)
		for _, v := range []struct {
			name string
			v    uint64
		}{
			{"container_network_receive_bytes_total", n.RxBytes}, {"container_network_receive_packets_total", n.RxPackets},
			{"container_network_receive_errors_total", n.RxErrors}, {"container_network_receive_packets_dropped_total", n.RxDropped},
			{"container_network_transmit_bytes_total", n.TxBytes}, {"container_network_transmit_packets_total", n.TxPackets},
			{"container_network_transmit_errors_total", n.TxErrors}, {"container_network_transmit_packets_dropped_total", n.TxDropped},
		} {
			out = append(out, metric(ts, descOf(v.name), l, v.v))
		}
	}
	return out
}
