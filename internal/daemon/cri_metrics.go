package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/cri"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux the engine runs on).
const userHZ = 100

// ContainerMetrics reads a running container's counters for the CRI's metrics calls: its
// cgroup (v1 or v2), the /proc entries of its processes, its network namespace (through its
// init's /proc/<pid>/net/dev) and its writable layer with the filesystem under it.
func (e *criEngine) ContainerMetrics(ctx context.Context, id string) (cri.ContainerMetrics, error) {
	c, err := e.get(id)
	if err != nil {
		return cri.ContainerMetrics{}, err
	}
	if st := c.Status(); st != container.Running && st != container.Paused {
		return cri.ContainerMetrics{}, fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrConflict)
	}
	c.Lock()
	pid, cgPath := c.State.Pid, c.CgroupsPath
	c.Unlock()
	m, err := readCgroupMetrics(cgroups.Root, cgroups.Mode(), cgPath)
	if err != nil {
		return m, err
	}
	m.Network = netDevCounters(pid)
	var st cri.ContainerStats
	e.withWritableLayer(c, &st)
	if st.WritableMount != "" {
		m.FSUsageBytes = st.WritableBytes
		var fs unix.Statfs_t
		if unix.Statfs(st.WritableMount, &fs) == nil {
			m.FSLimitBytes = fs.Blocks * uint64(fs.Bsize)
			m.FSInodesTotal, m.FSInodesFree = fs.Files, fs.Ffree
		}
		m.FSDevice = mountSource(st.WritableMount)
	}
	return m, nil
}

// readCgroupMetrics reads the counters of the cgroup at path under root, and counts the
// processes, threads, file descriptors and sockets of the processes in it.
func readCgroupMetrics(root, mode, path string) (cri.ContainerMetrics, error) {
	m := cri.ContainerMetrics{Timestamp: time.Now()}
	var procsFile string
	if mode == cgroups.V2 {
		dir := filepath.Join(root, path)
		cpu := keyed(filepath.Join(dir, "cpu.stat"))
		m.CPUUsageNanos, m.CPUUserNanos, m.CPUSystemNanos = cpu["usage_usec"]*1000, cpu["user_usec"]*1000, cpu["system_usec"]*1000
		m.CFSPeriods, m.CFSThrottledPeriods, m.CFSThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
		var ok bool
		if m.MemoryUsage, ok = readUint(filepath.Join(dir, "memory.current")); !ok {
			return m, fmt.Errorf("cgroup of %s: no memory.current", path)
		}
		m.MemoryMaxUsage, _ = readUint(filepath.Join(dir, "memory.peak"))
		m.MemorySwap, _ = readUint(filepath.Join(dir, "memory.swap.current"))
		mem := keyed(filepath.Join(dir, "memory.stat"))
		m.MemoryRSS, m.MemoryCache, m.MemoryMappedFile, m.MemoryKernel = mem["anon"], mem["file"], mem["file_mapped"], mem["kernel"]
		m.PageFaults, m.MajorPageFaults = mem["pgfault"], mem["pgmajfault"]
		m.MemoryWorkingSet = m.MemoryUsage - min(m.MemoryUsage, mem["inactive_file"])
		ev := keyed(filepath.Join(dir, "memory.events"))
		m.MemoryFailcnt, m.OOMEvents = ev["max"], ev["oom_kill"]
		m.ThreadsMax, _ = readUint(filepath.Join(dir, "pids.max"))
		m.BlockIO = ioStatV2(filepath.Join(dir, "io.stat"))
		procsFile = filepath.Join(dir, "cgroup.procs")
	} else {
		acct := filepath.Join(root, "cpuacct", path)
		var ok bool
		if m.CPUUsageNanos, ok = readUint(filepath.Join(acct, "cpuacct.usage")); !ok {
			return m, fmt.Errorf("cgroup of %s: no cpuacct.usage", path)
		}
		st := keyed(filepath.Join(acct, "cpuacct.stat"))
		m.CPUUserNanos, m.CPUSystemNanos = st["user"]*uint64(time.Second)/userHZ, st["system"]*uint64(time.Second)/userHZ
		cpu := keyed(filepath.Join(root, "cpu", path, "cpu.stat"))
		m.CFSPeriods, m.CFSThrottledPeriods, m.CFSThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_time"]
		mdir := filepath.Join(root, "memory", path)
		if m.MemoryUsage, ok = readUint(filepath.Join(mdir, "memory.usage_in_bytes")); !ok {
			return m, fmt.Errorf("cgroup of %s: no memory.usage_in_bytes", path)
		}
		m.MemoryMaxUsage, _ = readUint(filepath.Join(mdir, "memory.max_usage_in_bytes"))
		m.MemoryFailcnt, _ = readUint(filepath.Join(mdir, "memory.failcnt"))
		m.MemoryKernel, _ = readUint(filepath.Join(mdir, "memory.kmem.usage_in_bytes"))
		mem := keyed(filepath.Join(mdir, "memory.stat"))
		m.MemoryRSS, m.MemoryCache, m.MemoryMappedFile, m.MemorySwap = mem["total_rss"], mem["total_cache"], mem["total_mapped_file"], mem["total_swap"]
		m.PageFaults, m.MajorPageFaults = mem["total_pgfault"], mem["total_pgmajfault"]
		m.MemoryWorkingSet = m.MemoryUsage - min(m.MemoryUsage, mem["total_inactive_file"])
		m.OOMEvents = keyed(filepath.Join(mdir, "memory.oom_control"))["oom_kill"]
		m.ThreadsMax, _ = readUint(filepath.Join(root, "pids", path, "pids.max"))
		bdir := filepath.Join(root, "blkio", path)
		m.BlockIO = blkioV1(filepath.Join(bdir, "blkio.throttle.io_service_bytes_recursive"), filepath.Join(bdir, "blkio.throttle.io_serviced_recursive"))
		procsFile = filepath.Join(mdir, "cgroup.procs")
	}
	if b, err := os.ReadFile(procsFile); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if _, err := strconv.Atoi(f); err != nil {
				continue
			}
			m.Processes++
			dir := filepath.Join("/proc", f)
			if ts, err := os.ReadDir(filepath.Join(dir, "task")); err == nil {
				m.Threads += uint64(len(ts))
			}
			fds, err := os.ReadDir(filepath.Join(dir, "fd"))
			if err != nil {
				continue
			}
			m.FileDescriptors += uint64(len(fds))
			for _, fd := range fds {
				if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
					m.Sockets++
				}
			}
		}
	}
	return m, nil
}

