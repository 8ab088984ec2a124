package integration

// System containers (--system-container) with the busybox rootfs: busybox init as PID 1.
// The systemd ones are in systemd_test.go.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sysDaemon is a private daemon that also remembers the cgroups of the containers it made,
// and checks, after the daemon's own cleanup, that none is left in any hierarchy.
type sysDaemon struct {
	*Daemon
	mu      sync.Mutex
	cgroups []string // cgroups paths (inspect .CgroupsPath)
}

func startSysDaemon(t *testing.T) *sysDaemon {
	t.Helper()
	s := &sysDaemon{}
	// Registered before StartDaemon: runs after the daemon removed its containers.
	t.Cleanup(func() { s.checkCgroupsGone(t) })
	s.Daemon = StartDaemon(t)
	return s
}

// track records a container's cgroup for the leftover check.
func (s *sysDaemon) track(id string) {
	cg := s.Inspect(id, "{{.CgroupsPath}}")
	s.mu.Lock()
	s.cgroups = append(s.cgroups, cg)
	s.mu.Unlock()
}

// runD runs a detached container and returns its ID.
func (s *sysDaemon) runD(args ...string) string {
	s.t.Helper()
	id := s.Must(append([]string{"run", "-d"}, args...)...)
	s.track(id)
	return id
}

func cgroupHierarchies() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

func (s *sysDaemon) checkCgroupsGone(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cg := range s.cgroups {
		if cg == "" {
			continue
		}
		for _, h := range cgroupHierarchies() {
			p := filepath.Join(h, cg)
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cgroup left after the test: %s", p)
				// Leave the machine as found: children first.
				var dirs []string
				filepath.Walk(p, func(q string, fi os.FileInfo, err error) error {
					if err == nil && fi.IsDir() {
						dirs = append(dirs, q)
					}
					return nil
				})
				for i := len(dirs) - 1; i >= 0; i-- {
					syscall.Rmdir(dirs[i])
				}
			}
		}
	}
}

// state is "status exitcode restartcount".
func (s *sysDaemon) state(id string) string {
	return s.Inspect(id, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}")
}

// waitBg runs `isula wait id` in the background; the channel gets what it printed.
func (s *sysDaemon) waitBg(id string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		r := s.Isula("wait", id)
		ch <- strings.TrimSpace(r.Stdout) + strings.TrimSpace(r.Stderr)
	}()
	time.Sleep(300 * time.Millisecond) // let the wait reach the daemon
	return ch
}

// attachUntilHandled attaches to a running container (no stdin) and returns once the attach
// is connected: an exec writes a mark to PID 1's stdout until the attach prints it. The
// channel gets the attach's result, which the daemon sends only when it has finished handling
// the exit of this run, restart policy included (a restart it decides on comes before it).
// So after it, "the policy did not restart the container" is a fact, not a hope.
func (s *sysDaemon) attachUntilHandled(t *testing.T, id string) <-chan Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "isula"), "-H", "unix://"+s.Sock, "attach", "--no-stdin", id)
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	ch := make(chan Result, 1)
	go func() {
		defer cancel()
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		ch <- Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
	}()
	WaitFor(t, "isula attach "+id+" to connect", 15*time.Second, func() bool {
		s.Isula("exec", id, "sh", "-c", "echo attach-mark >/proc/1/fd/1")
		return strings.Contains(out.String(), "attach-mark")
	})
	return ch
}

// recvResult waits for a Result from ch.
func recvResult(t *testing.T, ch <-chan Result, what string, timeout time.Duration) Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
	return Result{}
}

func recv(t *testing.T, ch <-chan string, what string, timeout time.Duration) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
	return ""
}

