package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// statsInterval is the time between two samples of a stream (and between the two samples
// one --no-stream answer needs for its CPU percentage).
const statsInterval = time.Second

// cgroupReader reads a container's cgroup files; root is the cgroup mount root (tests give
// another).
type cgroupReader struct {
	root string
	mode string // cgroups.V1, Hybrid or V2
}

func readUint(p string) (uint64, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// keyed reads "key value" lines (memory.stat, cpu.stat) into a map.
func keyed(p string) map[string]uint64 {
	m := map[string]uint64{}
	b, err := os.ReadFile(p)
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

// sample fills the cgroup numbers of st for the cgroup at cgPath.
func (r cgroupReader) sample(cgPath string, st *types.Stats) {
	if r.mode == cgroups.V2 {
		dir := filepath.Join(r.root, cgPath)
		st.CPUUsageNs = keyed(filepath.Join(dir, "cpu.stat"))["usage_usec"] * 1000
		st.MemUsage, _ = readUint(filepath.Join(dir, "memory.current"))
		if inactive := keyed(filepath.Join(dir, "memory.stat"))["inactive_file"]; inactive < st.MemUsage {
			st.MemUsage -= inactive
		}
		st.MemLimit, _ = readUint(filepath.Join(dir, "memory.max"))
		st.PIDs, _ = readUint(filepath.Join(dir, "pids.current"))
		if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if v, ok := strings.CutPrefix(f, "rbytes="); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					st.BlockRead += n
				} else if v, ok := strings.CutPrefix(f, "wbytes="); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					st.BlockWrite += n
				}
			}
		}
		return
	}
	st.CPUUsageNs, _ = readUint(filepath.Join(r.root, "cpuacct", cgPath, "cpuacct.usage"))
	mem := filepath.Join(r.root, "memory", cgPath)
	st.MemUsage, _ = readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	// As docker: the page cache the kernel would drop first does not count. Shared memory
	// (tmpfs pages, host channels among them) is not inactive file cache: it counts.
	if inactive := keyed(filepath.Join(mem, "memory.stat"))["total_inactive_file"]; inactive < st.MemUsage {
		st.MemUsage -= inactive
	}
	st.MemLimit, _ = readUint(filepath.Join(mem, "memory.limit_in_bytes"))
	st.PIDs, _ = readUint(filepath.Join(r.root, "pids", cgPath, "pids.current"))
	if b, err := os.ReadFile(filepath.Join(r.root, "blkio", cgPath, "blkio.throttle.io_service_bytes_recursive")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 {
				continue
			}
			n, _ := strconv.ParseUint(f[2], 10, 64)
			switch f[1] {
			case "Read":
				st.BlockRead += n
			case "Write":
				st.BlockWrite += n
			}
		}
	}
}

// netDev sums the bytes of every interface but lo in /proc/<pid>/net/dev (the network
// namespace of the container's init).
func netDev(pid int) (rx, tx uint64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0, 0
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

// memTotal is the host's memory, the limit shown for a container without one.
func memTotal() uint64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n * 1024
		}
	}
	return 0
}

// Stats samples one container. A container that is not running has only its name and its
// channels' use.
func (d *Daemon) Stats(c *container.Container, cg cgroupReader, host uint64) types.Stats {
	snap := c.Snapshot()
	st := types.Stats{ID: c.ID, Name: c.Name, Read: time.Now().UTC()}
	if snap.Status == string(container.Running) || snap.Status == string(container.Paused) {
		cg.sample(c.CgroupsPath, &st)
		st.NetRx, st.NetTx = netDev(snap.Pid)
	}
	if st.MemLimit == 0 || st.MemLimit > host {
		st.MemLimit = host
	}
	for _, ch := range c.HostConfig.HostChannels {
		_, used := d.channels.Status(ch)
		st.HostChannels = append(st.HostChannels, types.ChannelUsage{PathInContainer: ch.PathInContainer, Used: uint64(used), Size: uint64(ch.Size)})
	}
	return st
}

// cpuPercent is the CPU used between two samples, in percent of one CPU (docker's figure:
// 200% is two CPUs busy).
func cpuPercent(prev, cur types.Stats) float64 {
	wall := cur.Read.Sub(prev.Read)
	if wall <= 0 || cur.CPUUsageNs < prev.CPUUsageNs {
		return 0
	}
	return float64(cur.CPUUsageNs-prev.CPUUsageNs) / float64(wall.Nanoseconds()) * 100
}

func (s *opsService) Stats(r *apiv1.StatsRequest, srv apiv1.Ops_StatsServer) error {
	var list []*container.Container
	if len(r.Ids) > 0 {
		for _, ref := range r.Ids {
			c, err := s.d.store.Get(ref)
			if err != nil {
				return gerr(err)
			}
			list = append(list, c)
		}
	} else {
		for _, c := range s.d.store.List() {
			if st := c.Status(); r.All || st == container.Running || st == container.Paused {
				list = append(list, c)
			}
		}
	}
	cg := cgroupReader{root: cgroups.Root, mode: cgroups.Mode()}
	host := memTotal()
	prev := map[string]types.Stats{}
	take := func() []types.Stats {
		out := make([]types.Stats, 0, len(list))
		for _, c := range list {
			if !s.d.store.Known(c.ID) {
				continue // removed meanwhile
			}
			st := s.d.Stats(c, cg, host)
			if p, ok := prev[c.ID]; ok {
				st.CPUPercent = cpuPercent(p, st)
			}
			prev[c.ID] = st
			out = append(out, st)
		}
		return out
	}
	ctx := srv.Context()
	take() // the first sample only starts the CPU clock
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.d.closing:
			return gerr(fmt.Errorf("the daemon is shutting down: %w", errdefs.ErrUnavailable))
		case <-time.After(statsInterval):
		}
		data, _ := json.Marshal(take())
		if err := srv.Send(&apiv1.StatsResponse{StatsJson: data}); err != nil || !r.Stream {
			return err
		}
	}
}
