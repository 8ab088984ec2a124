package spec

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/rootfs"
	"github.com/isulad-go/isulad/internal/testenv"
)

// These tests run real containers with runc from specs made by Generate. They need root,
// runc and busybox-static, and leave nothing behind: runc's state is under t.TempDir() and
// the cgroups under /isulad-spectest are removed.

const testCgroupParent = "/isulad-spectest"

var containerSeq atomic.Int64

type runcEnv struct {
	t      *testing.T
	runc   string
	root   string // runc --root
	bundle string
	rootfs string
	id     string
}

func needRunc(t *testing.T) string {
	t.Helper()
	testenv.Root(t, "runs runc")
	return testenv.LookPath(t, "runc")
}

// busyboxRootfs makes a minimal rootfs from the host's static busybox.
func busyboxRootfs(t *testing.T, dir string) {
	t.Helper()
	bb := ""
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if out, err := exec.Command("file", "-L", p).Output(); err == nil && bytes.Contains(out, []byte("statically linked")) {
			bb = p
			break
		} else if err != nil {
			if _, serr := os.Stat(p); serr == nil && bb == "" {
				bb = p
			}
		}
	}
	if bb == "" {
		testenv.Missing(t, "busybox-static not installed")
	}
	for _, d := range []string{"bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"sh", "true", "false", "cat", "ps", "grep", "echo", "sleep", "ls", "id", "mount", "reboot", "poweroff", "hostname", "sysctl", "stat", "mkdir", "rmdir"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../bin/busybox", filepath.Join(dir, "sbin/init")); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":   "root:x:0:\nnogroup:x:65534:\n",
		"etc/inittab": "::sysinit:/bin/true\n::ctrlaltdel:/sbin/reboot\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newRuncEnv(t *testing.T) *runcEnv {
	runc := needRunc(t)
	tmp := t.TempDir()
	e := &runcEnv{
		t: t, runc: runc, root: filepath.Join(tmp, "runc"), bundle: filepath.Join(tmp, "bundle"),
		id: fmt.Sprintf("spectest-%d-%d", os.Getpid(), containerSeq.Add(1)),
	}
	e.rootfs = filepath.Join(e.bundle, "rootfs")
	busyboxRootfs(t, e.rootfs)
	t.Cleanup(e.cleanup)
	return e
}

func (e *runcEnv) cgroupsPath() string { return cgroups.Path(testCgroupParent, e.id) }

func (e *runcEnv) options(cmd ...string) Options {
	return Options{
		ID: e.id, Config: types.Config{Cmd: cmd}, Rootfs: e.rootfs, Hostname: "spectest",
		EngineName: "isulad", CgroupsPath: e.cgroupsPath(),
	}
}

func (e *runcEnv) write(s *specs.Spec) {
	e.t.Helper()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *runcEnv) cmd(args ...string) *exec.Cmd {
	return exec.Command(e.runc, append([]string{"--root", e.root}, args...)...)
}

// run runs the container in the foreground and returns its output and exit error.
func (e *runcEnv) run(s *specs.Spec) (string, error) {
	e.write(s)
	c := e.cmd("run", "--bundle", e.bundle, e.id)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		e.t.Fatalf("runc run did not finish in 60s: %s", out.String())
		return "", nil
	}
}

// runDetached starts the container in the background; its stdio goes to a file (a pipe
// would be held open by the container).
func (e *runcEnv) runDetached() (string, error) {
	logPath := filepath.Join(e.bundle, "out.log")
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	c := e.cmd("run", "-d", "--bundle", e.bundle, e.id)
	c.Stdout, c.Stderr = f, f
	err = c.Run()
	out, _ := os.ReadFile(logPath)
	return string(out), err
}

func (e *runcEnv) exec(args ...string) (string, error) {
	out, err := e.cmd(append([]string{"exec", e.id}, args...)...).CombinedOutput()
	return string(out), err
}

