package cri

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCreateContainerTranslates(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	pc := podConfig("web")
	pc.LogDirectory = "/var/log/pods/ns_web_uid"
	r, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ctrConfig("app")
	cfg.Command, cfg.Args = []string{"sh", "-c"}, []string{"echo hi"}
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte("1")}}
	cfg.Labels = map[string]string{"tier": "front"}
	cfg.Annotations = map[string]string{"note": "x"}
	cfg.LogPath = "app/0.log"
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: "/data", ContainerPath: "/etc/hosts", Readonly: true,
		Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
	cfg.Linux = &runtimeapi.LinuxContainerConfig{
		Resources: &runtimeapi.LinuxContainerResources{CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20},
		SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 100},
			SupplementalGroups: []int64{5, 6}},
	}
	cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	cc := e.config(t, cr.ContainerId)
	if !slices.Equal(cc.Entrypoint, []string{"sh", "-c"}) || !slices.Equal(cc.Cmd, []string{"echo hi"}) || !slices.Contains(cc.Env, "A=1") || cc.User != "1000:100" {
		t.Errorf("entrypoint %q cmd %q env %q user %q", cc.Entrypoint, cc.Cmd, cc.Env, cc.User)
	}
	if !slices.Equal(cc.SupplementalGroups, []uint32{5, 6}) {
		t.Errorf("supplemental groups %v", cc.SupplementalGroups)
	}
	if cc.Name != "k8s_app_web_ns_uid-web_0" || cc.Hostname != "web" {
		t.Errorf("name %q hostname %q", cc.Name, cc.Hostname)
	}
	pins := s.pods.pinPath(r.PodSandboxId)
	for k, kind := range map[string]string{"network": "net", "ipc": "ipc", "uts": "uts"} {
		if cc.Namespaces[k] != filepath.Join(pins, kind) {
			t.Errorf("namespace %s = %q, want the pod's pinned one", k, cc.Namespaces[k])
		}
	}
	if _, ok := cc.Namespaces["pid"]; ok {
		t.Errorf("pid namespace %q, want the container's own", cc.Namespaces["pid"])
	}
	if cc.LogPath != "/var/log/pods/ns_web_uid/app/0.log" {
		t.Errorf("log path %q", cc.LogPath)
	}
	if cc.Resources.CPUQuota != 50000 || cc.Resources.MemoryLimit != 64<<20 {
		t.Errorf("resources %+v", cc.Resources)
	}
	// The CRI's /etc/hosts wins; the pod's hostname and resolv.conf fill the rest.
	var targets []string
	for _, m := range cc.Mounts {
		targets = append(targets, m.Target+"<"+m.Source)
	}
	files := s.pods.filesDir(r.PodSandboxId)
	want := []string{"/etc/hosts</data", "/etc/hostname<" + files + "/hostname", "/etc/resolv.conf<" + files + "/resolv.conf"}
	if !slices.Equal(targets, want) {
		t.Errorf("mounts %q, want %q", targets, want)
	}
	// What the kubelet reads back.
	st, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.Metadata.Name != "app" || st.Status.Labels["tier"] != "front" || st.Status.Annotations["note"] != "x" ||
		st.Status.Image.Image != "busybox" || st.Status.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.Status.LogPath != cc.LogPath {
		t.Errorf("status %v", st.Status)
	}
	if _, ok := st.Status.Labels[labelMeta]; ok {
		t.Error("the engine's own label is shown to the kubelet")
	}
	if len(st.Status.Mounts) != 1 || st.Status.Mounts[0].Propagation != runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER || !st.Status.Mounts[0].Readonly {
		t.Errorf("mount status %v", st.Status.Mounts[0])
	}
	if _, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: cfg}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second container with the same metadata: %v, want AlreadyExists", err)
	}
}

