package integration

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func cgroupFile(t *testing.T, ctrl, id, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, "isulad", id, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestUpdateLive(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("needs the cgroup v1 controllers (this host's layout)")
	}
	for _, rt := range []string{"runc", "crun"} {
		t.Run(rt, func(t *testing.T) {
			if _, err := osexec.LookPath(rt); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is not installed", rt)
				}
				t.Skipf("%s is not installed", rt)
			}
			updateLive(t, rt)
		})
	}
}

func updateLive(t *testing.T, runtime string) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	// 20 MiB of shared memory the kernel cannot reclaim (no swap limit to push it to).
	id := d.Must("run", "-d", "--runtime", runtime, "-m", "64m", "--memory-swap", "64m", "--external-rootfs", rf, "none", "sh", "-c",
		"dd if=/dev/zero of=/dev/shm/x bs=1M count=20 2>/dev/null; touch /dev/shm/done; exec sleep 1000")
	WaitFor(t, "the 20 MiB write", 20*time.Second, func() bool {
		return d.Isula("exec", id, "test", "-e", "/dev/shm/done").Code == 0
	})
	d.Must("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "20", "--restart", "on-failure:3", id)
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"memory", "memory.memsw.limit_in_bytes", "268435456"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.shares", "512"},
		{"pids", "pids.max", "20"},
	} {
		if got := cgroupFile(t, c.ctrl, id, c.file); got != c.want {
			t.Errorf("%s = %s, want %s", c.file, got, c.want)
		}
	}
	want := "134217728 268435456 500000000 512 20 on-failure 3"
	tmpl := "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
	if got := d.Inspect(id, tmpl); got != want {
		t.Fatalf("inspect: %s, want %s", got, want)
	}
	// Below what it uses: one line, nothing changed.
	r := d.Isula("update", "-m", "8m", "--memory-swap", "8m", id)
	if r.Code != 1 || !strings.Contains(r.Stderr, "cannot set the memory limit") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("update below usage: %s", r)
	}
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != "134217728" {
		t.Fatalf("limit after the refused update: %s", got)
	}
	if got := d.Inspect(id, tmpl); got != want {
		t.Fatalf("inspect after the refused update: %s", got)
	}
	// Persisted: kept across a daemon restart and applied at the next start.
	d.Stop()
	d.Start()
	if got := d.Inspect(id, tmpl); got != want {
		t.Fatalf("inspect after a daemon restart: %s", got)
	}
	d.Must("restart", "-t", "0", id)
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != "134217728" {
		t.Fatalf("limit after a restart of the container: %s", got)
	}
	// -1 lifts the pids limit; a stopped container is updated for its next start.
	d.Must("update", "--pids-limit", "-1", id)
	pidMax, _ := os.ReadFile("/proc/sys/kernel/pid_max")
	if got := cgroupFile(t, "pids", id, "pids.max"); got != "max" && got != strings.TrimSpace(string(pidMax)) {
		t.Fatalf("pids.max = %s, want max (or pid_max with crun)", got)
	}
	d.Must("stop", "-t", "0", id)
	d.Must("update", "-m", "100m", id)
	d.Must("start", id)
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != "104857600" {
		t.Fatalf("limit set while stopped, after start: %s", got)
	}
	for _, bad := range [][]string{{"update", id}, {"update", "-m", "1k", id}, {"update", "--cpus", "x", id}, {"update", "--restart", "sometimes", id}, {"update", "--host-channel", "nocolon", id}} {
		if r := d.Isula(bad...); r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: %s", bad, r)
		}
	}
}

func TestUpdateHostChannelResize(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	hp := filepath.Join(d.TempDir(), "ch")
	id := d.Must("run", "-d", "-m", "64m", "--host-channel", hp+":/ch:rw:8M", "--external-rootfs", rf, "none", "sleep", "1000")
	df := func() string { return d.Must("exec", id, "df", "-k", "/ch") }
	if !strings.Contains(df(), " 8192 ") {
		t.Fatalf("df before: %s", df())
	}
	// A write past the old size fails first...
	if r := d.Isula("exec", id, "dd", "if=/dev/zero", "of=/ch/f", "bs=1M", "count=12"); r.Code == 0 {
		t.Fatalf("12 MiB fit in an 8 MiB channel: %s", r)
	}
	d.Must("exec", id, "rm", "/ch/f")
	d.Must("exec", id, "sh", "-c", "echo kept > /ch/keep")
	r := d.Isula("update", "--host-channel", "/ch:40M", id)
	if r.Code != 0 || !strings.Contains(r.Stderr, "Warning") {
		t.Fatalf("grow (with the -m warning, 40M > 64M/2): %s", r)
	}
	if !strings.Contains(df(), " 40960 ") {
		t.Fatalf("df inside after: %s", df())
	}
	if out, err := hostDF(hp); err != nil || !strings.Contains(out, " 40960 ") {
		t.Fatalf("df on the host after: %s %v", out, err)
	}
	// ...and succeeds now, with the old data still there.
	d.Must("exec", id, "dd", "if=/dev/zero", "of=/ch/f", "bs=1M", "count=12")
	if out := d.Must("exec", id, "cat", "/ch/keep"); out != "kept" {
		t.Fatalf("data lost: %q", out)
	}
	if st, err := os.Stat(filepath.Join(hp, "f")); err != nil || st.Size() != 12<<20 {
		t.Fatalf("host sees %v %v", st, err)
	}
	// Shrinking below the 12 MiB in use is refused; to 16M works.
	r = d.Isula("update", "--host-channel", "/ch:4M", id)
	if r.Code != 1 || !strings.Contains(r.Stderr, "in use") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("shrink below use: %s", r)
	}
	d.Must("update", "--host-channel", "/ch:16M", id)
	if !strings.Contains(df(), " 16384 ") {
		t.Fatalf("df after shrinking: %s", df())
	}
	if got := d.Inspect(id, "{{(index .HostConfig.HostChannels 0).Size}} {{.HostConfig.HostChannel.Size}}"); got != "16777216 16777216" {
		t.Fatalf("inspect: %s", got)
	}
	// A lower -m gets create's warning too (16M of channel > 24M/2).
	if r := d.Isula("update", "-m", "24m", id); r.Code != 0 || !strings.Contains(r.Stderr, "Warning") {
		t.Fatalf("lower -m: %s", r)
	}
	// Kept across a daemon restart and a container restart.
	d.Stop()
	d.Start()
	d.Must("restart", "-t", "0", id)
	if !strings.Contains(df(), " 16384 ") {
		t.Fatalf("df after the restarts: %s", df())
	}
	if r := d.Isula("update", "--host-channel", "/nope:16M", id); r.Code != 1 || !strings.Contains(r.Stderr, "no host channel at /nope") {
		t.Fatalf("unknown channel: %s", r)
	}
}

func hostDF(p string) (string, error) {
	out, err := osexec.Command("df", "-k", p).CombinedOutput()
	return string(out), err
}
