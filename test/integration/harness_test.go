// Package integration runs the real binaries: a private isulad (own --graph, --state and
// socket under a temp directory) driving runc/crun, and isula against it. Every test cleans
// up after itself; TestMain checks nothing is left on the host.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/testenv"
)

var (
	binDir      string // built isula, isulad, isulad-shim
	busyboxRoot string // shared busybox rootfs (read-only use)
	repoRoot    string
	// missing says what this machine lacks for every test here (root, runc); each test
	// then skips with it when it asks for the daemon or a rootfs (requireEnv).
	missing string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		missing = "the integration tests need root"
	} else if _, err := exec.LookPath("runc"); err != nil {
		missing = "the integration tests need runc on PATH: " + err.Error()
	}
	if missing != "" {
		if testenv.InCI() {
			fmt.Printf("FAIL: CI is set and %s\n", missing)
			os.Exit(1)
		}
		fmt.Printf("%s: every test skips\n", missing)
		os.Exit(m.Run())
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	tmp, err := os.MkdirTemp("", "isulad-it-")
	if err != nil {
		panic(err)
	}
	os.Chmod(tmp, 0o755) // the client is also run as an unprivileged user
	binDir = filepath.Join(tmp, "bin")
	// isula is the light front; what it does not serve it execs isula-full, beside it.
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/isula-full", "./cmd/isulad", "./cmd/isulad-shim", "./cmd/isula-ring")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("build failed: %v\n%s", err, out)
		os.Exit(1)
	}
	// The front is C (cmd/isula/isula.c), built as make build builds it.
	if out, err := exec.Command(filepath.Join(repoRoot, "scripts", "build-front.sh"), filepath.Join(binDir, "isula")).CombinedOutput(); err != nil {
		fmt.Printf("build of the front failed: %v\n%s", err, out)
		os.Exit(1)
	}
	// The light shim, beside isulad-shim as make build puts it: the daemon adopts it for
	// detached starts (internal/shim.Spares).
	if out, err := exec.Command(filepath.Join(repoRoot, "scripts", "build-shim-lite.sh"), filepath.Join(binDir, "isulad-shim-lite")).CombinedOutput(); err != nil {
		fmt.Printf("build of the light shim failed: %v\n%s", err, out)
		os.Exit(1)
	}
	busyboxRoot = filepath.Join(tmp, "busybox")
	if out, err := exec.Command(filepath.Join(repoRoot, "scripts", "mkrootfs.sh"), "busybox", busyboxRoot).CombinedOutput(); err != nil {
		fmt.Printf("mkrootfs busybox failed: %v\n%s", err, out)
		os.Exit(1)
	}
	// The engine's default cgroup parent (/isulad) is made by the runtime in every
	// hierarchy; runc deletes the containers' cgroups, not the parent. Remove the parents
	// this run made, once they are empty.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/isulad")
	had := map[string]bool{}
	for _, p := range parents {
		had[p] = true
	}
	chains := cniChains()
	code := m.Run()
	removeCNIChains(chains)
	parents, _ = filepath.Glob("/sys/fs/cgroup/*/isulad")
	for _, p := range parents {
		if !had[p] {
			if err := os.Remove(p); err != nil {
				fmt.Printf("cgroup parent %s left: %v\n", p, err)
			}
		}
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

// Daemon is a private isulad for one test.
type Daemon struct {
	t        testing.TB
	Dir      string
	Graph    string
	State    string
	Sock     string
	cmd      *exec.Cmd
	logBuf   *syncBuffer
	exited   chan struct{}
	extraEnv []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requireEnv skips the test (with the reason) when the machine cannot run these tests;
// under CI, TestMain has already failed. StartDaemon and the rootfs helpers call it, so
// every test does before it touches the host.
func requireEnv(t testing.TB) {
	t.Helper()
	if missing != "" {
		testenv.Missing(t, "%s", missing)
	}
}

// StartDaemon starts a private daemon; it is stopped and every container removed at the
// end of the test.
func StartDaemon(t testing.TB, env ...string) *Daemon {
	t.Helper()
	requireEnv(t)
	dir, err := os.MkdirTemp("", "isulad-d-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, Dir: dir, Graph: filepath.Join(dir, "graph"), State: filepath.Join(dir, "state"),
		Sock: filepath.Join(dir, "isulad.sock"), extraEnv: env}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Cleanup)
	d.Start()
	return d
}

// Start (re)starts the daemon process.
func (d *Daemon) Start() {
	d.t.Helper()
	d.logBuf = &syncBuffer{}
	d.cmd = exec.Command(filepath.Join(binDir, "isulad"), "--graph", d.Graph, "--state", d.State,
		"-H", "unix://"+d.Sock, "--config-file", filepath.Join(d.Dir, "daemon.json"), "--log-level", "debug")
	d.cmd.Env = append(os.Environ(), d.extraEnv...)
	d.cmd.Stdout = d.logBuf
	d.cmd.Stderr = d.logBuf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(d.cmd, d.exited)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r := d.Isula("version"); r.Code == 0 {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("isulad exited at start:\n%s", d.logBuf.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.t.Fatalf("isulad did not come up:\n%s", d.logBuf.String())
}

// Kill SIGKILLs the daemon (containers must survive).
func (d *Daemon) Kill() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// Stop stops the daemon cleanly.
func (d *Daemon) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
	}
}

// Log is the daemon's output so far.
func (d *Daemon) Log() string { return d.logBuf.String() }

// Cleanup removes every container, stops the daemon and checks nothing is left.
func (d *Daemon) Cleanup() {
	select {
	case <-d.exited:
		d.Start()
	default:
	}
	ids := strings.Fields(d.Isula("ps", "-aq", "--no-trunc").Stdout)
	for _, id := range ids {
		if r := d.Isula("rm", "-f", id); r.Code != 0 {
			d.t.Errorf("cleanup: rm -f %s: %s", id, r.Stderr)
		}
	}
	d.Stop()
	if d.t.Failed() {
		d.t.Logf("daemon log:\n%s", d.Log())
	}
	// Nothing of this daemon may remain: no mount under its dirs, no shim, no runtime state.
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(data), d.Dir) {
		d.t.Errorf("mounts left under %s:\n%s", d.Dir, grepLines(string(data), d.Dir))
		for _, l := range strings.Split(grepLines(string(data), d.Dir), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	if out, _ := exec.Command("pgrep", "-f", "isulad-shim.*"+d.State).Output(); len(out) > 0 {
		d.t.Errorf("shims left: %s", out)
	}
	for _, rt := range []string{"runc", "crun"} {
		if ents, _ := os.ReadDir(filepath.Join(d.State, "runtime", rt)); len(ents) > 0 {
			d.t.Errorf("%s state left: %d entries", rt, len(ents))
		}
	}
	os.RemoveAll(d.Dir)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Result of one isula command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// Isula runs the client against this daemon.
func (d *Daemon) Isula(args ...string) Result {
	return d.IsulaStdin("", args...)
}

// IsulaStdin runs the client with stdin.
func (d *Daemon) IsulaStdin(stdin string, args ...string) Result {
	return d.RunClient(filepath.Join(binDir, "isula"), stdin, args...)
}

// RunClient runs the client binary bin (isula, isula-full, or a copy) against this daemon.
func (d *Daemon) RunClient(bin, stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-H", "unix://" + d.Sock}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// Must runs isula and fails the test unless it exits 0; it returns trimmed stdout.
func (d *Daemon) Must(args ...string) string {
	d.t.Helper()
	r := d.Isula(args...)
	if r.Code != 0 {
		d.t.Fatalf("isula %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.Stdout)
}

// Inspect returns one field of inspect via a template.
func (d *Daemon) Inspect(id, tmpl string) string {
	d.t.Helper()
	return d.Must("inspect", "-f", tmpl, id)
}

// WaitFor polls cond until it is true or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// maxRestartBackoff is the daemon's longest wait before a restart-policy restart (10 × 100 ms).
const maxRestartBackoff = time.Second

// Holds polls cond for the whole of d and fails the test the first time it is false: for a
// negative assertion ("it did not restart") that no event of the daemon can settle. d must
// be longer than whatever could break it (e.g. maxRestartBackoff), with room to spare.
func Holds(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s: broken", what)
		}
		if time.Now().After(deadline) {
			return
		}
	}
}

// TempDir is a scratch directory that lives until the daemon's cleanup, after its
// containers (and their host channels) are gone. Its parents are searchable by anyone.
func (d *Daemon) TempDir() string {
	d.t.Helper()
	os.Chmod(d.Dir, 0o755)
	dir, err := os.MkdirTemp(d.Dir, "scratch-")
	if err != nil {
		d.t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	return dir
}

// Rootfs returns a private copy of the busybox rootfs (for tests that write into it).
func Rootfs(t testing.TB) string {
	t.Helper()
	requireEnv(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", busyboxRoot, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	return dir
}