func (e *runcEnv) state() string {
	out, err := e.cmd("state", e.id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	json.Unmarshal(out, &st)
	return st.Status
}

func (e *runcEnv) cleanup() {
	e.cmd("kill", e.id, "KILL").Run()
	for i := 0; i < 50 && e.state() == "running"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	e.cmd("delete", "-f", e.id).Run()
	removeCgroups(e.t, e.cgroupsPath())
}

// removeCgroups removes p (and the test parent when empty) from every mounted hierarchy.
func removeCgroups(t *testing.T, p string) {
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	for _, h := range hier {
		dir := filepath.Join(h, p)
		// Children made inside (systemd's slices and scopes) go first, deepest first.
		var dirs []string
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			for try := 0; try < 20; try++ {
				if err := os.Remove(dirs[i]); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		os.Remove(filepath.Join(h, testCgroupParent))
	}
}

func mustGenerate(t *testing.T, o Options) *specs.Spec {
	t.Helper()
	s, err := Generate(o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		for i, n := range capNames {
			if n == c {
				m |= 1 << uint(i)
			}
		}
	}
	return m
}

func statusField(out, field string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestRuncDefaultContainer(t *testing.T) {
	e := newRuncEnv(t)
	s := mustGenerate(t, e.options("true"))
	if out, err := e.run(s); err != nil {
		t.Fatalf("runc run true: %v\n%s", err, out)
	}
}

func TestRuncCapsAndSeccomp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hc      types.HostConfig
		seccomp string
	}{
		{"default", types.HostConfig{}, "2"},
		{"cap-add-drop", types.HostConfig{CapAdd: []string{"sys_admin", "NET_ADMIN"}, CapDrop: []string{"CAP_CHOWN"}}, "2"},
		{"unconfined", types.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}, "0"},
		{"privileged", types.HostConfig{Privileged: true}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRuncEnv(t)
			o := e.options("cat", "/proc/self/status")
			o.HostConfig = tc.hc
			s := mustGenerate(t, o)
			out, err := e.run(s)
			if err != nil {
				t.Fatalf("runc run: %v\n%s", err, out)
			}
			eff, err := strconv.ParseUint(statusField(out, "CapEff"), 16, 64)
			if err != nil {
				t.Fatalf("no CapEff in output:\n%s", out)
			}
			if want := capMask(s.Process.Capabilities.Effective); eff != want {
				t.Errorf("CapEff %x, want %x (%v)", eff, want, s.Process.Capabilities.Effective)
			}
			if got := statusField(out, "Seccomp"); got != tc.seccomp {
				t.Errorf("Seccomp: %q, want %q", got, tc.seccomp)
			}
		})
	}
}

func TestRuncResources(t *testing.T) {
	pids := int64(77)
	e := newRuncEnv(t)
	o := e.options("sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares")
	o.HostConfig = types.HostConfig{Memory: 64 << 20, PidsLimit: &pids, NanoCPUs: 1500000000, CPUShares: 512}
	if cgroups.Mode() == cgroups.V2 {
		t.Skip("the v1 files are checked here; v2 is unit-tested")
	}
	out, err := e.run(mustGenerate(t, o))
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	want := []string{strconv.Itoa(64 << 20), strconv.Itoa(128 << 20), "77", "150000", "512"}
	if got := strings.Fields(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cgroup values %q, want %q", got, want)
	}
}

func TestRuncSystemContainerBusyboxInit(t *testing.T) {
	e := newRuncEnv(t)
	o := e.options("/sbin/init")
	o.HostConfig = types.HostConfig{SystemContainer: true, Memory: 128 << 20, ExternalRootfs: e.rootfs}
	if rootfs.IsSystemdInit(e.rootfs, "/sbin/init") {
		t.Fatal("busybox init taken for systemd")
	}
	s := mustGenerate(t, o)
	e.write(s)
	if out, err := e.runDetached(); err != nil {
		t.Fatalf("runc run -d: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	if st := e.state(); st != "running" {
		t.Fatalf("state %q, want running", st)
	}
	out, err := e.exec("ps")
	if err != nil {
		t.Fatalf("exec ps: %v\n%s", err, out)
	}
	found := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "1" && strings.Contains(f[len(f)-1], "init") {
			found = true
		}
	}
	if !found {
		t.Errorf("init is not PID 1:\n%s", out)
	}
	// The engine's limits cannot be raised from inside.
	if out, err := e.exec("sh", "-c", "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		t.Errorf("writing memory.limit_in_bytes inside succeeded: %s", out)
	}
	// The container's own name=systemd subtree is writable.
	if out, err := e.exec("sh", "-c", "mkdir /sys/fs/cgroup/systemd/probe && rmdir /sys/fs/cgroup/systemd/probe"); err != nil {
		t.Errorf("name=systemd subtree not writable: %v\n%s", err, out)
	}
	if out, err := e.exec("cat", "/proc/1/environ"); err != nil || !strings.Contains(out, "container=isulad") {
		t.Errorf("container= not in init's environment: %v %q", err, out)
	}
	if out, err := e.exec("sh", "-c", "grep -E ' /(run|tmp|run/lock|dev/shm) ' /proc/mounts"); err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 4 {
		t.Errorf("system tmpfs mounts: %v\n%s", err, out)
	} else if !strings.Contains(out, "size=65536k") {
		t.Errorf("/run etc. not sized at half of -m:\n%s", out)
	}
	if out, err := e.cmd("kill", e.id, "KILL").CombinedOutput(); err != nil {
		t.Fatalf("runc kill: %v\n%s", err, out)
	}
	for i := 0; i < 50 && e.state() == "running"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := e.cmd("delete", e.id).CombinedOutput(); err != nil {
		t.Fatalf("runc delete: %v\n%s", err, out)
	}
}

// waitStopped waits until the container is no longer running.
func (e *runcEnv) waitStopped(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if st := e.state(); st != "running" {
			return true
		}
	}
	return false
}

