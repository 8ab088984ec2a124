package integration

// System containers with systemd as PID 1, on the debian rootfs of scripts/mkrootfs.sh.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/testenv"
)

// debianRootfs makes a debian+systemd rootfs in a temp dir (removed at the end of t) with
// scripts/mkrootfs.sh; extra is passed on (e.g. --shift N). When the script has neither its
// cached tarball nor debootstrap to make one, the test skips (fails under CI).
func debianRootfs(t *testing.T, extra ...string) string {
	t.Helper()
	requireEnv(t)
	cache := os.Getenv("ISULAD_ROOTFS_CACHE")
	if cache == "" {
		cache = "/var/cache/isulad-rootfs"
	}
	if _, err := os.Stat(filepath.Join(cache, "debian.tar")); err != nil {
		if _, err := exec.LookPath("debootstrap"); err != nil {
			testenv.Missing(t, "no debian rootfs: neither %s/debian.tar nor debootstrap", cache)
		}
	}
	tmp := t.TempDir()
	// t.TempDir is 0700: with --user-remap, the container's root (an unprivileged host id)
	// must be able to reach the rootfs.
	os.Chmod(filepath.Dir(tmp), 0o755)
	os.Chmod(tmp, 0o755)
	dir := filepath.Join(tmp, "debian")
	start := time.Now()
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "mkrootfs.sh"), append([]string{"debian", dir}, extra...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mkrootfs.sh debian %v: %v\n%s", extra, err, out)
	}
	t.Logf("debian rootfs %v made in %s", extra, time.Since(start).Round(10*time.Millisecond))
	return dir
}

