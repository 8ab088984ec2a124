package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type statsSample struct {
	ID           string
	Name         string
	CPUPercent   float64
	MemUsage     uint64
	MemLimit     uint64
	PIDs         uint64
	HostChannels []struct {
		PathInContainer string
		Used, Size      uint64
	}
}

func cgroupUint(t *testing.T, p string) uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func memStat(t *testing.T, dir, key string) uint64 {
	b, _ := os.ReadFile(filepath.Join(dir, "memory.stat"))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	t.Fatalf("%s not in memory.stat", key)
	return 0
}

func TestStatsAgainstCgroupFiles(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("needs the cgroup v1 memory controller (this host's layout)")
	}
	d := StartDaemon(t)
	rf := Rootfs(t)
	ch := filepath.Join(d.TempDir(), "ch")
	// 20 MiB in a tmpfs (shared memory, charged to the container), 3 MiB in the channel,
	// then three sleeping processes: nothing changes while we compare.
	busy := d.Must("run", "-d", "-m", "96m", "--pids-limit", "50", "--tmpfs", "/t:size=64m",
		"--host-channel", ch+":/ch:rw:16M", "--external-rootfs", rf, "none", "sh", "-c",
		"dd if=/dev/zero of=/t/f bs=1M count=20; dd if=/dev/zero of=/ch/f bs=1M count=3; touch /ch/done; sleep 1000 & sleep 1000 & exec sleep 1000")
	spin := d.Must("run", "-d", "--external-rootfs", rf, "none", "sh", "-c", "while :; do :; done")
	cg := "/isulad/" + busy
	WaitFor(t, "the writes, then 3 processes", 20*time.Second, func() bool {
		b, _ := os.ReadFile("/sys/fs/cgroup/pids" + cg + "/pids.current")
		_, err := os.Stat(ch + "/done")
		return strings.TrimSpace(string(b)) == "3" && err == nil
	})

	out := d.Must("stats", "--no-stream", "--format", "{{json .Raw}}", busy, spin)
	mem := "/sys/fs/cgroup/memory" + cg
	want := cgroupUint(t, mem+"/memory.usage_in_bytes") - memStat(t, mem, "total_inactive_file")
	var got []statsSample
	for _, l := range strings.Split(out, "\n") {
		var s statsSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, s)
	}
	if len(got) != 2 || got[0].ID != busy || got[1].ID != spin {
		t.Fatalf("stats: %s", out)
	}
	s := got[0]
	// Memory moves a little between our read and the daemon's (page tables, slab): 1 MiB.
	if diff := int64(s.MemUsage) - int64(want); diff < -(1<<20) || diff > 1<<20 || s.MemUsage < 23<<20 {
		t.Errorf("MemUsage %d, cgroup says %d (usage - total_inactive_file); 23 MiB written", s.MemUsage, want)
	}
	if lim := cgroupUint(t, mem+"/memory.limit_in_bytes"); s.MemLimit != lim || lim != 96<<20 {
		t.Errorf("MemLimit %d, cgroup %d", s.MemLimit, lim)
	}
	if p := cgroupUint(t, "/sys/fs/cgroup/pids"+cg+"/pids.current"); s.PIDs != p || p != 3 {
		t.Errorf("PIDs %d, cgroup %d", s.PIDs, p)
	}
	if len(s.HostChannels) != 1 || s.HostChannels[0].Used != 3<<20 || s.HostChannels[0].Size != 16<<20 || s.HostChannels[0].PathInContainer != "/ch" {
		t.Errorf("host channels %+v, want /ch 3 MiB of 16 MiB", s.HostChannels)
	}
	if s.CPUPercent > 5 {
		t.Errorf("sleeping container at %.1f%% CPU", s.CPUPercent)
	}
	if got[1].CPUPercent < 5 {
		t.Errorf("spinning container at %.1f%% CPU", got[1].CPUPercent)
	}
	// The table: one header, one row per running container.
	table := d.Must("stats", "--no-stream")
	lines := strings.Split(table, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.Contains(table, "/ch 3MiB / 16MiB") || !strings.Contains(table, "/ 96MiB") {
		t.Errorf("table:\n%s", table)
	}
	// Streaming: samples keep coming until the client goes.
	c := d.StartConsole(24, 200, "stats", busy)
	c.Expect("CONTAINER ID", 10*time.Second)
	c.Expect("CONTAINER ID", 10*time.Second)
	c.Send("\x03")
	if r := d.Isula("stats", "--no-stream", "nosuch"); r.Code != 1 || !strings.Contains(r.Stderr, "nosuch") {
		t.Errorf("unknown container: %s", r)
	}
	if r := d.Isula("stats", "--no-stream", "--format", "{{.Nope"); r.Code != 125 {
		t.Errorf("bad template: %s", r)
	}
}
