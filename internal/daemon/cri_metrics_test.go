package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/isulad-go/isulad/internal/cgroups"
)

func TestReadCgroupMetrics(t *testing.T) {
	root := t.TempDir()
	write := func(p, data string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(data), 0o644)
	}
	self := strconv.Itoa(os.Getpid()) + "\n"
	// v1
	write("cpuacct/c/cpuacct.usage", "5000000000\n")
	write("cpuacct/c/cpuacct.stat", "user 300\nsystem 100\n")
	write("cpu/c/cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 7000\n")
	write("memory/c/memory.usage_in_bytes", "10000\n")
	write("memory/c/memory.max_usage_in_bytes", "20000\n")
	write("memory/c/memory.failcnt", "3\n")
	write("memory/c/memory.stat", "total_rss 3000\ntotal_cache 5000\ntotal_mapped_file 100\ntotal_swap 9\ntotal_inactive_file 4000\ntotal_pgfault 7\ntotal_pgmajfault 1\n")
	write("memory/c/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n")
	write("memory/c/cgroup.procs", self)
	write("pids/c/pids.max", "max\n")
	write("blkio/c/blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n")
	write("blkio/c/blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n")
	m, err := readCgroupMetrics(root, cgroups.V1, "/c")
	if err != nil || m.CPUUsageNanos != 5e9 || m.CPUUserNanos != 3e9 || m.CPUSystemNanos != 1e9 || m.CFSPeriods != 10 ||
		m.CFSThrottledPeriods != 2 || m.CFSThrottledNanos != 7000 || m.MemoryUsage != 10000 || m.MemoryMaxUsage != 20000 ||
		m.MemoryWorkingSet != 6000 || m.MemoryCache != 5000 || m.MemorySwap != 9 || m.MemoryFailcnt != 3 || m.OOMEvents != 4 ||
		m.PageFaults != 7 || m.ThreadsMax != 0 {
		t.Errorf("v1: %+v, %v", m, err)
	}
	if len(m.BlockIO) != 1 || m.BlockIO[0].Major != 8 || m.BlockIO[0].ReadBytes != 4096 || m.BlockIO[0].WriteBytes != 8192 ||
		m.BlockIO[0].Reads != 1 || m.BlockIO[0].Writes != 2 || m.BlockIO[0].Device == "" {
		t.Errorf("v1 block I/O %+v", m.BlockIO)
	}
	// This test's own process: one process, its threads and descriptors.
	if m.Processes != 1 || m.Threads < 1 || m.FileDescriptors < 3 {
		t.Errorf("v1 processes %d threads %d fds %d", m.Processes, m.Threads, m.FileDescriptors)
	}
	// v2
	write("c2/cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 6\n")
	write("c2/memory.current", "9000\n")
	write("c2/memory.peak", "9500\n")
	write("c2/memory.stat", "anon 100\nfile 200\nfile_mapped 50\nkernel 70\ninactive_file 1000\npgfault 2\npgmajfault 1\n")
	write("c2/memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
	write("c2/pids.max", "4096\n")
	write("c2/cgroup.procs", self)
	write("c2/io.stat", "259:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n")
	m, err = readCgroupMetrics(root, cgroups.V2, "/c2")
	if err != nil || m.CPUUsageNanos != 5000 || m.CPUUserNanos != 3000 || m.CFSThrottledNanos != 6000 || m.MemoryUsage != 9000 ||
		m.MemoryMaxUsage != 9500 || m.MemoryWorkingSet != 8000 || m.MemoryRSS != 100 || m.MemoryCache != 200 ||
		m.MemoryKernel != 70 || m.MemoryFailcnt != 5 || m.OOMEvents != 1 || m.ThreadsMax != 4096 || m.Processes != 1 {
		t.Errorf("v2: %+v, %v", m, err)
	}
	if len(m.BlockIO) != 1 || m.BlockIO[0].Major != 259 || m.BlockIO[0].ReadBytes != 100 || m.BlockIO[0].Writes != 4 {
		t.Errorf("v2 block I/O %+v", m.BlockIO)
	}
	if _, err := readCgroupMetrics(root, cgroups.V1, "/gone"); err == nil {
		t.Error("metrics of a missing cgroup: no error")
	}
}

func TestNetDevCounters(t *testing.T) {
	// This process's network namespace: every interface but lo, each with a name.
	for _, n := range netDevCounters(os.Getpid()) {
		if n.Name == "" || n.Name == "lo" {
			t.Errorf("interface %+v", n)
		}
	}
	if got := netDevCounters(0); got != nil {
		t.Errorf("pid 0: %v", got)
	}
}