// waitSystemRunning polls `systemctl is-system-running` until it says running (systemctl's
// --wait needs the bus, which is not there in the first moments) and returns how long it took
// from since.
func waitSystemRunning(t *testing.T, s *sysDaemon, name string, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		r := s.Isula("exec", name, "systemctl", "is-system-running")
		last = strings.TrimSpace(r.Stdout + r.Stderr)
		switch last {
		case "running":
			return time.Since(since)
		case "degraded", "maintenance", "stopping", "offline":
			failed := s.Isula("exec", name, "systemctl", "--failed", "--no-legend", "--plain")
			t.Fatalf("systemd is %s; failed units:\n%s", last, failed.Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("systemd not running after 60 s (last: %q)", last)
	return 0
}

// journal is the text of a rootfs's persistent journal for one host name (the container's
// short ID, so earlier runs on the same rootfs do not count). It is read with the host's
// journalctl if there is one, else with a second container on the same rootfs.
func journal(t *testing.T, s *sysDaemon, rootfs, hostname string) string {
	t.Helper()
	args := []string{"--no-pager", "-o", "short", "_HOSTNAME=" + hostname}
	if jc, err := exec.LookPath("journalctl"); err == nil {
		out, err := exec.Command(jc, append([]string{"-D", filepath.Join(rootfs, "var/log/journal")}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("journalctl: %v\n%s", err, out)
		}
		return string(out)
	}
	return s.Must(append([]string{"run", "--rm", "--external-rootfs", rootfs, "none", "journalctl", "-D", "/var/log/journal"}, args...)...)
}

func TestSystemdDebian(t *testing.T) {
	rf := debianRootfs(t)

	t.Run("BootStop", func(t *testing.T) {
		s := startSysDaemon(t)
		start := time.Now()
		id := s.runD("--name", "sd", "-m", "512m", "--system-container", "--external-rootfs", rf, "none", "/sbin/init")
		boot := waitSystemRunning(t, s, "sd", start)
		t.Logf("systemd reached running %s after run -d", boot.Round(time.Millisecond))
		if failed := s.Must("exec", "sd", "systemctl", "--failed", "--no-legend", "--plain"); failed != "" {
			t.Errorf("failed units:\n%s", failed)
		}
		if v := s.Inspect("sd", "{{.SystemdInit}} {{.Config.StopSignal}}"); v != "true SIGRTMIN+3" && v != "true 37" {
			t.Errorf("systemd init / default stop signal: %q, want true SIGRTMIN+3", v)
		}
		if comm := s.Must("exec", "sd", "cat", "/proc/1/comm"); comm != "systemd" {
			t.Errorf("PID 1 is %q", comm)
		}
		if h := s.Must("exec", "sd", "hostname"); h != id[:12] {
			t.Errorf("hostname %q, want %q", h, id[:12])
		}
		if env := s.Must("exec", "sd", "sh", "-c", `tr '\0' '\n' < /proc/1/environ`); !regexFind(env, `(?m)^container=isulad$`) {
			t.Errorf("PID 1's environment lacks container=isulad:\n%s", env)
		}
		if v := s.Must("exec", "sd", "systemd-detect-virt", "--container"); v == "none" {
			t.Errorf("systemd does not see a container: %q", v)
		}
		// systemd made its tree in the writable name=systemd subtree, visible on the host.
		cg := s.Inspect("sd", "{{.CgroupsPath}}")
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/systemd", cg, "init.scope")); err != nil {
			t.Errorf("no init.scope in the container's name=systemd cgroup on the host: %v", err)
		}
		// Hybrid host: systemd uses the container's cgroup2 directory too (its cgroup-empty
		// events), so it runs in hybrid mode.
		if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err == nil {
			if r := s.Isula("exec", "sd", "test", "-d", "/sys/fs/cgroup/unified/init.scope"); r.Code != 0 {
				t.Errorf("no init.scope in /sys/fs/cgroup/unified inside: systemd is not in hybrid mode")
			}
		}
		// ... while the limits stay out of reach.
		if r := s.Isula("exec", "sd", "sh", "-c", "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); r.Code == 0 {
			t.Errorf("writing memory.limit_in_bytes inside succeeded")
		}
		if b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")); strings.TrimSpace(string(b)) != "536870912" {
			t.Errorf("host memory.limit_in_bytes = %q, want 536870912", b)
		}
		if m := s.Must("exec", "sd", "findmnt", "-n", "-o", "FSTYPE,OPTIONS", "/run"); !strings.HasPrefix(m, "tmpfs") || !strings.Contains(m, "size=262144k") {
			t.Errorf("/run: %q, want a tmpfs of half of -m", m)
		}

		// stop without -t: SIGRTMIN+3, a clean halt in about a second.
		st := time.Now()
		s.Must("stop", "sd")
		el := time.Since(st)
		t.Logf("isula stop took %s", el.Round(time.Millisecond))
		if el > 5*time.Second {
			t.Errorf("isula stop took %s (the default grace is 10 s; SIGRTMIN+3 should halt systemd in ~1 s)", el)
		}
		if v := s.state("sd"); v != "exited 130 0" {
			t.Errorf("after stop: %q, want exited 130 0", v)
		}
		j := journal(t, s, rf, id[:12])
		for _, want := range []string{"Reached target shutdown.target", "System Halt", "Journal stopped"} {
			if !strings.Contains(j, want) {
				t.Errorf("journal lacks %q: not a clean shutdown", want)
			}
		}
		if bad := grepLines(j, "Failed"); bad != "" {
			t.Errorf("journal shows failures:\n%s", bad)
		}
		if t.Failed() {
			t.Logf("journal:\n%s", j)
		}
		s.Must("rm", "sd")
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/systemd", cg)); err == nil {
			t.Errorf("name=systemd subtree %s left after rm", cg)
		}
		if _, err := os.Stat(filepath.Join(rf, "lib/systemd/systemd")); err != nil {
			t.Errorf("rm touched the rootfs: %v", err)
		}
	})

	t.Run("Reboot", func(t *testing.T) {
		s := startSysDaemon(t)
		start := time.Now()
		s.runD("--name", "sr", "--restart", "on-reboot", "--system-container", "--external-rootfs", rf, "none", "/sbin/init")
		waitSystemRunning(t, s, "sr", start)
		w := s.waitBg("sr")
		s.Isula("exec", "sr", "systemctl", "reboot") // may be cut off by the reboot itself
		if code := recv(t, w, "the exit after reboot", 30*time.Second); code != "129" {
			t.Fatalf("systemctl reboot: exit %q, want 129", code)
		}
		WaitFor(t, "on-reboot to start it again", 15*time.Second, func() bool {
			return s.Inspect("sr", "{{.State.Status}} {{.RestartCount}}") == "running 1"
		})
		waitSystemRunning(t, s, "sr", time.Now())
		w = s.waitBg("sr")
		s.Isula("exec", "sr", "systemctl", "poweroff")
		if code := recv(t, w, "the exit after poweroff", 30*time.Second); code != "130" {
			t.Fatalf("systemctl poweroff: exit %q, want 130", code)
		}
		// systemd's stdout is not the attach stream's, so no attach can mark the end of the
		// daemon's handling of this exit: the state must hold past the longest back-off.
		Holds(t, "exited 130 1 after poweroff with on-reboot (no restart)", 2*maxRestartBackoff, func() bool {
			return s.state("sr") == "exited 130 1"
		})
	})

	t.Run("Console", func(t *testing.T) {
		s := startSysDaemon(t)
		c := s.StartConsole(24, 80, "run", "--rm", "-it", "--name", "sc", "--system-container", "--external-rootfs", rf, "none", "/sbin/init")
		// Autologin on the console: a root prompt comes without any password.
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(c.Output(), "# ") && time.Now().Before(deadline) {
			c.Send("\r")
			time.Sleep(500 * time.Millisecond)
		}
		c.Expect("# ", time.Second)
		if id := s.Isula("inspect", "-f", "{{.Id}}", "sc"); id.Code == 0 {
			s.track(strings.TrimSpace(id.Stdout))
		}
		c.Send("echo $((40+2)) $(id -un)\r")
		c.Expect("42 root", 10*time.Second)
		if strings.Contains(strings.ToLower(c.Output()), "password") {
			t.Errorf("the console asked for a password:\n%s", c.Output())
		}
		c.Send("systemctl poweroff\r")
		if code := c.Wait(30 * time.Second); code != 130 {
			t.Errorf("run -it after systemctl poweroff: exit %d, want 130", code)
		}
		WaitFor(t, "--rm to remove the container", 10*time.Second, func() bool { return s.Must("ps", "-aq") == "" })

		// Someone logged in on the console does not delay isula stop from another terminal.
		c = s.StartConsole(24, 80, "run", "--rm", "-it", "--name", "sc2", "--system-container", "--external-rootfs", rf, "none", "/sbin/init")
		deadline = time.Now().Add(60 * time.Second)
		for !strings.Contains(c.Output(), "# ") && time.Now().Before(deadline) {
			c.Send("\r")
			time.Sleep(500 * time.Millisecond)
		}
		c.Expect("# ", time.Second)
		if id := s.Isula("inspect", "-f", "{{.Id}}", "sc2"); id.Code == 0 {
			s.track(strings.TrimSpace(id.Stdout))
		}
		st := time.Now()
		s.Must("stop", "sc2")
		if el := time.Since(st); el > 5*time.Second {
			t.Errorf("isula stop with a root shell on the console took %s", el)
		}
		if code := c.Wait(15 * time.Second); code != 130 {
			t.Errorf("run -it after isula stop: exit %d, want 130", code)
		}
	})
}

