package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procStats is what /proc says of a process: open fds, threads, resident memory.
type procStats struct {
	FDs, Threads int
	RSSKiB       int
}

func (s procStats) String() string {
	return fmt.Sprintf("fds=%d threads=%d rss=%.1fMiB", s.FDs, s.Threads, float64(s.RSSKiB)/1024)
}

func statsOf(t testing.TB, pid int) procStats {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("daemon fds: %v", err)
	}
	s := procStats{FDs: len(ents)}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Threads:":
			s.Threads, _ = strconv.Atoi(f[1])
		case "VmRSS:":
			s.RSSKiB, _ = strconv.Atoi(f[1])
		}
	}
	return s
}

const churnCmd = "trap 'exit 0' TERM; while true; do sleep 0.1; done"

// churnCycle is one create/start/exec/stop/rm of a container with a host channel. It returns
// the container's id (if create got that far) and the first error.
func churnCycle(d *Daemon, base string, n int) (id string, err error) {
	name := fmt.Sprintf("churn%d", n)
	hp := filepath.Join(base, name, "ch")
	r := d.Isula("create", "--name", name, "--host-channel", hp+":/c:rw:1M", "--external-rootfs", busyboxRoot, "none", "sh", "-c", churnCmd)
	if r.Code != 0 {
		return "", fmt.Errorf("create: %s", r)
	}
	id = strings.TrimSpace(r.Stdout)
	steps := [][]string{
		{"start", name},
		{"exec", name, "sh", "-c", fmt.Sprintf("echo %d > /c/v; cat /c/v", n)},
		{"stop", "-t", "5", name},
		{"rm", name},
	}
	for _, s := range steps {
		r := d.Isula(s...)
		if r.Code != 0 {
			return id, fmt.Errorf("%s: %s", s[0], r)
		}
		if s[0] == "exec" && strings.TrimSpace(r.Stdout) != strconv.Itoa(n) {
			return id, fmt.Errorf("exec printed %q", r.Stdout)
		}
	}
	return id, nil
}

func churnCycles(def int) int {
	if os.Getenv("ISULAD_LONG") == "1" {
		return 200
	}
	return def
}

// TestChurn: create/start/exec/stop/rm cycles with host channels, 4 at a time; the daemon's
// fds, threads and memory come back to their start values and nothing is left on the host.
// 40 cycles by default, 200 with ISULAD_LONG=1.
func TestChurn(t *testing.T) {
	cycles := churnCycles(40)
	d := StartDaemon(t)
	base := d.TempDir()
	pid := d.cmd.Process.Pid
	var ids sync.Map
	run := func(from, n int) {
		parallel(n, 4, func(i int) {
			id, err := churnCycle(d, base, from+i)
			if id != "" {
				ids.Store(id, true)
			}
			if err != nil {
				t.Errorf("cycle %d: %v", from+i, err)
			}
		})
	}
	run(0, 8) // warm-up: caches, thread pool, gRPC buffers
	time.Sleep(time.Second)
	start := statsOf(t, pid)
	t0 := time.Now()
	run(8, cycles)
	el := time.Since(t0)
	var end procStats
	// Exits and shims wind down asynchronously: give the fds a few seconds to close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		end = statsOf(t, pid)
		if end.FDs <= start.FDs+5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d cycles in %s (%.0f ms/cycle, 4 parallel); daemon before: %s; after: %s", cycles, el.Round(time.Millisecond), float64(el.Milliseconds())/float64(cycles), start, end)
	if end.FDs > start.FDs+5 {
		t.Errorf("daemon fds grew: %d -> %d", start.FDs, end.FDs)
	}
	if end.Threads > start.Threads+8 {
		t.Errorf("daemon threads grew: %d -> %d", start.Threads, end.Threads)
	}
	if end.RSSKiB > start.RSSKiB+20*1024 {
		t.Errorf("daemon RSS grew: %d -> %d KiB", start.RSSKiB, end.RSSKiB)
	}
	checkChurnClean(t, d, base, cycles+8, &ids)
}

// checkChurnClean checks nothing of any churn container is left.
func checkChurnClean(t *testing.T, d *Daemon, base string, cycles int, ids *sync.Map) {
	t.Helper()
	if out := d.Must("ps", "-aq"); out != "" {
		t.Errorf("containers left: %s", out)
	}
	n := 0
	ids.Range(func(k, _ any) bool {
		n++
		if left := traces(d, k.(string)); left != nil {
			t.Errorf("container %s left: %s", k.(string)[:12], strings.Join(left, "; "))
		}
		return true
	})
	for i := 0; i < cycles; i++ {
		name := fmt.Sprintf("churn%d", i)
		if left := channelTraces(filepath.Join(base, name, "ch"), filepath.Join(base, name)); left != nil {
			t.Errorf("%s: %s", name, strings.Join(left, "; "))
		}
	}
	if left := engineClean(d); left != nil {
		t.Errorf("engine state left: %s", strings.Join(left, "\n"))
	}
	t.Logf("%d container ids checked for traces", n)
}

// TestChurnWithDaemonKills: the same churn while the daemon is SIGKILLed three times in the
// middle of it; whatever step each kill interrupted, after the restarts every container can be
// removed and nothing is left.
func TestChurnWithDaemonKills(t *testing.T) {
	cycles := churnCycles(40)
	d := StartDaemon(t)
	base := d.TempDir()
	var ids sync.Map
	var failed, done atomic.Int32
	var up atomic.Bool
	up.Store(true)
	waitUp := func() {
		for !up.Load() {
			time.Sleep(50 * time.Millisecond)
		}
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		parallel(cycles, 4, func(i int) {
			waitUp()
			id, err := churnCycle(d, base, i)
			if id != "" {
				ids.Store(id, true)
			}
			if err != nil {
				failed.Add(1)
				// The daemon may have died under this cycle: once it is back, the
				// container must be removable whatever state it was left in.
				waitUp()
				name := fmt.Sprintf("churn%d", i)
				if r := d.Isula("rm", "-f", name); r.Code != 0 && !strings.Contains(r.Stderr, "No such") && !strings.Contains(r.Stderr, "no such") {
					t.Errorf("rm -f %s after an interrupted cycle: %s", name, r)
				}
			}
			done.Add(1)
		})
	}()
	kills := 0
	for k := 1; k <= 3; k++ {
		target := int32(cycles * k / 4)
		for done.Load() < target {
			select {
			case <-finished:
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
		select {
		case <-finished:
		default:
			for _, id := range idsSeen(d) {
				ids.Store(id, true)
			}
			up.Store(false)
			d.Kill()
			kills++
			time.Sleep(300 * time.Millisecond)
			d.Start()
			up.Store(true)
		}
	}
	<-finished
	for _, id := range idsSeen(d) {
		ids.Store(id, true)
	}
	// A cycle may have been told "failed" although its container was made: they all go.
	for _, id := range strings.Fields(d.Must("ps", "-aq", "--no-trunc")) {
		d.Must("rm", "-f", id)
	}
	t.Logf("%d cycles, %d daemon kills, %d cycles interrupted", cycles, kills, failed.Load())
	if kills == 0 {
		t.Errorf("the daemon was never killed")
	}
	checkChurnClean(t, d, base, cycles, &ids)
}
