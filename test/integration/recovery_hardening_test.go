package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCorruptRecordQuarantine (issue 10 #6): the daemon is SIGKILLed, a running container's
// container.json is truncated, emptied or replaced with {}, and the daemon restarted. The
// container is quarantined with a warning naming it; its directory, shim, processes and host
// channel stay as they were (the channel is not unmounted as an orphan). With its record
// repaired, the next daemon manages it again.
func TestCorruptRecordQuarantine(t *testing.T) {
	d := StartDaemon(t)
	ch := filepath.Join(d.TempDir(), "ch")
	id := d.Must("run", "-d", "--name", "precious", "--host-channel", ch+":/c:rw:1M",
		"--external-rootfs", busyboxRoot, "none", "sh", "-c", "echo kept > /c/mark; sleep 600")
	WaitFor(t, "the container to write into its channel", 10*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(ch, "mark"))
		return string(data) == "kept\n"
	})
	pidData, err := os.ReadFile(filepath.Join(d.State, "containers", id, "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	shimPid, _ := strconv.Atoi(strings.TrimSpace(string(pidData)))
	initPid, _ := strconv.Atoi(d.Inspect(id, "{{.State.Pid}}"))
	if shimPid <= 0 || initPid <= 0 {
		t.Fatalf("shim pid %q, init pid %d", pidData, initPid)
	}
	// Should the daemon lose the container (as it did before the fix), what it left running
	// goes with the test, not with the machine.
	t.Cleanup(func() {
		if d.Isula("inspect", id).Code == 0 {
			return // the daemon's cleanup removes it
		}
		syscall.Kill(initPid, syscall.SIGKILL)
		syscall.Kill(shimPid, syscall.SIGKILL)
		exec.Command("runc", "--root", filepath.Join(d.State, "runtime", "runc"), "delete", "--force", id).Run()
		removeCgroupDirs(t, "/isulad/"+id)
		syscall.Unmount(ch, syscall.MNT_DETACH)
	})
	record := filepath.Join(d.Graph, "containers", id, "container.json")
	good, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ what, data string }{
		{"truncated", string(good[:len(good)/2])}, {"emptied", ""}, {"replaced with {}", "{}"},
	} {
		d.Kill()
		if err := os.WriteFile(record, []byte(bad.data), 0o600); err != nil {
			t.Fatal(err)
		}
		d.Start()
		if out := d.Must("ps", "-aq", "--no-trunc"); strings.Contains(out, id) {
			t.Errorf("%s: the quarantined container is listed: %s", bad.what, out)
		}
		// The daemon's output reaches the buffer through a pipe: wait for the line.
		WaitFor(t, bad.what+": a quarantine warning naming "+id, 10*time.Second, func() bool {
			return strings.Contains(grepLines(d.Log(), "quarantined"), id)
		})
		log := d.Log()
		if strings.Contains(log, "create did not finish") {
			t.Errorf("%s: the container was taken for an unfinished create:\n%s", bad.what, grepLines(log, "create did not finish"))
		}
		for _, p := range []string{filepath.Join(d.Graph, "containers", id, "config.json"), filepath.Join(d.State, "containers", id)} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %v", bad.what, err)
			}
		}
		for what, pid := range map[string]int{"shim": shimPid, "init": initPid} {
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("%s: the container's %s (pid %d) is gone: %v", bad.what, what, pid, err)
			}
		}
		if mountOf(ch) == "" {
			t.Errorf("%s: the channel was unmounted under the running container", bad.what)
		}
		if data, _ := os.ReadFile(filepath.Join(ch, "mark")); string(data) != "kept\n" {
			t.Errorf("%s: channel content %q", bad.what, data)
		}
		if t.Failed() {
			break
		}
	}
	d.Kill()
	if err := os.WriteFile(record, good, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start()
	if st := d.Inspect(id, "{{.State.Status}} {{.State.Pid}}"); st != fmt.Sprintf("running %d", initPid) {
		t.Fatalf("after the repair: %s", st)
	}
	if out := d.Must("exec", id, "cat", "/c/mark"); out != "kept" {
		t.Fatalf("exec after the repair: %q", out)
	}
}