func TestCreateContainerRefuses(t *testing.T) {
	s, _, imgs := testServiceImages(t, nil)
	imgs.add(Image{ID: fakeID("c"), RepoTags: []string{"docker.io/library/nocmd:latest"}})
	pc := podConfig("web")
	pc.LogDirectory = "/var/log/pods/x"
	r, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: pc})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*runtimeapi.ContainerConfig)
		code codes.Code
		want string
	}{
		{"log path escapes", func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../../etc/cron.d/x" }, codes.InvalidArgument, "below the pod's log directory"},
		{"no image", func(c *runtimeapi.ContainerConfig) { c.Image = nil }, codes.InvalidArgument, "no image"},
		{"missing image", func(c *runtimeapi.ContainerConfig) { c.Image.Image = "nginx" }, codes.NotFound, `"nginx"`},
		{"image path", func(c *runtimeapi.ContainerConfig) { c.Image.Image = "../../etc" }, codes.InvalidArgument, `"../../etc"`},
		{"no command", func(c *runtimeapi.ContainerConfig) { c.Command = nil; c.Image.Image = "nocmd" }, codes.InvalidArgument, "no command"},
		{"env name", func(c *runtimeapi.ContainerConfig) { c.Envs = []*runtimeapi.KeyValue{{Key: "A=B"}} }, codes.InvalidArgument, `"A=B"`},
		{"reserved label", func(c *runtimeapi.ContainerConfig) { c.Labels = map[string]string{labelMeta: "{}"} }, codes.InvalidArgument, labelMeta},
		{"relative mount", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "data", ContainerPath: "/d"}}
		}, codes.InvalidArgument, `"data"`},
		{"recursive read-only, writable", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "/data", ContainerPath: "/d", RecursiveReadOnly: true}}
		}, codes.InvalidArgument, "recursive_read_only needs readonly"},
		{"recursive read-only, shared", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "/data", ContainerPath: "/d", Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
		}, codes.InvalidArgument, "needs private propagation"},
		{"recursive read-only, runtime without", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{HostPath: "/data", ContainerPath: "/d", Readonly: true, RecursiveReadOnly: true}}
		}, codes.Unimplemented, `runtime handler "" cannot make recursive read-only mounts`},
		{"writable image volume", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/iv", Image: &runtimeapi.ImageSpec{Image: "busybox"}}}
		}, codes.InvalidArgument, `must be read-only`},
		{"system container value", func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{AnnotationSystemContainer: "yes please"}
		}, codes.InvalidArgument, AnnotationSystemContainer},
		{"host channel by default", func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{AnnotationHostChannelPrefix + "ring": "/srv/ring:/ring:rw:1m"}
		}, codes.PermissionDenied, `annotation "io.isulad.host-channel.ring": host channels through the CRI are refused: no daemon.json "cri-host-channel-roots" is set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ctrConfig("c")
			tc.mod(c)
			_, err := s.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: c})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v; want %v naming %q on one line", err, tc.code, tc.want)
			}
		})
	}
	if n := len(s.engine.(*fakeEngine).ctrs); n != 0 {
		t.Errorf("%d containers created by refused requests", n)
	}
}

func TestHostChannelAnnotations(t *testing.T) {
	root := t.TempDir()
	s, e := testService(t, func(c *Config) { c.HostChannelRoots = []string{root} })
	id := runPod(t, s, "ring")
	create := func(name string, ann map[string]string) (string, error) {
		c := ctrConfig(name)
		c.Annotations = ann
		r, err := s.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: id, Config: c})
		if err != nil {
			return "", err
		}
		return r.ContainerId, nil
	}
	_, err := create("out", map[string]string{AnnotationHostChannelPrefix + "a": "/srv/ring:/ring:rw:1m"})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"/srv/ring"`) || !strings.Contains(err.Error(), "cri-host-channel-roots") {
		t.Errorf("channel outside the roots: %v", err)
	}
	_, err = create("dotdot", map[string]string{AnnotationHostChannelPrefix + "a": root + "/../etc:/ring"})
	if err == nil {
		t.Error("a channel that climbs out of the root with .. was accepted")
	}
	cid, err := create("in", map[string]string{AnnotationHostChannelPrefix + "b": root + "/b:/b:ro:2m",
		AnnotationHostChannelPrefix + "a": root + "/a:/a", AnnotationSystemContainer: "true"})
	if err != nil {
		t.Fatal(err)
	}
	cc := e.config(t, cid)
	if len(cc.HostChannels) != 2 || cc.HostChannels[0].PathOnHost != root+"/a" || cc.HostChannels[1].Size != 2<<20 ||
		cc.HostChannels[1].Permissions != "ro" || !cc.SystemContainer {
		t.Errorf("channels %+v system %v", cc.HostChannels, cc.SystemContainer)
	}
	// The pod's channels together against half of the node's memory: 64m (the default size)
	// + 2m are there; 64m more on a node of 256m is refused.
	e.memTotal = 256 << 20
	if _, err := create("more", map[string]string{AnnotationHostChannelPrefix + "c": root + "/c:/c:rw:64m"}); err == nil || !strings.Contains(err.Error(), "half of the node's memory") {
		t.Errorf("pod over half of memory: %v", err)
	}
	if _, err := create("fits", map[string]string{AnnotationHostChannelPrefix + "c": root + "/c:/c:rw:1m"}); err != nil {
		t.Errorf("pod under half of memory: %v", err)
	}
}

