package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// crictlPath is the cached crictl of scripts/tools.sh (built from the Go module proxy once).
func crictlPath(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "tools.sh"), "crictl").Output()
	if err != nil {
		msg := fmt.Sprintf("crictl is not cached and could not be built (scripts/tools.sh crictl: %v)", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// criClient runs crictl against one daemon's socket.
type criClient struct {
	t    *testing.T
	bin  string
	sock string
	cfg  string
}

func newCRIClient(t *testing.T, d *Daemon) *criClient {
	// An empty config file: crictl reads /etc/crictl.yaml otherwise.
	cfg := filepath.Join(d.Dir, "crictl.yaml")
	os.WriteFile(cfg, nil, 0o600)
	return &criClient{t: t, bin: crictlPath(t), sock: "unix://" + d.Sock, cfg: cfg}
}

func (c *criClient) run(stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--config", c.cfg, "-r", c.sock, "-i", c.sock, "--timeout", "30s"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// must runs crictl and returns its trimmed output, failing the test on an error.
func (c *criClient) must(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.Code != 0 {
		c.t.Fatalf("crictl %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.Stdout)
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// plainBusybox is a one-layer image of the busybox rootfs that runs sh, as docker's busybox.
func plainBusybox(t *testing.T) ImageSpec {
	return ImageSpec{Layers: [][]byte{TarDir(t, busyboxRoot)}, Config: map[string]any{
		"Env": []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "Cmd": []string{"sh"}}}
}

// restartWithConfig writes daemon.json and restarts the daemon to read it.
func restartWithConfig(t *testing.T, d *Daemon, cfg map[string]any) {
	t.Helper()
	writeJSON(t, filepath.Join(d.Dir, "daemon.json"), cfg)
	d.Stop()
	d.Start()
}

// startCRIDaemon is a daemon with crictl pointed at it whose CRI has pulled busybox
// (plainBusybox) with `crictl pull`, from a private registry that daemon.json
// registry-mirrors makes docker.io's mirror. Every pod left is removed before the daemon's
// own cleanup.
func startCRIDaemon(t *testing.T) (*Daemon, *criClient, string) {
	reg := StartRegistry(t, nil)
	PushTestImage(t, reg, "library/busybox", "latest", plainBusybox(t), false)
	d := StartDaemon(t)
	restartWithConfig(t, d, map[string]any{"registry-mirrors": []string{"http://" + reg.Host}})
	cc := newCRIClient(t, d)
	t.Cleanup(func() {
		if r := cc.run("", "rmp", "-a", "-f"); r.Code != 0 {
			t.Errorf("cleanup: crictl rmp -a -f: %s", r)
		}
	})
	cc.must("pull", "busybox")
	return d, cc, d.TempDir()
}

func TestCRICrictl(t *testing.T) {
	d, cc, dir := startCRIDaemon(t)
	if out := cc.must("version"); !strings.Contains(out, "RuntimeName:  isulad") || !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Fatalf("crictl version:\n%s", out)
	}
	var info struct {
		Status struct {
			Conditions []struct {
				Type   string
				Status bool
			}
		}
	}
	if err := json.Unmarshal([]byte(cc.must("info")), &info); err != nil || len(info.Status.Conditions) != 2 || !info.Status.Conditions[0].Status {
		t.Fatalf("crictl info: %v %+v", err, info)
	}
	logDir := filepath.Join(dir, "pods", "default_web_u1")
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "web", "namespace": "default", "uid": "u1"}, "hostname": "web-pod",
		"log_directory": logDir, "labels": map[string]string{"app": "web"},
		"linux": map[string]any{"sysctls": map[string]string{"net.ipv4.ip_unprivileged_port_start": "42"},
			"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}},
	})
	ctr := writeJSON(t, filepath.Join(dir, "ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "app"}, "image": map[string]any{"image": "busybox"},
		"command":  []string{"sh", "-c", "echo started; echo oops >&2; exec sleep 1000"},
		"log_path": "app/0.log", "labels": map[string]string{"tier": "front"},
		"linux": map[string]any{"security_context": map[string]any{"supplemental_groups": []int{1234}}},
	})
	podID := cc.must("runp", pod)
	if out := cc.must("pods", "-q", "--label", "app=web"); out != podID {
		t.Fatalf("crictl pods: %q, want %s", out, podID)
	}
	id := cc.must("create", podID, ctr, pod)
	if out := cc.must("start", id); out != id {
		t.Fatalf("crictl start: %q", out)
	}
	// The pod's container is the engine's, shown by isula ps with its labels.
	if out := d.Must("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}}"); out != id+" k8s_app_web_default_u1_0 busybox" {
		t.Errorf("isula ps of the CRI container: %q", out)
	}
	if out := d.Inspect(id, `{{index .Config.Labels "tier"}}`); out != "front" {
		t.Errorf("isula inspect: label tier = %q", out)
	}
	// exec: in the pod's UTS and network namespaces, with the pod's sysctl; stdin through the
	// streaming server; the exit code comes back.
	if out := cc.must("exec", id, "sh", "-c", "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; ls /sys/class/net"); out != "web-pod\n42\nlo" {
		t.Errorf("exec in the pod: %q, want web-pod, 42 and only lo", out)
	}
	if out := cc.must("exec", id, "id", "-G"); !strings.Contains(" "+out+" ", " 1234 ") {
		t.Errorf("groups in the container: %q, want the supplemental group 1234", out)
	}
	if r := cc.run("from stdin\n", "exec", "-i", id, "cat"); r.Code != 0 || r.Stdout != "from stdin\n" {
		t.Errorf("exec -i: %s", r)
	}
	// crictl itself exits 1 and names the code.
	if r := cc.run("", "exec", id, "sh", "-c", "exit 3"); r.Code != 1 || !strings.Contains(r.Stderr, "exit code 3") {
		t.Errorf("exec exit 3: %s", r)
	}
	if out := cc.must("exec", "--sync", id, "sh", "-c", "echo sync"); out != "sync" {
		t.Errorf("exec --sync: %q", out)
	}
	// exec -it under a terminal of 91x33 (script(1) gives crictl one): the process starts on a
	// tty of that size.
	if _, err := exec.LookPath("script"); err == nil {
		cmd := fmt.Sprintf("stty cols 91 rows 33; %s --config %s -r %s -i %s exec -it %s sh -c 'tty; stty size'", cc.bin, cc.cfg, cc.sock, cc.sock, id)
		// script's stdin stays open (a pipe nobody writes) until the command ends: with
		// /dev/null, script passes the EOF on into crictl's terminal as a character, which
		// reached the container's terminal at a moment of its own and was echoed ("^@"
		// between the lines in 5 of 46 runs; 0 of 24 with the pipe).
		sc := exec.Command("script", "-qc", cmd, "/dev/null")
		if _, err := sc.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		out, _ := sc.CombinedOutput()
		if got := strings.ReplaceAll(string(out), "\r", ""); !strings.Contains(got, "/dev/pts/0\n33 91\n") {
			t.Errorf("exec -it: %q, want /dev/pts/0 and 33 91", got)
		}
	} else {
		t.Log("script(1) not installed: exec -it not checked")
	}
	// Logs: the shim writes the CRI format at the kubelet's path; crictl reads it.
	logPath := filepath.Join(logDir, "app", "0.log")
	WaitFor(t, "the container's two lines in its log", 10*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "\n") >= 2
	})
	b, _ := os.ReadFile(logPath)
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F (started|oops)$`)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !re.MatchString(l) {
			t.Errorf("not a CRI log line: %q", l)
		}
	}
	if r := cc.run("", "logs", id); r.Stdout != "started\n" || r.Stderr != "oops\n" {
		t.Errorf("crictl logs: %s", r)
	}
	if r := d.Isula("logs", id); r.Stdout != "started\n" || r.Stderr != "oops\n" {
		t.Errorf("isula logs of the CRI container: %s", r)
	}
	var st struct {
		Status struct {
			State   string
			LogPath string
		}
	}
	json.Unmarshal([]byte(cc.must("inspect", id)), &st)
	if st.Status.State != "CONTAINER_RUNNING" || st.Status.LogPath != logPath {
		t.Errorf("crictl inspect: %+v", st.Status)
	}
	// Stats and a live update from the cgroup.
	if out := cc.must("stats", "-o", "json", id); !strings.Contains(out, `"workingSetBytes"`) {
		t.Errorf("crictl stats: %s", out)
	}
	cc.must("update", "--memory", "67108864", id)
	cg := d.Inspect(id, "{{.CgroupsPath}}")
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")); err == nil && strings.TrimSpace(string(b)) != "67108864" {
		t.Errorf("memory limit after crictl update: %s", b)
	}

	cc.must("stop", id)
	json.Unmarshal([]byte(cc.must("inspect", id)), &st)
	if st.Status.State != "CONTAINER_EXITED" {
		t.Errorf("state after stop: %s", st.Status.State)
	}
	cc.must("rm", id)
	cc.must("stopp", podID)
	cc.must("stopp", podID)
	cc.must("rmp", podID)
	if out := cc.must("pods", "-q"); out != "" {
		t.Errorf("pods after rmp: %q", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.State, "cri", "sandboxes")); len(ents) != 0 {
		t.Errorf("pinned namespaces left: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "cri", "sandboxes")); len(ents) != 0 {
		t.Errorf("pod records left: %v", ents)
	}
}

// A daemon SIGKILLed and restarted keeps a running pod running, exec-able and reachable by
// port-forward.
func TestCRIPodSurvivesDaemonKill(t *testing.T) {
	d, cc, dir := startCRIDaemon(t)
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "srv", "namespace": "default", "uid": "u2"}, "hostname": "srv",
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}},
	})
	// A one-shot server on 127.0.0.1:8080 inside the pod, restarted after each connection.
	ctr := writeJSON(t, filepath.Join(dir, "ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "nc"}, "image": map[string]any{"image": "busybox"},
		"command": []string{"sh", "-c", "while true; do echo pong | nc -l -p 8080 127.0.0.1; done"},
	})
	podID := cc.must("runp", pod)
	id := cc.must("create", podID, ctr, pod)
	cc.must("start", id)

	d.Kill()
	d.Start()
	if out := cc.must("exec", id, "hostname"); out != "srv" {
		t.Errorf("exec after the daemon's restart: %q", out)
	}
	var st struct{ Status struct{ State string } }
	json.Unmarshal([]byte(cc.must("inspectp", podID)), &st)
	if st.Status.State != "SANDBOX_READY" {
		t.Errorf("pod after the daemon's restart: %s", st.Status.State)
	}
	// Port-forward through the streaming server into the pod's network namespace.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pf := exec.Command(cc.bin, "--config", cc.cfg, "-r", cc.sock, "-i", cc.sock, "port-forward", podID, fmt.Sprintf("%d:8080", port))
	stdout, _ := pf.StdoutPipe()
	pf.Stderr = pf.Stdout
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Forwarding from") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("crictl port-forward did not start")
	}
	var got string
	WaitFor(t, "pong through port-forward", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		b, _ := io.ReadAll(c)
		got = string(b)
		return got == "pong\n"
	})
	cc.must("rmp", "-f", podID)
	if out := d.Must("ps", "-aq"); out != "" {
		t.Errorf("containers left after rmp -f: %q", out)
	}
}

// crictl's default pod (no namespace options: PID mode POD) shares one PID namespace: each
// container sees the other's processes, the pod init is PID 1, and rmp ends it.
func TestCRISharedPIDPod(t *testing.T) {
	_, cc, dir := startCRIDaemon(t)
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "shared", "namespace": "default", "uid": "u3"}})
	var ids []string
	for _, n := range []string{"a", "b"} {
		ctr := writeJSON(t, filepath.Join(dir, n+".json"), map[string]any{
			"metadata": map[string]any{"name": n}, "image": map[string]any{"image": "busybox"},
			"command": []string{"sleep", map[string]string{"a": "1001", "b": "1002"}[n]},
		})
		podID := cc.must("pods", "-q")
		if podID == "" {
			podID = cc.must("runp", pod)
		}
		id := cc.must("create", podID, ctr, pod)
		cc.must("start", id)
		ids = append(ids, id)
	}
	// /proc/1 is the pod init; a's sleep is visible from b.
	out := cc.must("exec", ids[1], "sh", "-c", "cat /proc/1/cmdline; echo; ps -o args")
	if !strings.HasPrefix(out, "isulad-pod-init") || !strings.Contains(out, "sleep 1001") || !strings.Contains(out, "sleep 1002") {
		t.Errorf("processes seen from the second container:\n%s", out)
	}
	podID := cc.must("pods", "-q")
	var info struct{ Info struct{ InitPid int } }
	if err := json.Unmarshal([]byte(cc.must("inspectp", podID)), &info); err != nil || info.Info.InitPid == 0 {
		t.Fatalf("inspectp: no pod init pid (%v)", err)
	}
	cmdline := fmt.Sprintf("/proc/%d/cmdline", info.Info.InitPid)
	if b, _ := os.ReadFile(cmdline); !strings.HasPrefix(string(b), "isulad-pod-init") {
		t.Fatalf("pid %d is not the pod init: %q", info.Info.InitPid, b)
	}
	cc.must("rmp", "-f", podID)
	WaitFor(t, "the pod init to exit", 10*time.Second, func() bool {
		b, _ := os.ReadFile(cmdline)
		return !strings.HasPrefix(string(b), "isulad-pod-init")
	})
}

// Host channels through the CRI: refused by default with one line naming the key; with
// cri-host-channel-roots, the engine's channel (a tmpfs on the host path, seen inside) for the
// container's lifetime, removed with the pod.
func TestCRIHostChannel(t *testing.T) {
	d, cc, dir := startCRIDaemon(t)
	root := filepath.Join(dir, "channels")
	os.Mkdir(root, 0o755)
	hp := filepath.Join(root, "ring")
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "ring", "namespace": "default", "uid": "u4"},
		// The kubelet's way: a pod annotation scoped to the container.
		"annotations": map[string]string{"io.isulad.container.sys.host-channel.ring": hp + ":/ring:rw:2m"},
	})
	ctr := writeJSON(t, filepath.Join(dir, "ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "sys"}, "image": map[string]any{"image": "busybox"},
		"command": []string{"sleep", "1000"},
	})
	podID := cc.must("runp", pod)
	r := cc.run("", "create", podID, ctr, pod)
	if r.Code == 0 || !strings.Contains(r.Stderr, `pod annotation \"io.isulad.container.sys.host-channel.ring\": host channels through the CRI are refused: no daemon.json \"cri-host-channel-roots\" is set`) {
		t.Fatalf("a host channel without cri-host-channel-roots: %s", r)
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("a refused create left a container: %q", out)
	}
	if _, err := os.Lstat(hp); err == nil {
		t.Fatalf("a refused create left the host path")
	}
	cc.must("rmp", "-f", podID)

	cfg, _ := json.Marshal(map[string]any{"cri-host-channel-roots": []string{root}})
	os.WriteFile(filepath.Join(d.Dir, "daemon.json"), cfg, 0o600)
	d.Stop()
	d.Start()
	podID = cc.must("runp", pod)
	id := cc.must("create", podID, ctr, pod)
	cc.must("start", id)
	if m := mountOf(hp); !strings.Contains(m, " - tmpfs ") || !strings.Contains(m, "size=2048k") {
		t.Fatalf("the channel is not a 2m tmpfs on the host: %q", m)
	}
	if err := os.WriteFile(filepath.Join(hp, "msg"), []byte("from the node\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := cc.must("exec", id, "cat", "/ring/msg"); out != "from the node" {
		t.Errorf("read through the channel: %q", out)
	}
	// The kubelet's restart: the container exits, attempt 1 is created while attempt 0 is kept.
	// Attempt 1 needs the same host path: the exited attempt 0 is removed (its channel with it)
	// and attempt 1 gets a fresh channel there.
	ctr1 := writeJSON(t, filepath.Join(dir, "ctr1.json"), map[string]any{
		"metadata": map[string]any{"name": "sys", "attempt": 1}, "image": map[string]any{"image": "busybox"},
		"command": []string{"sleep", "1000"},
	})
	if r := cc.run("", "create", podID, ctr1, pod); r.Code == 0 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("attempt 1 created while attempt 0 runs with the host path: %s", r)
	}
	cc.must("stop", "-t", "1", id)
	id1 := cc.must("create", podID, ctr1, pod)
	if r := cc.run("", "inspect", id); r.Code == 0 {
		t.Errorf("the exited attempt 0 is still there after attempt 1 was created")
	}
	cc.must("start", id1)
	if m := mountOf(hp); !strings.Contains(m, " - tmpfs ") {
		t.Fatalf("attempt 1's channel is not mounted on the host path: %q", m)
	}
	if _, err := os.Stat(filepath.Join(hp, "msg")); err == nil {
		t.Errorf("attempt 1's channel holds attempt 0's file: want a fresh one")
	}
	os.WriteFile(filepath.Join(hp, "msg"), []byte("again\n"), 0o644)
	if out := cc.must("exec", id1, "cat", "/ring/msg"); out != "again" {
		t.Errorf("read through attempt 1's channel: %q", out)
	}
	cc.must("rmp", "-f", podID)
	if m := mountOf(hp); m != "" {
		t.Errorf("rmp left the channel mounted: %s", m)
	}
	if _, err := os.Lstat(hp); err == nil {
		t.Errorf("rmp left the host path %s", hp)
	}
}