func TestRuncSystemContainerUserRemap(t *testing.T) {
	e := newRuncEnv(t)
	// The mapped root must be able to reach the rootfs.
	for d := e.rootfs; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	m := &IDMap{UID: 100000, GID: 100000, Size: 65535}
	o := e.options("/sbin/init")
	o.HostConfig = types.HostConfig{SystemContainer: true, ExternalRootfs: e.rootfs, UserRemap: "100000:100000:65535"}
	o.UserRemap = m
	if err := ValidateSystemOptions(o.Config, o.HostConfig); err != nil {
		t.Fatal(err)
	}
	e.write(mustGenerate(t, o))
	if out, err := e.runDetached(); err != nil {
		t.Fatalf("runc run -d: %v\n%s", err, out)
	}
	out, err := e.exec("cat", "/proc/self/uid_map")
	if f := strings.Fields(out); err != nil || len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65535" {
		t.Errorf("uid_map inside: %v %q", err, out)
	}
	// The writable name=systemd subtree belongs to the mapped root.
	if cgroups.Mode() != cgroups.V2 {
		out, err = e.exec("stat", "-c", "%u:%g", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/systemd/cgroup.procs")
		if err != nil || strings.Fields(out)[0] != "0:0" || strings.Fields(out)[1] != "0:0" {
			t.Errorf("owner of the systemd subtree inside: %v %q", err, out)
		}
		if out, err := e.exec("sh", "-c", "mkdir /sys/fs/cgroup/systemd/probe && rmdir /sys/fs/cgroup/systemd/probe"); err != nil {
			t.Errorf("name=systemd subtree not writable by the mapped root: %v\n%s", err, out)
		}
		if out, err := e.exec("sh", "-c", "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
			t.Errorf("writing memory.limit_in_bytes inside succeeded: %s", out)
		}
	}
	e.cmd("kill", e.id, "KILL").Run()
	e.waitStopped(5 * time.Second)
}

// debianRootfs is the debian+systemd rootfs that .ci/run keeps in scripts/mkrootfs.sh's cache.
var debianRootfs = filepath.Join(cmp.Or(os.Getenv("ISULAD_ROOTFS_CACHE"), "/var/cache/isulad-rootfs"), "debian")

func TestRuncSystemdBoots(t *testing.T) {
	runc := needRunc(t)
	if _, err := os.Stat(filepath.Join(debianRootfs, "lib/systemd/systemd")); err != nil {
		testenv.Missing(t, "no debian+systemd rootfs at %s (make it with scripts/mkrootfs.sh debian %s)", debianRootfs, debianRootfs)
	}
	if !rootfs.IsSystemdInit(debianRootfs, "/sbin/init") {
		t.Fatalf("/sbin/init of %s not recognised as systemd", debianRootfs)
	}
	tmp := t.TempDir()
	e := &runcEnv{t: t, runc: runc, root: filepath.Join(tmp, "runc"), bundle: filepath.Join(tmp, "bundle"),
		rootfs: debianRootfs, id: fmt.Sprintf("spectest-%d-%d", os.Getpid(), containerSeq.Add(1))}
	os.MkdirAll(e.bundle, 0o755)
	t.Cleanup(e.cleanup)
	o := e.options("/sbin/init")
	o.HostConfig = types.HostConfig{SystemContainer: true, ExternalRootfs: debianRootfs, Memory: 512 << 20}
	if sig := DefaultStopSignal(o, true); sig != "SIGRTMIN+3" {
		t.Errorf("stop signal %s", sig)
	}
	e.write(mustGenerate(t, o))
	if out, err := e.runDetached(); err != nil {
		t.Fatalf("runc run -d: %v\n%s", err, out)
	}
	state := ""
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		out, _ := e.exec("systemctl", "is-system-running")
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			break
		}
	}
	if state != "running" {
		failed, _ := e.exec("systemctl", "--failed", "--no-pager")
		t.Fatalf("systemctl is-system-running: %q\n%s", state, failed)
	}
	if out, err := e.exec("sh", "-c", "echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		t.Errorf("writing memory.limit_in_bytes inside succeeded: %s", out)
	}
	start := time.Now()
	if out, err := e.cmd("kill", e.id, "37").CombinedOutput(); err != nil { // SIGRTMIN+3
		t.Fatalf("runc kill 37: %v\n%s", err, out)
	}
	if !e.waitStopped(15 * time.Second) {
		t.Errorf("systemd did not stop within 15s of SIGRTMIN+3")
	}
	t.Logf("systemd stopped %v after SIGRTMIN+3", time.Since(start).Round(10*time.Millisecond))
}

func TestRuncNsChangeOpt(t *testing.T) {
	e := newRuncEnv(t)
	o := e.options("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && echo net-ok; echo 1000000 > /proc/sys/kernel/shmmax && echo ipc-ok; echo 5 > /proc/sys/kernel/panic && echo panic-WRITABLE; true")
	o.HostConfig = types.HostConfig{SystemContainer: true, ExternalRootfs: e.rootfs, NsChangeOpt: "net,ipc"}
	out, err := e.run(mustGenerate(t, o))
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "net-ok") || !strings.Contains(out, "ipc-ok") || strings.Contains(out, "panic-WRITABLE") {
		t.Errorf("sysctls inside:\n%s", out)
	}
}