func TestContainerStopRemoveIdempotent(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	id := runPod(t, s, "p")
	cr, _ := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: id, Config: ctrConfig("c")})
	if _, err := s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("second start: %v, want FailedPrecondition", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cr.ContainerId, Timeout: 3}); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
	if !slices.Contains(e.calls, "stop "+cr.ContainerId[60:]+" 3s") {
		t.Errorf("the grace period did not reach the engine: %q", e.calls)
	}
	st, _ := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Status.ExitCode != 137 || st.Status.Reason != "Error" {
		t.Errorf("status after stop: %v", st.Status)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if _, err := s.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Errorf("stop of a removed container: %v", err)
	}
}

func TestListContainersFilters(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	p1, p2 := runPod(t, s, "a"), runPod(t, s, "b")
	c1, _ := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p1, Config: ctrConfig("x")})
	c2, _ := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p2, Config: ctrConfig("y")})
	s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c2.ContainerId})
	// An engine container made with isula, not through the CRI, is not the kubelet's.
	e.CreateContainer(ctx, ContainerConfig{Name: "mine", Labels: map[string]string{"app": "a"}})
	count := func(f *runtimeapi.ContainerFilter) int {
		r, err := s.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Containers)
	}
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	for name, tc := range map[string]struct {
		f    *runtimeapi.ContainerFilter
		want int
	}{
		"all":     {nil, 2},
		"pod":     {&runtimeapi.ContainerFilter{PodSandboxId: p1[:10]}, 1},
		"id":      {&runtimeapi.ContainerFilter{Id: c1.ContainerId}, 1},
		"running": {&runtimeapi.ContainerFilter{State: running}, 1},
		"label":   {&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "a"}}, 0},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("%s: %d containers, want %d", name, got, tc.want)
		}
	}
	if _, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: strings.Repeat("0", 63) + "3"}); status.Code(err) != codes.NotFound {
		t.Errorf("status of an isula container through the CRI: %v, want NotFound", err)
	}
	stats, _ := s.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if len(stats.Stats) != 1 || stats.Stats[0].Attributes.Id != c2.ContainerId || stats.Stats[0].Memory.WorkingSetBytes.Value != 4096 {
		t.Errorf("stats %v", stats.Stats)
	}
}