// A daemon killed in RunPodSandbox after the namespaces are pinned and the pod init started:
// the restarted daemon has no such pod, and nothing of it is left (mount, init, directory).
func TestCRIRunPodSandboxCrash(t *testing.T) {
	d := StartDaemon(t, "ISULAD_FAULTS=cri-run-after-pin=kill")
	cc := newCRIClient(t, d)
	t.Cleanup(func() { cc.run("", "rmp", "-a", "-f") })
	dir := d.TempDir()
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "crash", "namespace": "default", "uid": "u5"}})
	if r := cc.run("", "runp", pod); r.Code == 0 {
		t.Fatalf("runp succeeded through a kill fault: %s", r)
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not die at the fault point")
	}
	// Before the restart, what the crash left: pinned namespaces and a pod init.
	pins, _ := filepath.Glob(filepath.Join(d.State, "cri", "sandboxes", "*", "init.json"))
	if len(pins) != 1 {
		t.Fatalf("the crash left %d pod inits on record, want 1", len(pins))
	}
	var init struct{ Pid int }
	b, _ := os.ReadFile(pins[0])
	json.Unmarshal(b, &init)
	d.extraEnv = nil
	d.Start()
	if out := cc.must("pods", "-q"); out != "" {
		t.Errorf("pods after the restart: %q", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.State, "cri", "sandboxes")); len(ents) != 0 {
		t.Errorf("left in the pin directory: %v", ents)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), filepath.Join(d.State, "cri")) {
		t.Errorf("a pinned namespace is left mounted")
	}
	WaitFor(t, "the crashed pod's init to be gone", 10*time.Second, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", init.Pid))
		return !strings.HasPrefix(string(b), "isulad-pod-init")
	})
	// The name is free again.
	cc.must("runp", pod)
}
