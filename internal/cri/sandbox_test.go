package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodSandboxLifecycle(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	id := runPod(t, s, "web")
	st, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id[:12], Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.Metadata.Name != "web" || st.Status.Id != id {
		t.Fatalf("status = %v", st.Status)
	}
	pins := s.pods.pinPath(id)
	for _, k := range []string{"net", "ipc", "uts"} {
		if !namespacePinned(filepath.Join(pins, k)) {
			t.Errorf("%s namespace of the pod is not pinned", k)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(s.pods.filesDir(id), "hostname")); string(b) != "web\n" {
		t.Errorf("pod hostname file = %q", b)
	}
	l, _ := s.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}})
	l2, _ := s.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "db"}}})
	if len(l.Items) != 1 || len(l2.Items) != 0 {
		t.Errorf("list by label: %d for app=web (want 1), %d for app=db (want 0)", len(l.Items), len(l2.Items))
	}
	cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: id, Config: ctrConfig("c")})
	if err != nil {
		t.Fatal(err)
	}
	s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId})

	// Stop: containers killed, namespaces released, NOTREADY; twice is fine.
	for i := 0; i < 2; i++ {
		if _, err := s.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
	if c, _ := e.Container(cr.ContainerId); c.Status != "exited" {
		t.Errorf("container after the pod's stop: %s, want exited", c.Status)
	}
	if ents, _ := os.ReadDir(pins); len(ents) != 0 {
		t.Errorf("pinned namespaces left after stop: %v", ents)
	}
	st, _ = s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("state after stop = %v", st.Status.State)
	}
	if _, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: id, Config: ctrConfig("d")}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("create in a stopped pod: %v, want FailedPrecondition", err)
	}
	// Remove: containers removed, record and directories gone; twice is fine.
	for i := 0; i < 2; i++ {
		if _, err := s.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if _, err := e.Container(cr.ContainerId); err == nil {
		t.Error("the pod's container is still there after RemovePodSandbox")
	}
	for _, d := range []string{pins, s.pods.filesDir(id)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after remove", d)
		}
	}
	if _, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed pod: %v, want NotFound", err)
	}
	if _, err := s.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "feedface"}); err != nil {
		t.Errorf("stop of an unknown pod: %v, want success", err)
	}
}

func TestRunPodSandboxRefusesBadConfig(t *testing.T) {
	s, _ := testService(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(*runtimeapi.PodSandboxConfig)
		code codes.Code
		want string
	}{
		{"no metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }, codes.InvalidArgument, "metadata"},
		{"hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "bad_host!" }, codes.InvalidArgument, `"bad_host!"`},
		{"CNI_ARGS in name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "web;IP=10.0.0.9" }, codes.InvalidArgument, `name "web;IP=10.0.0.9"`},
		{"newline in namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "a\nb" }, codes.InvalidArgument, "namespace"},
		{"systemd slice", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "kubepods-pod1.slice" }, codes.InvalidArgument, "cgroupfs"},
		{"cgroup ..", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/kubepods/../../etc" }, codes.InvalidArgument, ".."},
		{"node sysctl", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.panic": "1"} }, codes.InvalidArgument, "kernel.panic"},
		{"sysctl path", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net/../../sysrq-trigger": "b"}
		}, codes.InvalidArgument, "sysrq"},
		{"net sysctl on host network", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, codes.InvalidArgument, "net.ipv4.ip_forward"},
		{"sysctl newline", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1\n2"}
		}, codes.InvalidArgument, "newline"},
		{"pid target", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_TARGET
		}, codes.InvalidArgument, "PID"},
		{"dns server", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"dns.example"}}
		}, codes.InvalidArgument, "dns.example"},
		{"dns option", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Options: []string{"ndots:5\nnameserver 6.6.6.6"}}
		}, codes.InvalidArgument, "one word"},
		{"relative log dir", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "logs" }, codes.InvalidArgument, `"logs"`},
		{"port", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 70000}}
		}, codes.InvalidArgument, "70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := podConfig("bad")
			tc.mod(c)
			_, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: c})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v; want %v naming %q on one line", err, tc.code, tc.want)
			}
		})
	}
	_, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("h"), RuntimeHandler: "kata"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "kata") {
		t.Errorf("unknown handler: %v", err)
	}
	// Nothing was made for any of them.
	for _, d := range []string{s.pods.recordDir, s.pods.pinDir} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("left in %s: %v", d, ents)
		}
	}
}

func TestRunPodSandboxTwiceIsRefused(t *testing.T) {
	s, _ := testService(t, nil)
	runPod(t, s, "web")
	_, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("web")})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second RunPodSandbox of the same pod: %v, want AlreadyExists", err)
	}
}