// The basics: init keeps running detached as PID 1, hostname and /etc files, environment,
// tmpfs mounts, the read-only cgroup limits, stop and rm.
func TestSystemBusyboxBasics(t *testing.T) {
	s := startSysDaemon(t)
	rf := Rootfs(t)
	id := s.runD("--name", "bb", "-m", "256m", "--system-container", "--external-rootfs", rf, "none", "init")
	time.Sleep(1 * time.Second)
	if st := s.Inspect("bb", "{{.State.Status}} {{.SystemdInit}}"); st != "running false" {
		t.Fatalf("1 s after run -d: %q, want running (and not systemd)", st)
	}
	if ps := s.Must("exec", "bb", "ps", "-o", "pid,comm"); !regexFind(ps, `(?m)^\s*1\s+init\s*$`) {
		t.Fatalf("PID 1 is not init:\n%s", ps)
	}
	if sig := s.Inspect("bb", "{{.Config.StopSignal}}"); sig != "" && sig != "SIGTERM" && sig != "15" {
		t.Errorf("default stop signal of a busybox system container: %q, want SIGTERM", sig)
	}

	// Hostname: the first 12 hex digits of the ID, written into the rootfs.
	short := id[:12]
	if h := s.Must("exec", "bb", "hostname"); h != short {
		t.Errorf("hostname %q, want %q", h, short)
	}
	if b, _ := os.ReadFile(filepath.Join(rf, "etc/hostname")); strings.TrimSpace(string(b)) != short {
		t.Errorf("R/etc/hostname = %q, want %q", b, short)
	}
	if b, _ := os.ReadFile(filepath.Join(rf, "etc/hosts")); !regexFind(string(b), `(?m)^127\.0\.\d+\.\d+\s+.*\b`+short+`\b`) ||
		!strings.Contains(string(b), "localhost") {
		t.Errorf("R/etc/hosts lacks localhost or %s:\n%s", short, b)
	}
	if b, err := os.ReadFile(filepath.Join(rf, "etc/resolv.conf")); err != nil {
		t.Errorf("R/etc/resolv.conf: %v", err)
	} else if in := s.Must("exec", "bb", "cat", "/etc/resolv.conf"); in != strings.TrimSpace(string(b)) {
		t.Errorf("resolv.conf inside %q differs from R's %q", in, b)
	}

	// container=isulad in PID 1's environment.
	env := s.Must("exec", "bb", "sh", "-c", `tr '\0' '\n' < /proc/1/environ`)
	if !regexFind(env, `(?m)^container=isulad$`) {
		t.Errorf("PID 1's environment lacks container=isulad:\n%s", env)
	}

	// tmpfs mounts: modes, and /run, /run/lock, /tmp sized at half of -m (256m -> 128m).
	mounts := s.Must("exec", "bb", "cat", "/proc/mounts")
	for _, m := range []struct {
		dir, mode, size string
	}{
		{"/run", "755", "size=131072k"},
		{"/run/lock", "755", "size=131072k"},
		{"/tmp", "1777", "size=131072k"},
		{"/dev/shm", "1777", "size=65536k"},
	} {
		line := ""
		for _, l := range strings.Split(mounts, "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == m.dir {
				line = l
			}
		}
		if f := strings.Fields(line); len(f) < 4 || f[2] != "tmpfs" || !strings.Contains(","+f[3]+",", ","+m.size+",") {
			t.Errorf("%s: mount %q, want a tmpfs with %s", m.dir, line, m.size)
		}
		if mode := s.Must("exec", "bb", "stat", "-c", "%a", m.dir); mode != m.mode {
			t.Errorf("%s: mode %s, want %s", m.dir, mode, m.mode)
		}
	}
	if f := strings.Fields(grepLines(mounts, " /dev ")); len(f) < 3 || f[2] != "tmpfs" {
		t.Errorf("/dev is not a tmpfs: %q", grepLines(mounts, " /dev "))
	}

	// The engine's limits cannot be raised from inside.
	if r := s.Isula("exec", "bb", "sh", "-c", "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); r.Code == 0 {
		t.Errorf("writing memory.limit_in_bytes inside succeeded: %s", r)
	}
	if v := s.Must("exec", "bb", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); v != "268435456" {
		t.Errorf("memory.limit_in_bytes inside = %s, want 268435456", v)
	}
	if v := s.Must("exec", "bb", "cat", "/proc/self/cgroup"); !regexFind(v, `(?m)^\d+:memory:/$`) {
		t.Errorf("no cgroup namespace: /proc/self/cgroup shows\n%s", v)
	}

	// stop: busybox init answers SIGTERM with a reboot (129); no restart policy here.
	start := time.Now()
	s.Must("stop", "bb")
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("stop took %s (busybox init ends in ~2 s on SIGTERM)", el)
	}
	if st := s.state("bb"); st != "exited 129 0" {
		t.Errorf("after stop: %q, want exited 129 0", st)
	}
	s.Must("rm", "bb")
	for _, p := range []string{"bin/busybox", "sbin/init", "etc/inittab", "etc/passwd", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(rf, p)); err != nil {
			t.Errorf("rm touched the external rootfs: %v", err)
		}
	}
}

