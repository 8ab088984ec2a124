package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Fault injection: the daemon (or the shim) fails at a named point, with an error or by
// being SIGKILLed there; after a restart without faults every container is either fully
// there (and works) or fully gone, and nothing is left on the host.

var hexID = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// traces lists what is left on the host of container id (nil: nothing).
func traces(d *Daemon, id string) []string {
	var left []string
	for _, p := range []string{
		filepath.Join(d.Graph, "containers", id),
		filepath.Join(d.State, "containers", id),
		filepath.Join(d.State, "runtime", "runc", id),
		filepath.Join(d.State, "runtime", "crun", id),
	} {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "path "+p)
		}
	}
	for _, pat := range []string{"/sys/fs/cgroup/*/isulad/" + id, "/sys/fs/cgroup/isulad/" + id} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			left = append(left, "cgroup "+p)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), id) {
		left = append(left, "mount "+grepLines(string(mi), id))
	}
	if out, _ := exec.Command("pgrep", "-af", id).Output(); len(strings.TrimSpace(string(out))) > 0 {
		left = append(left, "process "+strings.TrimSpace(string(out)))
	}
	return left
}

// channelTraces lists what is left of a host channel at hp whose parent dir made was made
// by the engine (nil: nothing).
func channelTraces(hp, made string) []string {
	var left []string
	if m := mountOf(hp); m != "" {
		left = append(left, "channel mount "+m)
	}
	if _, err := os.Lstat(hp); err == nil {
		left = append(left, "channel dir "+hp)
	}
	if made != "" {
		if _, err := os.Lstat(made); err == nil {
			left = append(left, "channel parent "+made)
		}
	}
	return left
}

// engineClean lists what is left in the daemon's own directories once it has no container.
func engineClean(d *Daemon) []string {
	var left []string
	for _, dir := range []string{
		filepath.Join(d.Graph, "containers"), filepath.Join(d.Graph, "hostchannels"),
		filepath.Join(d.State, "containers"), filepath.Join(d.State, "s"),
		filepath.Join(d.State, "runtime", "runc"), filepath.Join(d.State, "runtime", "crun"),
	} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			left = append(left, filepath.Join(dir, e.Name()))
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, dir := range []string{d.Graph, d.State} {
			if strings.Contains(string(mi), dir) {
				left = append(left, "mount "+grepLines(string(mi), dir))
			}
		}
	}
	if out, _ := exec.Command("pgrep", "-af", "isulad-shim.*"+d.State).Output(); len(out) > 0 {
		left = append(left, "shim "+strings.TrimSpace(string(out)))
	}
	return left
}

// idsSeen gathers every container id the daemon ever mentioned or left a trace of.
func idsSeen(d *Daemon) []string {
	set := map[string]bool{}
	for _, id := range hexID.FindAllString(d.Log(), -1) {
		set[id] = true
	}
	for _, dir := range []string{filepath.Join(d.Graph, "containers"), filepath.Join(d.State, "containers"), filepath.Join(d.State, "runtime", "runc")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if hexID.MatchString(e.Name()) {
				set[e.Name()] = true
			}
		}
	}
	recs, _ := os.ReadDir(filepath.Join(d.Graph, "hostchannels"))
	for _, e := range recs {
		b, _ := os.ReadFile(filepath.Join(d.Graph, "hostchannels", e.Name()))
		for _, id := range hexID.FindAllString(string(b), -1) {
			set[id] = true
		}
	}
	var out []string
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// checkConsistent checks that each container is fully there (record, channel, and it
// starts, execs and is removed without a trace) or fully gone, and that afterwards nothing
// of the daemon's is left. It returns how many were there.
func checkConsistent(t *testing.T, d *Daemon, ids []string, hp, made string) (there int) {
	t.Helper()
	listed := map[string]bool{}
	for _, id := range strings.Fields(d.Must("ps", "-aq", "--no-trunc")) {
		listed[id] = true
	}
	for _, id := range ids {
		if !listed[id] {
			if left := traces(d, id); left != nil {
				t.Errorf("container %s is gone but left: %s", id[:12], strings.Join(left, "; "))
			}
			continue
		}
		there++
		if _, err := os.Stat(filepath.Join(d.Graph, "containers", id, "container.json")); err != nil {
			t.Errorf("listed container %s has no record: %v", id[:12], err)
		}
		if fi, err := os.Stat(hp); err != nil || !fi.IsDir() {
			t.Errorf("listed container %s lost its channel directory: %v", id[:12], err)
		}
		if st := d.Inspect(id, "{{.State.Status}}"); st != "running" {
			if r := d.Isula("start", id); r.Code != 0 {
				t.Errorf("container %s (%s) does not start after recovery: %s", id[:12], st, r)
				continue
			}
		}
		if out := d.Must("exec", id, "sh", "-c", "echo ok > /c/probe; cat /c/probe"); out != "ok" {
			t.Errorf("exec in recovered container: %q", out)
		}
		if m := mountOf(hp); !strings.Contains(m, "tmpfs") {
			t.Errorf("running container %s has no channel mount at %s", id[:12], hp)
		}
		d.Must("rm", "-f", id)
		if left := traces(d, id); left != nil {
			t.Errorf("rm -f of recovered container %s left: %s", id[:12], strings.Join(left, "; "))
		}
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Errorf("containers listed after the checks: %q", out)
	}
	if left := channelTraces(hp, made); left != nil {
		t.Errorf("host channel left: %s", strings.Join(left, "; "))
	}
	if left := engineClean(d); left != nil {
		t.Errorf("engine state left: %s", strings.Join(left, "; "))
	}
	return there
}