// removeCgroupDirs kills what is left in cgroupsPath and removes it, deepest first, in every
// hierarchy.
func removeCgroupDirs(t *testing.T, cgroupsPath string) {
	for _, top := range cgroupDirs(cgroupsPath) {
		var dirs []string
		filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 100; try++ {
				if err = os.Remove(dirs[i]); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				data, _ := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs"))
				for _, f := range strings.Fields(string(data)) {
					if pid, _ := strconv.Atoi(f); pid > 0 {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

// cgroupDirs lists the directories of cgroupsPath in every cgroup hierarchy.
func cgroupDirs(cgroupsPath string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup" + cgroupsPath, "/sys/fs/cgroup/*" + cgroupsPath} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				out = append(out, p)
			}
		}
	}
	return out
}

// TestRuntimeKilledDuringStartLeavesNoCgroup (issue 10 #8): the OCI runtime is SIGKILLed
// while it starts the container (a wrapper kills the real runc as soon as the container's
// cgroup exists); after the failed start, and after rm -f, no cgroup of the container is
// left in any hierarchy.
func TestRuntimeKilledDuringStartLeavesNoCgroup(t *testing.T) {
	d := StartDaemon(t)
	parent := fmt.Sprintf("/isulad-it-kill-%d", os.Getpid())
	t.Cleanup(func() { removeCgroupDirs(t, parent) })
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc: %v", err) // TestMain has checked it is there
	}
	// The wrapper passes everything to runc but its run: that one it kills once the
	// container's cgroup is there (in any hierarchy), at a point that varies with $2 of
	// the delay file, as a SIGKILL from outside would.
	wrapper := filepath.Join(d.TempDir(), "killing-runc")
	delayFile := wrapper + ".delay"
	script := `#!/bin/sh
for a in "$@"; do
	case "$a" in run) sub=run ;; esac
done
[ "$sub" = run ] || exec ` + runc + ` "$@"
for id in "$@"; do :; done
` + runc + ` "$@" &
pid=$!
i=0
while [ $i -lt 2000 ]; do
	for f in /sys/fs/cgroup/*` + parent + `/"$id" /sys/fs/cgroup` + parent + `/"$id"; do
		[ -d "$f" ] && break 2
	done
	i=$((i+1))
done
sleep "$(cat ` + delayFile + `)"
kill -9 $pid
exit 137
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"runtimes": {"killing-runc": {"path": %q}}}`, wrapper)
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	d.Start()
	const tries = 12
	failed, leftAfterStart, leftAfterRm := 0, 0, 0
	for i := 0; i < tries; i++ {
		// Kill at once, or a little later (in runc's init, its hooks, its start).
		os.WriteFile(delayFile, []byte(fmt.Sprintf("0.%03d\n", (i%4)*15)), 0o600)
		name := fmt.Sprintf("k%d", i)
		id := d.Must("create", "--name", name, "--runtime", "killing-runc", "--cgroup-parent", parent,
			"--external-rootfs", busyboxRoot, "none", "sleep", "600")
		r := d.Isula("start", name)
		if r.Code == 0 {
			d.Must("rm", "-f", name)
			continue
		}
		failed++
		if left := cgroupDirs(parent + "/" + id); len(left) > 0 {
			leftAfterStart++
			t.Logf("%s: after the failed start (%s): %d cgroup dirs left: %v", name, strings.TrimSpace(r.Stderr), len(left), left)
		}
		if r := d.Isula("rm", "-f", name); r.Code != 0 {
			t.Errorf("rm -f %s: %s", name, r)
		}
		if left := cgroupDirs(parent + "/" + id); len(left) > 0 {
			leftAfterRm++
			t.Errorf("%s: after rm -f: %d cgroup dirs left: %v", name, len(left), left)
			removeCgroupDirs(t, parent+"/"+id)
		}
	}
	if failed == 0 {
		t.Fatalf("the runtime was never killed during a start: the test proved nothing")
	}
	if leftAfterStart > 0 {
		t.Errorf("%d of %d failed starts left cgroup directories", leftAfterStart, failed)
	}
	t.Logf("%d of %d starts failed with runc killed; cgroups left: %d after the start, %d after rm -f", failed, tries, leftAfterStart, leftAfterRm)
	if ents, _ := os.ReadDir(filepath.Join(d.State, "runtime", "killing-runc")); len(ents) > 0 {
		t.Errorf("runtime state left: %d entries", len(ents))
	}
}

// TestFailedRemovalIsRetried (issue 10 #7): a foreign mount over a stopped container's
// channel (on its host path) makes rm fail (correctly); the container is then dead, listed as such, also after a
// daemon restart, and once the mount is gone rm -f removes it.
func TestFailedRemovalIsRetried(t *testing.T) {
	d := StartDaemon(t)
	ch := filepath.Join(d.TempDir(), "ch")
	id := d.Must("run", "-d", "--name", "victim", "--host-channel", ch+":/c:rw:1M",
		"--external-rootfs", busyboxRoot, "none", "sleep", "600")
	d.Must("stop", "-t", "0", id)
	foreign := ch // a mount over the channel's host path, not made by the engine
	if err := syscall.Mount("tmpfs", foreign, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			syscall.Unmount(foreign, syscall.MNT_DETACH)
		}
	})
	if r := d.Isula("rm", "-f", id); r.Code == 0 {
		t.Fatalf("rm succeeded with a foreign mount inside the channel: %s", r)
	}
	if st := d.Inspect(id, "{{.State.Status}}"); st != "dead" {
		t.Fatalf("after the failed removal: %s, want dead", st)
	}
	if out := d.Must("ps", "-a", "--format", "{{.Status}}"); !strings.Contains(out, "Dead") {
		t.Errorf("ps -a: %q", out)
	}
	d.Kill()
	d.Start()
	if st := d.Inspect(id, "{{.State.Status}}"); st != "dead" {
		t.Fatalf("after a daemon restart: %s, want dead", st)
	}
	if r := d.Isula("rm", "-f", id); r.Code == 0 {
		t.Fatalf("rm succeeded with the foreign mount still there: %s", r)
	}
	if err := syscall.Unmount(foreign, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if r := d.Isula("rm", "-f", id); r.Code != 0 {
		t.Fatalf("rm -f once the mount is gone: %s", r)
	}
	if r := d.Isula("inspect", id); r.Code == 0 {
		t.Fatalf("still there after rm -f")
	}
}