// -it gives busybox init's console shell.
func TestSystemBusyboxConsole(t *testing.T) {
	s := startSysDaemon(t)
	rf := Rootfs(t)
	c := s.StartConsole(24, 80, "run", "--rm", "-it", "--name", "con", "--system-container", "--external-rootfs", rf, "none", "init")
	c.Send("\n")
	c.Expect("#", 15*time.Second)
	id := s.Inspect("con", "{{.Id}}")
	s.track(id)
	c.Send("echo $((40+2)) $(hostname) $$\n")
	c.Expect("42 "+id[:12], 10*time.Second)
	c.Send("poweroff\n")
	if code := c.Wait(30 * time.Second); code != 130 {
		t.Errorf("run -it after poweroff: exit %d, want 130; output:\n%s", code, c.Output())
	}
	WaitFor(t, "--rm to remove the container", 10*time.Second, func() bool { return s.Must("ps", "-aq") == "" })
}

// reboot inside restarts with on-reboot; poweroff and isula stop do not.
func TestSystemBusyboxRebootPoweroff(t *testing.T) {
	s := startSysDaemon(t)
	rf := Rootfs(t)
	s.runD("--name", "rb", "--restart", "on-reboot", "--system-container", "--external-rootfs", rf, "none", "init")
	time.Sleep(500 * time.Millisecond)
	pid0 := s.Inspect("rb", "{{.State.Pid}}")

	w := s.waitBg("rb")
	s.Must("exec", "rb", "reboot")
	if code := recv(t, w, "the exit after reboot", 20*time.Second); code != "129" {
		t.Fatalf("reboot inside: exit %q, want 129", code)
	}
	WaitFor(t, "on-reboot to start it again", 15*time.Second, func() bool {
		return s.Inspect("rb", "{{.State.Status}} {{.RestartCount}}") == "running 1"
	})
	if pid := s.Inspect("rb", "{{.State.Pid}}"); pid == pid0 {
		t.Errorf("same pid %s after the reboot", pid)
	}
	if ps := s.Must("exec", "rb", "ps", "-o", "pid,comm"); !regexFind(ps, `(?m)^\s*1\s+init\s*$`) {
		t.Fatalf("after the reboot PID 1 is not init:\n%s", ps)
	}

	a := s.attachUntilHandled(t, "rb")
	s.Must("exec", "rb", "poweroff")
	if r := recvResult(t, a, "the exit after poweroff", 20*time.Second); r.Code != 130 {
		t.Fatalf("poweroff inside: attach %s, want exit 130", r)
	}
	if st := s.state("rb"); st != "exited 130 1" {
		t.Fatalf("after poweroff with on-reboot: %q, want exited 130 1 (no restart)", st)
	}

	// isula stop: busybox init turns SIGTERM into a reboot (129), which must not restart it.
	s.Must("start", "rb")
	a = s.attachUntilHandled(t, "rb")
	s.Must("stop", "rb")
	if st := s.state("rb"); st != "exited 129 1" {
		t.Fatalf("after isula stop: %q, want exited 129 1", st)
	}
	recvResult(t, a, "the daemon to handle the stop", 20*time.Second)
	if st := s.state("rb"); st != "exited 129 1" {
		t.Fatalf("isula stop was undone by on-reboot: %q", st)
	}
}

