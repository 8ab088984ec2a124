package cri

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// fakeEngine is the daemon as the CRI sees it, in memory: it checks the CRI's translation,
// not the engine (test/integration/cri_test.go drives the real one).
type fakeEngine struct {
	mu       sync.Mutex
	n        int
	ctrs     map[string]*fakeContainer
	memTotal int64
	// exec answers an exec: output to write and the exit code; block makes it wait for ctx.
	execOut   string
	execCode  int
	execBlock bool
	calls     []string
}

type fakeContainer struct {
	cfg   ContainerConfig
	state ContainerState
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{ctrs: map[string]*fakeContainer{}, memTotal: 8 << 30}
}

func (f *fakeEngine) record(s string) {
	f.calls = append(f.calls, s)
}

func (f *fakeEngine) CreateContainer(ctx context.Context, c ContainerConfig) (string, []string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.ctrs {
		if x.cfg.Name == c.Name {
			return "", nil, errdefs.Errorf(errdefs.ErrAlreadyExists, "name %q is in use", c.Name)
		}
	}
	f.n++
	id := fmt.Sprintf("%064d", f.n)
	logPath := c.LogPath
	if logPath == "" {
		logPath = "/engine/" + id + "-cri.log"
	}
	f.ctrs[id] = &fakeContainer{cfg: c, state: ContainerState{ID: id, Name: c.Name, Labels: c.Labels, Status: "created",
		Created: time.Now(), LogPath: logPath, Mounts: c.Mounts, Resources: c.Resources, Args: c.Args}}
	f.record("create " + c.Name)
	return id, nil, nil
}

func (f *fakeEngine) get(id string) (*fakeContainer, error) {
	if c, ok := f.ctrs[id]; ok {
		return c, nil
	}
	return nil, errdefs.Errorf(errdefs.ErrNotFound, "no such container: %s", id)
}

func (f *fakeEngine) StartContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	c.state.Status, c.state.StartedAt, c.state.Pid = "running", time.Now(), 42
	f.record("start " + id[60:])
	return nil
}

func (f *fakeEngine) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.state.Status == "running" {
		c.state.Status, c.state.FinishedAt, c.state.ExitCode = "exited", time.Now(), 137
	}
	f.record(fmt.Sprintf("stop %s %s", id[60:], timeout))
	return nil
}

func (f *fakeEngine) RemoveContainer(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(id); err != nil {
		return err
	}
	delete(f.ctrs, id)
	f.record("remove " + id[60:])
	return nil
}

func (f *fakeEngine) Container(id string) (ContainerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for cid, c := range f.ctrs {
		if strings.HasPrefix(cid, id) && id != "" {
			return c.state, nil
		}
	}
	return ContainerState{}, errdefs.Errorf(errdefs.ErrNotFound, "no such container: %s", id)
}

func (f *fakeEngine) Containers(label string) []ContainerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ContainerState
	for _, c := range f.ctrs {
		if _, ok := c.state.Labels[label]; ok {
			out = append(out, c.state)
		}
	}
	return out
}

func (f *fakeEngine) Exec(ctx context.Context, id string, p ExecProcess) (int, error) {
	f.mu.Lock()
	out, code, block := f.execOut, f.execCode, f.execBlock
	f.record("exec " + strings.Join(p.Args, " "))
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	if p.Streams.Stdout != nil {
		io.WriteString(p.Streams.Stdout, out)
	}
	return code, nil
}

func (f *fakeEngine) Attach(ctx context.Context, id string, s Streams) error { return nil }

func (f *fakeEngine) UpdateResources(ctx context.Context, id string, r Resources) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(id)
	if err != nil {
		return err
	}
	c.state.Resources = r
	return nil
}

func (f *fakeEngine) Stats(id string) (ContainerStats, error) {
	return ContainerStats{Timestamp: time.Now(), CPUUsageNanos: 1000, MemoryWorkingSet: 4096, MemoryUsage: 8192}, nil
}

func (f *fakeEngine) ReopenLog(ctx context.Context, id string) error { return nil }
func (f *fakeEngine) MemTotal() int64                                { return f.memTotal }

func (f *fakeEngine) config(t *testing.T, id string) ContainerConfig {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.ctrs[id]
	if !ok {
		t.Fatalf("no container %s", id)
	}
	return c.cfg
}

// testService is a Service over a fake engine and a stand-in image directory with busybox
// (an empty tree: nothing runs).
func testService(t *testing.T, mod func(*Config)) (*Service, *fakeEngine) {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	os.MkdirAll(filepath.Join(imgs, "busybox"), 0o755)
	cfg := Config{GraphDir: filepath.Join(dir, "graph"), StateDir: filepath.Join(dir, "state"), RuntimeName: "isulad",
		RuntimeHandlers: []string{"runc", "crun"}, DefaultRuntime: "runc"}
	if mod != nil {
		mod(&cfg)
	}
	e := newFakeEngine()
	s, err := New(cfg, e, DirImages{Dir: imgs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stream.close()
		// Pods left by a test: their namespaces are unpinned.
		for _, sb := range s.pods.list() {
			s.pods.delete(sb)
		}
	})
	return s, e
}

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns", Uid: "uid-" + name},
		Hostname: name, Labels: map[string]string{"app": name},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}},
	}
}

func runPod(t *testing.T, s *Service, name string) string {
	t.Helper()
	r, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: podConfig(name)})
	if err != nil {
		t.Fatal(err)
	}
	return r.PodSandboxId
}

func ctrConfig(name string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image: &runtimeapi.ImageSpec{Image: "busybox"}, Command: []string{"sleep", "1000"}}
}