func waitExited(t *testing.T, d *Daemon, what string) {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon was not killed at %s", what)
	}
}

// faultCase runs one fault: point, mode (error, kill, or daemon-kill: the shim sleeps at
// the point and the test SIGKILLs the daemon meanwhile).
func faultCase(t *testing.T, point, mode string) {
	fmode := mode
	if mode == "daemon-kill" {
		fmode = "sleep"
	}
	d := StartDaemon(t, "ISULAD_FAULTS="+point+"="+fmode)
	base := d.TempDir()
	made := filepath.Join(base, "made")
	hp := filepath.Join(made, "ch")
	common := []string{"--host-channel", hp + ":/c:rw:4M", "--external-rootfs", busyboxRoot, "none"}
	long := append(append([]string{}, common...), "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
	daemonKilled := false
	switch point {
	case "create-after-mkdir", "create-after-record":
		r := d.Isula(append([]string{"create", "--name", "f"}, long...)...)
		if r.Code == 0 {
			t.Fatalf("create passed the fault: %s", r)
		}
		if mode == "kill" {
			waitExited(t, d, point)
			daemonKilled = true
		} else if r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("create with a failure inside: want one line and 125, got %s", r)
		}
	case "start-after-mount", "start-after-create":
		d.Must(append([]string{"create", "--name", "f"}, long...)...)
		if mode == "daemon-kill" {
			res := make(chan Result, 1)
			go func() { res <- d.Isula("start", "f") }()
			id := d.Inspect("f", "{{.Id}}")
			WaitFor(t, "the runtime to create the container", 20*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(d.State, "runtime", "runc", id))
				return err == nil
			})
			d.Kill()
			daemonKilled = true
			if r := <-res; r.Code == 0 {
				t.Fatalf("start succeeded although the daemon was killed in it")
			}
			break
		}
		r := d.Isula("start", "f")
		if r.Code == 0 {
			t.Fatalf("start passed the fault: %s", r)
		}
		if mode == "kill" && point == "start-after-mount" {
			waitExited(t, d, point)
			daemonKilled = true
		} else {
			// The daemon is up: the failed start is undone at once.
			if st := d.Inspect("f", "{{.State.Status}}"); st != "created" {
				t.Errorf("after a failed start: status %s", st)
			}
			if m := mountOf(hp); m != "" {
				t.Errorf("a failed start left the channel mounted: %s", m)
			}
			// Nothing of the failed run may stay while the daemon lives on: no runtime
			// state, no cgroup, no process (the record and state dir are the container's).
			id := d.Inspect("f", "{{.Id}}")
			WaitFor(t, "the failed start to be cleaned up", 10*time.Second, func() bool {
				var run []string
				for _, l := range traces(d, id) {
					if !strings.HasPrefix(l, "path "+filepath.Join(d.Graph, "containers")) && !strings.HasPrefix(l, "path "+filepath.Join(d.State, "containers")) {
						run = append(run, l)
					}
				}
				if run != nil {
					t.Logf("left after the failed start: %s", strings.Join(run, "; "))
				}
				return run == nil
			})
		}
	case "exit-before-autoremove":
		d.Must(append([]string{"run", "-d", "--rm", "--name", "f"}, append(common, "sh", "-c", "echo x > /c/x; sleep 0.3")...)...)
		if mode == "kill" {
			waitExited(t, d, point)
			daemonKilled = true
		} else {
			WaitFor(t, "the exit to be recorded", 20*time.Second, func() bool {
				return d.Inspect("f", "{{.State.Status}}") == "exited"
			})
		}
	default:
		t.Fatalf("unknown point %s", point)
	}
	ids := idsSeen(d)
	if point != "create-after-mkdir" && len(ids) == 0 {
		t.Fatalf("no container id found after the fault")
	}
	// Restart without faults: clean stop when still up, plain start when killed.
	if !daemonKilled {
		d.Stop()
	}
	d.extraEnv = nil
	d.Start()
	// The restarted daemon must have finished what the crash left (orphans removed, --rm
	// applied) on its own: give its background work a moment.
	time.Sleep(500 * time.Millisecond)
	there := checkConsistent(t, d, idsSeen(d), hp, made)
	t.Logf("%s=%s: %d id(s) seen, %d container(s) fully there after restart", point, mode, len(ids), there)
	switch {
	case point == "create-after-mkdir" && there != 0:
		t.Errorf("a create that failed before its record was saved left a container")
	case point == "exit-before-autoremove" && there != 0:
		t.Errorf("a --rm container that exited was not removed after the daemon restart")
	case (point == "start-after-mount" || point == "start-after-create") && there != 1:
		t.Errorf("a created container was lost by a failed start")
	}
}

var faultPoints = []string{"create-after-mkdir", "create-after-record", "start-after-mount", "start-after-create", "exit-before-autoremove"}

func TestFaultPoints(t *testing.T) {
	for _, p := range faultPoints {
		modes := []string{"error", "kill"}
		if p == "start-after-create" {
			// kill: the shim dies there; daemon-kill: the daemon dies while the shim waits there.
			modes = append(modes, "daemon-kill")
		}
		for _, m := range modes {
			t.Run(p+"="+m, func(t *testing.T) { faultCase(t, p, m) })
		}
	}
}