// netDevCounters are the counters of every interface but lo of /proc/<pid>/net/dev (the
// network namespace of the process).
func netDevCounters(pid int) []cri.InterfaceCounters {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return nil
	}
	var out []cri.InterfaceCounters
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if !ok || name == "lo" || len(f) < 12 {
			continue
		}
		n := make([]uint64, 12)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		// receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes
		// packets errs drop ...
		out = append(out, cri.InterfaceCounters{Name: name, RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]})
	}
	return out
}

// mountSource is the source of the mount that holds path (its device), from mountinfo.
func mountSource(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	best, src := "", ""
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		mp := f[4]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, src = mp, g[1]
		}
	}
	return src
}

// blkioV1 reads cgroup v1's per-device "MAJ:MIN Read|Write|... N" tables of bytes and of
// operations.
func blkioV1(bytesFile, opsFile string) []cri.BlockIO {
	devs := map[[2]uint64]*cri.BlockIO{}
	var order [][2]uint64
	read := func(p string, r, w func(*cri.BlockIO, uint64)) {
		b, err := os.ReadFile(p)
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 {
				continue
			}
			k, ok := parseMajMin(f[0])
			if !ok {
				continue
			}
			v, _ := strconv.ParseUint(f[2], 10, 64)
			d := devs[k]
			if d == nil {
				d = &cri.BlockIO{Major: k[0], Minor: k[1], Device: blockDevName(k)}
				devs[k] = d
				order = append(order, k)
			}
			switch f[1] {
			case "Read":
				r(d, v)
			case "Write":
				w(d, v)
			}
		}
	}
	read(bytesFile, func(d *cri.BlockIO, v uint64) { d.ReadBytes = v }, func(d *cri.BlockIO, v uint64) { d.WriteBytes = v })
	read(opsFile, func(d *cri.BlockIO, v uint64) { d.Reads = v }, func(d *cri.BlockIO, v uint64) { d.Writes = v })
	var out []cri.BlockIO
	for _, k := range order {
		out = append(out, *devs[k])
	}
	return out
}

// ioStatV2 reads cgroup v2's io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...".
func ioStatV2(p string) []cri.BlockIO {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var out []cri.BlockIO
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		k, ok := parseMajMin(f[0])
		if !ok {
			continue
		}
		d := cri.BlockIO{Major: k[0], Minor: k[1], Device: blockDevName(k)}
		for _, kv := range f[1:] {
			name, val, _ := strings.Cut(kv, "=")
			v, _ := strconv.ParseUint(val, 10, 64)
			switch name {
			case "rbytes":
				d.ReadBytes = v
			case "wbytes":
				d.WriteBytes = v
			case "rios":
				d.Reads = v
			case "wios":
				d.Writes = v
			}
		}
		out = append(out, d)
	}
	return out
}

func parseMajMin(s string) ([2]uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return [2]uint64{}, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	mn, err2 := strconv.ParseUint(b, 10, 64)
	return [2]uint64{maj, mn}, err1 == nil && err2 == nil
}

// blockDevName is the /dev name of a block device (from /sys/dev/block/MAJ:MIN/uevent), or
// MAJ:MIN when the kernel does not say.
func blockDevName(k [2]uint64) string {
	id := fmt.Sprintf("%d:%d", k[0], k[1])
	b, err := os.ReadFile("/sys/dev/block/" + id + "/uevent")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(l, "DEVNAME="); ok && n != "" {
				return "/dev/" + n
			}
		}
	}
	return id
}
