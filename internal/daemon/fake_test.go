package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/shim"
)

// fakeWorld stands in for the shims and the OCI runtime behind the daemon's Runtime and
// Shims interfaces: a shim "process" per socket, a container "process" per started shim.
// It outlives a Daemon, so a second Daemon on the same directories sees what the first left
// running, as after a daemon restart.
type fakeWorld struct {
	mu      sync.Mutex
	procs   map[string]*fakeProc // by socket
	calls   []string
	nextPid int

	// Faults: the next Delete fails with deleteErr; Start fails with startErr; a Start
	// waits for startGate (if set) and reports startEntered when it begins.
	deleteErr    error
	startErr     error
	startGate    chan struct{}
	startEntered chan struct{}
}

// fakeProc is one shim with its container.
type fakeProc struct {
	cfg      shim.Config
	pid      int
	started  bool
	shutdown bool
	exited   bool
	es       shim.ExitStatus
	done     chan struct{} // closed at exit
}

func newFakeWorld() *fakeWorld { return &fakeWorld{procs: map[string]*fakeProc{}, nextPid: 1000} }

func (w *fakeWorld) record(format string, a ...any) {
	w.calls = append(w.calls, fmt.Sprintf(format, a...))
}

// Calls returns the calls seen so far whose text starts with prefix.
func (w *fakeWorld) Calls(prefix string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (w *fakeWorld) byID(id string) *fakeProc {
	for _, p := range w.procs {
		if p.cfg.ID == id && !p.shutdown {
			return p
		}
	}
	return nil
}

// exitLocked ends the container of p with code.
func (w *fakeWorld) exitLocked(p *fakeProc, code int) {
	if p.exited || !p.started {
		return
	}
	p.exited = true
	p.es = shim.ExitStatus{Code: code, ExitedAt: time.Now()}
	close(p.done)
}

// Exit makes container id exit with code, as if its process ended.
func (w *fakeWorld) Exit(id string, code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.byID(id); p != nil {
		w.exitLocked(p, code)
	}
}

// Crash makes the shim of id vanish without a word (its container keeps its pid).
func (w *fakeWorld) Crash(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for sock, p := range w.procs {
		if p.cfg.ID == id {
			p.shutdown = true
			delete(w.procs, sock)
		}
	}
}

func (w *fakeWorld) Launch(ctx context.Context, cfg shim.Config) (Shim, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("launch %s", cfg.ID)
	p := &fakeProc{cfg: cfg, done: make(chan struct{})}
	w.procs[cfg.Socket] = p
	return &fakeConn{w: w, p: p, closed: make(chan struct{})}, nil
}

func (w *fakeWorld) Connect(ctx context.Context, socket string) (Shim, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.procs[socket]
	if p == nil || p.shutdown {
		return nil, fmt.Errorf("connect %s: %w", socket, syscall.ECONNREFUSED)
	}
	return &fakeConn{w: w, p: p, closed: make(chan struct{})}, nil
}

func (w *fakeWorld) newRuntime(binary, root string) Runtime { return fakeRuntime{w: w, root: root} }

// fakeConn is one daemon-side connection to a fake shim.
type fakeConn struct {
	w         *fakeWorld
	p         *fakeProc
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *fakeConn) Start(ctx context.Context) (int, error) {
	c.w.mu.Lock()
	gate, entered, startErr := c.w.startGate, c.w.startEntered, c.w.startErr
	c.w.mu.Unlock()
	if entered != nil {
		close(entered)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if startErr != nil {
		return 0, startErr
	}
	if c.p.shutdown {
		return 0, errors.New("shim is shut down")
	}
	c.w.nextPid++
	c.p.pid, c.p.started = c.w.nextPid, true
	c.w.record("start %s", c.p.cfg.ID)
	return c.p.pid, nil
}

func (c *fakeConn) Pid() (int, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if !c.p.started || c.p.exited {
		return 0, nil
	}
	return c.p.pid, nil
}

func (c *fakeConn) Wait(ctx context.Context) (shim.ExitStatus, error) {
	select {
	case <-c.p.done:
		c.w.mu.Lock()
		defer c.w.mu.Unlock()
		return c.p.es, nil
	case <-c.closed:
		return shim.ExitStatus{}, shim.ErrClientClosed
	case <-ctx.Done():
		return shim.ExitStatus{}, ctx.Err()
	}
}

// Kill is the shim's kill: what the runtime's kill does, recorded the same way.
func (c *fakeConn) Kill(ctx context.Context, signal int, all bool) error {
	return fakeRuntime{w: c.w}.Kill(ctx, c.p.cfg.ID, syscall.Signal(signal), all)
}

func (c *fakeConn) Resize(ctx context.Context, width, height uint16) error { return nil }

func (c *fakeConn) ReopenLog(ctx context.Context) error { return nil }

func (c *fakeConn) Attach(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	<-c.p.done
	return nil
}

func (c *fakeConn) AttachStream(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (func() error, error) {
	return func() error { <-c.p.done; return nil }, nil
}

func (c *fakeConn) AttachStart(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, func() error, error) {
	wait, _ := c.AttachStream(ctx, stdin, stdout, stderr)
	pid, err := c.Start(ctx)
	if err != nil {
		return 0, nil, err
	}
	return pid, wait, nil
}

// WaitFinal is Wait, then the shim goes as a real one does after a final wait; it does not
// delete the runtime's state (cleaned false), so the daemon's cleanup still runs.
func (c *fakeConn) WaitFinal(ctx context.Context) (shim.ExitStatus, bool, error) {
	es, err := c.Wait(ctx)
	if err == nil {
		c.Shutdown(ctx)
	}
	return es, false, err
}

func (c *fakeConn) Exec(ctx context.Context, execID string, proc *specs.Process, stdin io.Reader, stdout, stderr io.Writer, resize <-chan [2]uint16, opts shim.ExecOptions) (int, error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.w.record("exec %s %s", c.p.cfg.ID, strings.Join(proc.Args, " "))
	return 0, nil
}

func (c *fakeConn) Shutdown(ctx context.Context) error {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.w.record("shutdown %s", c.p.cfg.ID)
	if c.p.started && !c.p.exited {
		return errors.New("shim: the container is running")
	}
	c.p.shutdown = true
	delete(c.w.procs, c.p.cfg.Socket)
	return nil
}

// PeerPidFD: a fake shim is no process.
func (c *fakeConn) PeerPidFD(ctx context.Context) (int, error) {
	return -1, errors.New("fake shim: no process")
}

func (c *fakeConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// fakeRuntime answers the daemon's runtime calls from the fake world.
type fakeRuntime struct {
	w    *fakeWorld
	root string
}

func (r fakeRuntime) Binary() string { return "/fake/runtime" }
func (r fakeRuntime) Root() string   { return r.root }

func (r fakeRuntime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.record("kill %s %d", id, sig)
	p := r.w.byID(id)
	if p == nil || !p.started || p.exited {
		return fmt.Errorf("container %s does not exist", id)
	}
	r.w.exitLocked(p, 128+int(sig))
	return nil
}

func (r fakeRuntime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.record("update %s", id)
	return nil
}

func (r fakeRuntime) Pause(ctx context.Context, id string) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.record("pause %s", id)
	return nil
}

func (r fakeRuntime) Resume(ctx context.Context, id string) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.record("resume %s", id)
	return nil
}

func (r fakeRuntime) Ps(ctx context.Context, id string) ([]int, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if p := r.w.byID(id); p != nil && p.started && !p.exited {
		return []int{p.pid}, nil
	}
	return nil, fmt.Errorf("container %s does not exist", id)
}

func (r fakeRuntime) Delete(ctx context.Context, id, cgroupsPath string) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.record("delete %s %s", id, cgroupsPath)
	if err := r.w.deleteErr; err != nil {
		r.w.deleteErr = nil
		return err
	}
	return nil
}

// fakeDaemon is a daemon on temporary directories with the fake world behind it.
type fakeDaemon struct {
	*Daemon
	t      *testing.T
	w      *fakeWorld
	cfg    Config
	rootfs string
}

func testConfig(t *testing.T) Config {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Graph, cfg.State = filepath.Join(dir, "graph"), filepath.Join(dir, "state")
	cfg.Runtimes = map[string]RuntimeConfig{"fake": {Path: "/fake/runtime"}}
	cfg.DefaultRuntime = "fake"
	cfg.ShimPath = "/fake/shim"
	return cfg
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{t: t, w: newFakeWorld(), cfg: testConfig(t), rootfs: t.TempDir()}
	f.restart()
	return f
}

// restart lets go of the current Daemon (its containers keep running in the fake world)
// and opens a new one on the same directories.
func (f *fakeDaemon) restart() {
	f.t.Helper()
	if f.Daemon != nil {
		f.Daemon.Close()
		f.bg.Wait()
	}
	d, err := newDaemon(f.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), f.w, f.w.newRuntime)
	if err != nil {
		f.t.Fatal(err)
	}
	f.Daemon = d
	f.t.Cleanup(func() { d.Close(); d.bg.Wait() })
}