// Restart policies with reboot/poweroff inside (what TestRestartPolicies does not cover).
func TestSystemRestartPolicies(t *testing.T) {
	s := startSysDaemon(t)
	run := func(name, policy string) {
		s.runD("--name", name, "--restart", policy, "--system-container", "--external-rootfs", Rootfs(t), "none", "init")
	}
	run("no", "no")
	run("always", "always")
	run("onfail", "on-failure:1")
	run("unless", "unless-stopped")
	time.Sleep(500 * time.Millisecond)

	// One round in parallel: no/reboot, always/poweroff, on-failure:1/poweroff, unless-stopped/reboot.
	waits := map[string]<-chan string{}
	for _, n := range []string{"no", "always", "onfail", "unless"} {
		waits[n] = s.waitBg(n)
	}
	s.Must("exec", "no", "reboot")
	s.Must("exec", "always", "poweroff")
	s.Must("exec", "onfail", "poweroff")
	s.Must("exec", "unless", "reboot")
	want := map[string]string{"no": "129", "always": "130", "onfail": "130", "unless": "129"}
	for n, w := range waits {
		if code := recv(t, w, n+"'s exit", 20*time.Second); code != want[n] {
			t.Errorf("%s: exit %q, want %s", n, code, want[n])
		}
	}
	for _, n := range []string{"always", "onfail", "unless"} {
		n := n
		WaitFor(t, n+" to be restarted", 15*time.Second, func() bool {
			return s.Inspect(n, "{{.State.Status}} {{.RestartCount}}") == "running 1"
		})
	}
	if st := s.state("no"); st != "exited 129 0" {
		t.Errorf("--restart no after reboot: %q", st)
	}

	// on-failure:1 gives up after one restart.
	a := s.attachUntilHandled(t, "onfail")
	s.Must("exec", "onfail", "poweroff")
	recvResult(t, a, "the daemon to handle onfail's second exit", 20*time.Second)
	if st := s.state("onfail"); st != "exited 130 1" {
		t.Errorf("on-failure:1 after its second failure: %q, want exited 130 1", st)
	}

	// always: stop sticks (the project's rule: a user's stop is never undone by a policy).
	a = s.attachUntilHandled(t, "always")
	s.Must("stop", "always")
	recvResult(t, a, "the daemon to handle always's stop", 20*time.Second)
	if st := s.state("always"); !strings.HasPrefix(st, "exited ") || !strings.HasSuffix(st, " 1") {
		t.Errorf("always after isula stop: %q, want exited with restart count 1", st)
	}

	// unless-stopped: a user's stop sticks, also across a daemon restart. The daemon has no
	// event for "recovery decided not to restart": the restart count must stay for longer
	// than the longest back-off.
	a = s.attachUntilHandled(t, "unless")
	s.Must("stop", "unless")
	recvResult(t, a, "the daemon to handle unless's stop", 20*time.Second)
	before := s.state("unless")
	s.Kill()
	s.Start()
	Holds(t, "unless-stopped to stay stopped after a daemon restart", 2*maxRestartBackoff, func() bool {
		return s.state("unless") == before
	})
}

// --env-target-file writes the environment into the rootfs; a symlink out of it is refused.
func TestSystemEnvTargetFile(t *testing.T) {
	s := startSysDaemon(t)
	rf := Rootfs(t)
	s.runD("--name", "env", "-e", "FOO=bar", "-e", "SPACED=a b", "--env-target-file", "/etc/envfile",
		"--system-container", "--external-rootfs", rf, "none", "init")
	b, err := os.ReadFile(filepath.Join(rf, "etc/envfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"FOO=bar", "SPACED=a b", "container=isulad", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} {
		if !regexFind(string(b), `(?m)^`+regexp.QuoteMeta(l)+`$`) {
			t.Errorf("envfile lacks %q:\n%s", l, b)
		}
	}
	if in := s.Must("exec", "env", "cat", "/etc/envfile"); in != strings.TrimSpace(string(b)) {
		t.Errorf("envfile inside differs: %q", in)
	}
	s.Must("rm", "-f", "env")

	// A relative symlink that climbs out of the rootfs.
	outside := s.TempDir()
	rel, _ := filepath.Rel(filepath.Join(rf, "etc"), outside)
	if err := os.Symlink(rel, filepath.Join(rf, "etc", "esc")); err != nil {
		t.Fatal(err)
	}
	r := s.Isula("run", "-d", "--name", "esc", "--env-target-file", "/etc/esc/envfile", "--system-container", "--external-rootfs", rf, "none", "init")
	if r.Code != 125 || !strings.Contains(r.Stderr, "escapes") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("env-target-file through an escaping symlink: %s", r)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a file was written outside the rootfs: %v", ents)
	}
	if st := s.Isula("inspect", "-f", "{{.State.Running}}", "esc"); st.Code == 0 && strings.TrimSpace(st.Stdout) == "true" {
		t.Errorf("the container runs although its env-target-file was refused")
	}
}