// --user-remap: container root is host uid 100000; with a read-only host channel too.
func TestSystemdUserRemap(t *testing.T) {
	rf := debianRootfs(t, "--shift", "100000")
	s := startSysDaemon(t)
	ch := filepath.Join(s.TempDir(), "ch")
	start := time.Now()
	s.runD("--name", "ur", "--user-remap", "100000:100000:65535", "--host-channel", ch+":/ch:ro:16M",
		"--system-container", "--external-rootfs", rf, "none", "/sbin/init")
	boot := waitSystemRunning(t, s, "ur", start)
	t.Logf("systemd (user namespace) reached running %s after run -d", boot.Round(time.Millisecond))
	if failed := s.Must("exec", "ur", "systemctl", "--failed", "--no-legend", "--plain"); failed != "" {
		t.Errorf("failed units:\n%s", failed)
	}
	pid := s.Inspect("ur", "{{.State.Pid}}")
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	if !regexFind(string(status), `(?m)^Uid:\s+100000\s+100000\s+100000\s+100000$`) || !regexFind(string(status), `(?m)^Gid:\s+100000\s`) {
		t.Errorf("PID 1 on the host is not uid/gid 100000:\n%s", grepLines(string(status), "id:"))
	}
	if m := strings.Fields(s.Must("exec", "ur", "cat", "/proc/self/uid_map")); strings.Join(m, " ") != "0 100000 65535" {
		t.Errorf("uid_map %v", m)
	}
	if u := s.Must("exec", "ur", "id", "-u"); u != "0" {
		t.Errorf("id -u inside = %s", u)
	}

	// The read-only host channel: mounted, readable, not writable.
	if err := os.WriteFile(filepath.Join(ch, "from-host"), []byte("hello\n"), 0o644); err != nil {
		t.Fatalf("host cannot write its channel: %v", err)
	}
	if v := s.Must("exec", "ur", "cat", "/ch/from-host"); v != "hello" {
		t.Errorf("channel inside reads %q", v)
	}
	if m := s.Must("exec", "ur", "findmnt", "-n", "-o", "FSTYPE,OPTIONS", "/ch"); !strings.HasPrefix(m, "tmpfs") || !strings.Contains(","+strings.Fields(m)[1]+",", ",ro,") {
		t.Errorf("/ch: %q, want a read-only tmpfs", m)
	}
	if r := s.Isula("exec", "ur", "touch", "/ch/x"); r.Code == 0 {
		t.Errorf("the read-only channel is writable")
	}
	if out, _ := exec.Command("stat", "-c", "%u:%g", ch).Output(); strings.TrimSpace(string(out)) != "100000:100000" {
		t.Errorf("host channel owned by %s, want the mapped root 100000:100000", out)
	}
	if r := s.Isula("exec", "ur", "sh", "-c", "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); r.Code == 0 {
		t.Errorf("writing memory.limit_in_bytes inside succeeded")
	}
	st := time.Now()
	s.Must("stop", "ur")
	t.Logf("isula stop (user namespace) took %s", time.Since(st).Round(time.Millisecond))
	if el := time.Since(st); el > 5*time.Second {
		t.Errorf("isula stop took %s", el)
	}
	if v := s.state("ur"); v != "exited 130 0" {
		t.Errorf("after stop: %q", v)
	}
	s.Must("rm", "ur")
	if _, err := os.Lstat(ch); err == nil {
		t.Errorf("rm left the host channel %s", ch)
	}
}