func (f *fakeDaemon) create(name string, mod func(*types.CreateRequest)) *container.Container {
	f.t.Helper()
	req := &types.CreateRequest{Name: name}
	req.Config.Image = "none"
	req.Config.Cmd = []string{"/bin/sh"}
	req.HostConfig.ExternalRootfs = f.rootfs
	if mod != nil {
		mod(req)
	}
	c, _, err := f.Create(context.Background(), req)
	if err != nil {
		f.t.Fatalf("create %s: %v", name, err)
	}
	return c
}

func (f *fakeDaemon) run(name string, mod func(*types.CreateRequest)) *container.Container {
	f.t.Helper()
	c := f.create(name, mod)
	if err := f.Start(context.Background(), c, nil); err != nil {
		f.t.Fatalf("start %s: %v", name, err)
	}
	return c
}

// waitStatus waits until c has status want.
func waitStatus(t *testing.T, c *container.Container, want container.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Status() != want {
		if time.Now().After(deadline) {
			t.Fatalf("container %s: status %s, want %s", c.Name, c.Status(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitDone waits for what follows the exit of the current run (restart, --rm) to finish.
func waitDone(t *testing.T, c *container.Container) {
	t.Helper()
	run := c.CurrentRun()
	if run == nil {
		t.Fatalf("container %s has no run", c.Name)
	}
	select {
	case <-run.Done:
	case <-time.After(10 * time.Second):
		t.Fatalf("container %s: the exit handling did not finish", c.Name)
	}
}