func TestPodSandboxHostNamespaces(t *testing.T) {
	s, _ := testService(t, nil)
	c := podConfig("host")
	c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE,
		Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE}
	r, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.pods.pinPath(r.PodSandboxId)); len(ents) != 0 {
		t.Errorf("a pod on the host's namespaces pinned %v", ents)
	}
	cr, err := s.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: ctrConfig("c")})
	if err != nil {
		t.Fatal(err)
	}
	cc := s.engine.(*fakeEngine).config(t, cr.ContainerId)
	for _, k := range []string{"network", "ipc", "uts", "pid"} {
		if cc.Namespaces[k] != HostNamespace {
			t.Errorf("namespace %s of a container in a host pod: %q, want the host's", k, cc.Namespaces[k])
		}
	}
}

// A restarted daemon finds its pods; one whose RunPodSandbox was cut short before its record
// is swept, namespaces unpinned.
func TestPodRecordsAfterRestart(t *testing.T) {
	s, e := testService(t, nil)
	id := runPod(t, s, "web")
	// An interrupted RunPodSandbox: files and pinned namespaces, no record.
	half := newID()
	os.MkdirAll(s.pods.filesDir(half), 0o700)
	os.MkdirAll(s.pods.pinPath(half), 0o700)
	if _, err := pinNamespaces(pinRequest{Dir: s.pods.pinPath(half), Kinds: []nsKind{nsNet}}); err != nil {
		t.Fatal(err)
	}
	s.stream.close()
	s2, err := New(s.cfg, e, s.images, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.stream.close()
	st, err := s2.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod after restart: %v, %v", st, err)
	}
	for _, d := range []string{s.pods.filesDir(half), s.pods.pinPath(half)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("unfinished pod's %s not swept", d)
		}
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), half) {
		t.Error("unfinished pod's namespace still pinned")
	}
}

// A pod that shares its PID namespace has it held by a pod init: PID 1 of that namespace,
// killed (and the namespace released) at stop; a pod whose init is gone is NOTREADY.
func TestSharedPIDPod(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	c := podConfig("shared")
	c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	r, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := s.pods.get(r.PodSandboxId)
	if !sb.Init.alive() {
		t.Fatalf("pod init %+v is not running", sb.Init)
	}
	pinned := filepath.Join(s.pods.pinPath(sb.ID), "pid")
	var st unix.Stat_t
	unix.Stat(pinned, &st)
	link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", sb.Init.Pid))
	if link != fmt.Sprintf("pid:[%d]", st.Ino) {
		t.Errorf("pinned PID namespace %d is not the init's (%s)", st.Ino, link)
	}
	// In its own namespace the init is PID 1 (NSpid: <host pid> 1).
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", sb.Init.Pid))
	if !regexp.MustCompile(`(?m)^NSpid:\s+\d+\s+1$`).Match(status) {
		t.Errorf("pod init is not PID 1 of its namespace:\n%s", status)
	}
	cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.ID, Config: ctrConfig("c")})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.config(t, cr.ContainerId).Namespaces["pid"]; got != pinned {
		t.Errorf("container pid namespace %q, want the pod's %q", got, pinned)
	}
	ps, _ := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.ID})
	if ps.Status.Linux.Namespaces.Options.Pid != runtimeapi.NamespaceMode_POD {
		t.Errorf("status pid mode %v", ps.Status.Linux.Namespaces.Options.Pid)
	}
	if _, err := s.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "the pod init to exit", func() bool { return !sb.Init.alive() })
	if ents, _ := os.ReadDir(s.pods.pinPath(sb.ID)); len(ents) != 0 {
		t.Errorf("left after stop: %v", ents)
	}

	// A pod whose init was killed from outside is not ready.
	r2, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: func() *runtimeapi.PodSandboxConfig {
		c := podConfig("shared2")
		c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
		return c
	}()})
	if err != nil {
		t.Fatal(err)
	}
	sb2, _ := s.pods.get(r2.PodSandboxId)
	unix.Kill(sb2.Init.Pid, unix.SIGKILL)
	WaitFor(t, "the pod to be NOTREADY", func() bool {
		ps, _ := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb2.ID})
		return ps.Status.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
	if _, err := s.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb2.ID}); err != nil {
		t.Fatal(err)
	}
}

// WaitFor polls cond for up to 10 seconds.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A pod init whose record file was removed by hand is still found, through its pinned PID
// namespace, when an unfinished pod is swept.
func TestPodInitFoundWithoutItsRecord(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	p, err := startPodInit(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill(); unpinNamespaces(dir) })
	os.Remove(filepath.Join(dir, "init.json"))
	found, ok := initOfPinnedPIDNamespace(filepath.Join(dir, "pid"))
	if !ok || found != p {
		t.Fatalf("found %+v %v, want %+v", found, ok, p)
	}
	killPodInitIn(dir)
	WaitFor(t, "the pod init to exit", func() bool { return !p.alive() })
}