func TestExecSync(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	id := runPod(t, s, "p")
	cr, _ := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: id, Config: ctrConfig("c")})
	if _, err := s.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cr.ContainerId, Cmd: []string{"true"}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("exec in a created container: %v, want FailedPrecondition", err)
	}
	s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId})
	e.execOut, e.execCode = "hello\n", 3
	r, err := s.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cr.ContainerId, Cmd: []string{"sh", "-c", "x"}})
	if err != nil || string(r.Stdout) != "hello\n" || r.ExitCode != 3 {
		t.Fatalf("ExecSync = %v, %v", r, err)
	}
	e.execBlock = true
	start := time.Now()
	_, err = s.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cr.ContainerId, Cmd: []string{"sleep", "9"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 5*time.Second {
		t.Errorf("ExecSync past its timeout: %v after %s, want DeadlineExceeded after 1s", err, time.Since(start))
	}
}

func TestBoundedBuffer(t *testing.T) {
	b := &boundedBuffer{max: 4}
	b.Write([]byte("abc"))
	n, _ := b.Write([]byte("defg"))
	if b.String() != "abcd" || n != 4 {
		t.Errorf("kept %q, reported %d", b.String(), n)
	}
}

func TestEngineNameBounded(t *testing.T) {
	sb := &sandbox{Name: strings.Repeat("p", 200), Namespace: "ns", UID: "u"}
	a, b := engineName(strings.Repeat("a", 100), sb, 0), engineName(strings.Repeat("a", 100), sb, 1)
	if len(a) > maxEngineName || a == b || !strings.HasPrefix(a, "k8s_aaa") {
		t.Errorf("names %q (%d) and %q", a, len(a), b)
	}
	if n := engineName("c", &sandbox{Name: "p", Namespace: "ns", UID: "u"}, 2); n != "k8s_c_p_ns_u_2" {
		t.Errorf("short name %q", n)
	}
}

func TestSeccompOf(t *testing.T) {
	for _, tc := range []struct {
		p    *runtimeapi.SecurityProfile
		want string
		bad  bool
	}{
		{nil, "unconfined", false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, "", false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "unconfined", false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/var/lib/kubelet/seccomp/p.json"}, "/var/lib/kubelet/seccomp/p.json", false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p.json"}, "", true},
	} {
		got, err := seccompOf(tc.p)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("seccompOf(%v) = %q, %v", tc.p, got, err)
		}
	}
}

// The kubelet passes a pod's annotations only to RunPodSandbox: ones scoped to a container
// reach that container.
func TestPodAnnotationsScopedToAContainer(t *testing.T) {
	root := t.TempDir()
	s, e := testService(t, func(c *Config) { c.HostChannelRoots = []string{root} })
	pc := podConfig("ring")
	pc.Annotations = map[string]string{
		"io.isulad.container.sys.system-container":  "true",
		"io.isulad.container.sys.host-channel.ring": root + "/ring:/ring:rw:1m",
		"io.isulad.container.other.host-channel.x":  root + "/x:/x",
	}
	r, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: pc})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := s.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: ctrConfig("sys")})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: ctrConfig("plain")})
	if err != nil {
		t.Fatal(err)
	}
	if cc := e.config(t, sys.ContainerId); !cc.SystemContainer || len(cc.HostChannels) != 1 || cc.HostChannels[0].PathOnHost != root+"/ring" {
		t.Errorf("container sys: system %v channels %+v", cc.SystemContainer, cc.HostChannels)
	}
	if cc := e.config(t, plain.ContainerId); cc.SystemContainer || len(cc.HostChannels) != 0 {
		t.Errorf("container plain got another's annotations: %v %+v", cc.SystemContainer, cc.HostChannels)
	}
}

func TestRecursiveReadOnlyMount(t *testing.T) {
	s, e := testService(t, func(c *Config) { c.RecursiveReadOnly = []string{"runc"} })
	ctx := context.Background()
	st, err := s.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"": true, "runc": true, "crun": false}
	for _, h := range st.RuntimeHandlers {
		if h.Features.RecursiveReadOnlyMounts != want[h.Name] {
			t.Errorf("handler %q: recursive_read_only_mounts %v", h.Name, h.Features.RecursiveReadOnlyMounts)
		}
	}
	pod := runPod(t, s, "rro")
	cfg := ctrConfig("c")
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: "/data", ContainerPath: "/d", Readonly: true, RecursiveReadOnly: true}}
	cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podConfig("rro")})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range e.config(t, cr.ContainerId).Mounts {
		if m.Target == "/d" {
			found = m.ReadOnly && m.RecursiveReadOnly
		}
	}
	if !found {
		t.Errorf("mounts %+v: want /d recursively read-only", e.config(t, cr.ContainerId).Mounts)
	}
}

