package cri

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/reference"
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
		Created: time.Now(), LogPath: logPath, Mounts: c.Mounts, Resources: c.Resources,
		Args: append(slices.Clone(c.Entrypoint), c.Cmd...), Image: c.Image}}
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

// fakeImages is the image store as the CRI sees it, in memory: images by ID with their
// names, what "the registry" has for Pull, and the engine's containers for Remove.
type fakeImages struct {
	mu       sync.Mutex
	engine   *fakeEngine
	store    map[string]Image // by ID
	registry map[string]Image // by full name, what Pull finds
	pulls    []string
	auths    []*PullAuth
}

// fakeID is an image ID made of one repeated hex digit.
func fakeID(c string) string { return "sha256:" + strings.Repeat(c, 64) }

func newFakeImages(e *fakeEngine) *fakeImages {
	return &fakeImages{engine: e, store: map[string]Image{}, registry: map[string]Image{}}
}

func (f *fakeImages) add(img Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store[img.ID] = img
}

// find is the store's lookup: a full or prefix ID, a name in any docker form, repo@digest.
func (f *fakeImages) find(ref string) (Image, error) {
	if reference.IsID(ref) {
		h := strings.TrimPrefix(ref, "sha256:")
		for id, img := range f.store {
			if strings.HasPrefix(id[7:], h) {
				return img, nil
			}
		}
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return Image{}, err
	}
	for _, img := range f.store {
		if slices.Contains(img.RepoTags, r.TagString()) || slices.Contains(img.RepoDigests, r.DigestString()) {
			return img, nil
		}
	}
	return Image{}, errdefs.Errorf(errdefs.ErrNotFound, "no such image: %s", ref)
}

func (f *fakeImages) Resolve(ctx context.Context, ref string) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.find(ref)
}

func (f *fakeImages) List(ctx context.Context) ([]Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Image
	for _, img := range f.store {
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeImages) Pull(ctx context.Context, ref string, auth *PullAuth) (Image, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return Image{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ref)
	f.auths = append(f.auths, auth)
	img, ok := f.registry[r.String()]
	if !ok {
		return Image{}, errdefs.Errorf(errdefs.ErrNotFound, "pull %s: not found in the registry", ref)
	}
	if prev, ok := f.store[img.ID]; ok {
		img.RepoTags = append(prev.RepoTags, img.RepoTags...)
	}
	f.store[img.ID] = img
	return img, nil
}

func (f *fakeImages) Remove(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.find(ref)
	if err != nil {
		return err
	}
	f.engine.mu.Lock()
	defer f.engine.mu.Unlock()
	for _, c := range f.engine.ctrs {
		if c.cfg.ImageID == img.ID {
			return errdefs.Errorf(errdefs.ErrConflict, "image %s is used by container %s", ref, c.cfg.Name)
		}
	}
	delete(f.store, img.ID)
	return nil
}

func (f *fakeImages) FsInfo(ctx context.Context) (ImageFsUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := ImageFsUsage{Mountpoint: "/graph/images"}
	for _, img := range f.store {
		u.UsedBytes += img.Size
		u.InodesUsed += 10
	}
	return u, nil
}

// testBusybox is the fake store's busybox: sh as its Cmd, a PATH, no user.
var testBusybox = Image{ID: fakeID("b"), RepoTags: []string{"docker.io/library/busybox:latest"},
	RepoDigests: []string{"docker.io/library/busybox@" + fakeID("d")}, Size: 4 << 20,
	Cmd: []string{"sh"}, Env: []string{"PATH=/usr/bin:/bin"}}

// testService is a Service over a fake engine and a fake image store with busybox.
func testService(t *testing.T, mod func(*Config)) (*Service, *fakeEngine) {
	s, e, _ := testServiceImages(t, mod)
	return s, e
}

func testServiceImages(t *testing.T, mod func(*Config)) (*Service, *fakeEngine, *fakeImages) {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	cfg := Config{GraphDir: filepath.Join(dir, "graph"), StateDir: filepath.Join(dir, "state"), RuntimeName: "isulad",
		RuntimeHandlers: []string{"runc", "crun"}, DefaultRuntime: "runc"}
	if mod != nil {
		mod(&cfg)
	}
	e := newFakeEngine()
	imgs := newFakeImages(e)
	imgs.add(testBusybox)
	s, err := New(cfg, e, imgs, nil)
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
	return s, e, imgs
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