// --ns-change-opt net: /proc/sys/net writable, the non-namespaced sysctls still read-only.
func TestSystemNsChangeOpt(t *testing.T) {
	s := startSysDaemon(t)
	s.runD("--name", "net", "--ns-change-opt", "net", "--system-container", "--external-rootfs", busyboxRoot, "none", "init")
	s.runD("--name", "plain", "--system-container", "--external-rootfs", busyboxRoot, "none", "init")
	if r := s.Isula("exec", "net", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Errorf("--ns-change-opt net: ip_forward not writable: %s", r)
	}
	for _, p := range []string{"/proc/sys/kernel/panic", "/proc/sys/vm/overcommit_memory", "/proc/sys/fs/file-max", "/proc/sys/kernel/hostname", "/proc/sys/kernel/shmmax"} {
		// Write back the value read (a success would change nothing on the host).
		r := s.Isula("exec", "net", "sh", "-c", "v=$(cat "+p+") && echo \"$v\" > "+p)
		if r.Code == 0 || !strings.Contains(r.Stderr, "Read-only") {
			t.Errorf("--ns-change-opt net: %s is writable: %s", p, r)
		}
	}
	if r := s.Isula("exec", "plain", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); r.Code == 0 {
		t.Errorf("without --ns-change-opt, /proc/sys/net is writable")
	}
}

// --hook-spec prestart/poststop hooks run on the host; --cgroup-parent places the cgroup.
func TestSystemHooksAndCgroupParent(t *testing.T) {
	s := startSysDaemon(t)
	dir := s.TempDir()
	marker := filepath.Join(dir, "marker")
	hook := filepath.Join(dir, "hook.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> "+marker+"\n"), 0o755)
	spec := filepath.Join(dir, "hooks.json")
	os.WriteFile(spec, []byte(`{"prestart":[{"path":"`+hook+`","args":["hook.sh","prestart"]}],`+
		`"poststop":[{"path":"`+hook+`","args":["hook.sh","poststop"]}]}`), 0o644)

	parent := "/isulad-it-sys-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		for _, h := range cgroupHierarchies() {
			os.Remove(filepath.Join(h, parent))
		}
	})
	id := s.runD("--name", "h", "--hook-spec", spec, "--cgroup-parent", parent, "--system-container", "--external-rootfs", busyboxRoot, "none", "init")
	b, _ := os.ReadFile(marker)
	if !regexFind(string(b), `(?m)^prestart .*"id":"`+id+`"`) {
		t.Errorf("prestart hook did not run (marker: %q)", b)
	}
	if cg := s.Inspect("h", "{{.CgroupsPath}}"); cg != parent+"/"+id {
		t.Errorf("cgroups path %q, want %s/<id>", cg, parent)
	}
	pid := s.Inspect("h", "{{.State.Pid}}")
	pc, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	for _, ctrl := range []string{"memory", "pids", "name=systemd"} {
		if !regexFind(string(pc), `(?m)^\d+:`+ctrl+`:`+parent+`/`+id+`$`) {
			t.Errorf("%s cgroup of PID 1 not under %s:\n%s", ctrl, parent, pc)
		}
	}
	s.Must("stop", "h")
	WaitFor(t, "the poststop hook", 10*time.Second, func() bool {
		b, _ := os.ReadFile(marker)
		return regexFind(string(b), `(?m)^poststop .*"id":"`+id+`"`)
	})
	s.Must("rm", "h")
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, parent, id)); err == nil {
			t.Errorf("cgroup %s left after rm", filepath.Join(h, parent, id))
		}
	}
}