func TestSupplementalGroupsPolicy(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	st, err := s.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || !st.Features.GetSupplementalGroupsPolicy() {
		t.Fatalf("status features %v, %v: want supplemental_groups_policy", st.GetFeatures(), err)
	}
	pod := runPod(t, s, "groups")
	for _, policy := range []runtimeapi.SupplementalGroupsPolicy{runtimeapi.SupplementalGroupsPolicy_Merge, runtimeapi.SupplementalGroupsPolicy_Strict} {
		cfg := ctrConfig("c-" + strings.ToLower(policy.String()))
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 1000}, SupplementalGroups: []int64{1234}, SupplementalGroupsPolicy: policy}}
		cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podConfig("groups")})
		if err != nil {
			t.Fatal(err)
		}
		if cc := e.config(t, cr.ContainerId); cc.SupplementalGroupsStrict != (policy == runtimeapi.SupplementalGroupsPolicy_Strict) ||
			!slices.Equal(cc.SupplementalGroups, []uint32{1234}) {
			t.Errorf("%v: strict %v groups %v", policy, cc.SupplementalGroupsStrict, cc.SupplementalGroups)
		}
		// The status reports the process's identity as the engine knows it.
		e.mu.Lock()
		e.ctrs[cr.ContainerId].state.User = &User{UID: 1000, GID: 1000, Groups: []uint32{1000, 1234}}
		e.mu.Unlock()
		cs, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
		if err != nil {
			t.Fatal(err)
		}
		if u := cs.Status.GetUser().GetLinux(); u.GetUid() != 1000 || u.GetGid() != 1000 || !slices.Equal(u.GetSupplementalGroups(), []int64{1000, 1234}) {
			t.Errorf("%v: status user %v", policy, cs.Status.GetUser())
		}
	}
}

func TestRestartHandsHostChannelsOver(t *testing.T) {
	root := t.TempDir()
	s, e := testService(t, func(c *Config) { c.HostChannelRoots = []string{root} })
	ctx := context.Background()
	pc := podConfig("ring")
	pc.Annotations = map[string]string{"io.isulad.container.sys.host-channel.ring": root + "/ring:/ring:rw:1m"}
	r, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pc})
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, attempt uint32) string {
		t.Helper()
		c := ctrConfig(name)
		c.Metadata.Attempt = attempt
		cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, Config: c})
		if err != nil {
			t.Fatalf("create %s attempt %d: %v", name, attempt, err)
		}
		return cr.ContainerId
	}
	gone := func(id string) bool { _, err := e.Container(id); return err != nil }
	plain := create("plain", 0) // no channel: never removed
	first := create("sys", 0)
	s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: first})
	s.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: plain})
	s.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: plain})

	// Attempt 0 still runs: attempt 1 does not remove it.
	second := create("sys", 1)
	if gone(first) {
		t.Fatal("a running earlier attempt was removed")
	}
	if _, err := s.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: second}); err != nil {
		t.Fatal(err)
	}
	// Attempt 0 exited: attempt 2 takes its channel, attempt 0 is removed, plain stays.
	s.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: first})
	third := create("sys", 2)
	if !gone(first) || gone(third) || gone(plain) {
		t.Errorf("after attempt 2: attempt 0 gone %v, attempt 2 gone %v, plain gone %v", gone(first), gone(third), gone(plain))
	}
	if cc := e.config(t, third); len(cc.HostChannels) != 1 || cc.HostChannels[0].PathOnHost != root+"/ring" {
		t.Errorf("attempt 2's channels %+v", cc.HostChannels)
	}
}
