package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/cgroups"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCgroupSample(t *testing.T) {
	v1, v2 := t.TempDir(), t.TempDir()
	writeFiles(t, v1, map[string]string{
		"cpuacct/isulad/x/cpuacct.usage":                           "123456789\n",
		"memory/isulad/x/memory.usage_in_bytes":                    "10485760\n",
		"memory/isulad/x/memory.limit_in_bytes":                    "67108864\n",
		"memory/isulad/x/memory.stat":                              "cache 100\ntotal_inactive_file 1048576\ntotal_shmem 4096\n",
		"pids/isulad/x/pids.current":                               "7\n",
		"blkio/isulad/x/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n8:16 Read 1\n8:0 Sync 5\nTotal 12289\n",
	})
	writeFiles(t, v2, map[string]string{
		"isulad/x/cpu.stat":       "usage_usec 2000\nuser_usec 1000\n",
		"isulad/x/memory.current": "5000\n",
		"isulad/x/memory.max":     "max\n",
		"isulad/x/memory.stat":    "anon 10\ninactive_file 1000\n",
		"isulad/x/pids.current":   "3\n",
		"isulad/x/io.stat":        "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
	})
	for _, c := range []struct {
		r    cgroupReader
		want types.Stats
	}{
		{cgroupReader{v1, cgroups.Hybrid}, types.Stats{CPUUsageNs: 123456789, MemUsage: 9 << 20, MemLimit: 64 << 20, PIDs: 7, BlockRead: 4097, BlockWrite: 8192}},
		{cgroupReader{v2, cgroups.V2}, types.Stats{CPUUsageNs: 2000000, MemUsage: 4000, PIDs: 3, BlockRead: 11, BlockWrite: 22}},
	} {
		var got types.Stats
		c.r.sample("/isulad/x", &got)
		if got.CPUUsageNs != c.want.CPUUsageNs || got.MemUsage != c.want.MemUsage || got.MemLimit != c.want.MemLimit ||
			got.PIDs != c.want.PIDs || got.BlockRead != c.want.BlockRead || got.BlockWrite != c.want.BlockWrite {
			t.Errorf("%s: got %+v, want %+v", c.r.mode, got, c.want)
		}
	}
}

func TestCPUPercent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		prev, cur types.Stats
		want      float64
	}{
		{types.Stats{Read: t0, CPUUsageNs: 1e9}, types.Stats{Read: t0.Add(time.Second), CPUUsageNs: 1.5e9}, 50},
		{types.Stats{Read: t0, CPUUsageNs: 1e9}, types.Stats{Read: t0.Add(time.Second), CPUUsageNs: 3e9}, 200},
		{types.Stats{Read: t0, CPUUsageNs: 2e9}, types.Stats{Read: t0.Add(time.Second), CPUUsageNs: 1e9}, 0}, // restarted
		{types.Stats{Read: t0, CPUUsageNs: 1e9}, types.Stats{Read: t0, CPUUsageNs: 2e9}, 0},
	} {
		if got := cpuPercent(c.prev, c.cur); got != c.want {
			t.Errorf("cpuPercent(%v, %v) = %v, want %v", c.prev, c.cur, got, c.want)
		}
	}
}