// Refusals: exit 125, one line, nothing created (no container, no host channel path).
func TestSystemRefusals(t *testing.T) {
	s := startSysDaemon(t)
	ch := filepath.Join(s.TempDir(), "ch")
	hooks := filepath.Join(s.TempDir(), "hooks.json")
	os.WriteFile(hooks, []byte(`{"prestart":[{"path":"/bin/true"}]}`), 0o644)
	cases := [][]string{
		{"--ns-change-opt", "net"},
		{"--ns-change-opt", "ipc"},
		{"--user-remap", "100000:100000:65535"},
		{"--system-container", "--user-remap", "100000:100000"},
		{"--system-container", "--user-remap", "100000:100000:0"},
		{"--system-container", "--user-remap", "100000:100000:65536"},
		{"--system-container", "--user-remap", "a:b:c"},
		{"--system-container", "--user-remap", "-1:100000:10"},
		{"--system-container", "--user-remap", "100000:100000:65535:1"},
		{"--system-container", "--user-remap", "4294967295:0:10"},
		{"--system-container", "--user-remap", "100000:100000:65535", "--privileged"},
		{"--system-container", "--user-remap", "100000:100000:65535", "--net", "host"},
		{"--system-container", "--ns-change-opt", "uts"},
		{"--system-container", "--ns-change-opt", "net", "--net", "host"},
		{"--system-container", "--ns-change-opt", "net", "--privileged"},
		{"--system-container", "--env-target-file", "etc/envfile"},
		{"--system-container", "--env-target-file", "/etc/../envfile"},
		{"--system-container", "--hook-spec", "/nonexistent/hooks.json"},
		{"--system-container", "--hook-spec", filepath.Dir(hooks)},
	}
	for _, c := range cases {
		args := append([]string{"run", "-d", "--host-channel", ch + ":/ch"}, c...)
		args = append(args, "--external-rootfs", busyboxRoot, "none", "init")
		r := s.Isula(args...)
		msg := strings.TrimSpace(r.Stderr)
		if r.Code != 125 || msg == "" || strings.Contains(msg, "\n") || r.Stdout != "" {
			t.Errorf("%v: want exit 125 and one line on stderr, got %s", c, r)
		}
		if out := s.Must("ps", "-aq"); out != "" {
			t.Fatalf("%v: a container was created: %s", c, out)
		}
		if _, err := os.Lstat(ch); err == nil {
			t.Fatalf("%v: the host channel %s was created", c, ch)
		}
	}
	// The same options are accepted with --system-container (the refusals are not blanket).
	s.runD("--name", "ok", "--ns-change-opt", "net,ipc", "--hook-spec", hooks, "--system-container", "--external-rootfs", busyboxRoot, "none", "init")
	s.Must("rm", "-f", "ok")
	if ents, _ := os.ReadDir(filepath.Join(s.Graph, "containers")); len(ents) != 0 {
		t.Errorf("container directories left: %d", len(ents))
	}
}

func regexFind(s, re string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

// A container whose policy restarts it, caught by a daemon restart between its exit and the
// restart (the policy's back-off), is restarted by the new daemon: always and unless-stopped
// alike (docker's rule; a user's stop is the only thing that keeps them down).
func TestSystemRestartAcrossDaemonRestart(t *testing.T) {
	s := startSysDaemon(t)
	for _, p := range []string{"always", "unless-stopped"} {
		s.runD("--name", p, "--restart", p, "--external-rootfs", busyboxRoot, "none", "sh", "-c", "sleep 0.2; exit 1")
	}
	// After a few restarts the back-off (n x 100ms) keeps them restarting most of the time.
	WaitFor(t, "a few restarts", 20*time.Second, func() bool {
		a, _ := strconv.Atoi(s.Inspect("always", "{{.RestartCount}}"))
		u, _ := strconv.Atoi(s.Inspect("unless-stopped", "{{.RestartCount}}"))
		return a >= 6 && u >= 6
	})
	WaitFor(t, "both in the back-off at once", 20*time.Second, func() bool {
		return s.Inspect("always", "{{.State.Status}}") == "restarting" && s.Inspect("unless-stopped", "{{.State.Status}}") == "restarting"
	})
	s.Kill()
	s.Start()
	for _, p := range []string{"always", "unless-stopped"} {
		n0, _ := strconv.Atoi(s.Inspect(p, "{{.RestartCount}}"))
		WaitFor(t, p+" to go on restarting after the daemon restart", 10*time.Second, func() bool {
			n, _ := strconv.Atoi(s.Inspect(p, "{{.RestartCount}}"))
			return n > n0
		})
	}
}
