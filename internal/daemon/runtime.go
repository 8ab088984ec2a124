package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runc "github.com/containerd/go-runc"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/shim"
)

// Runtime is everything the daemon asks of an OCI runtime. The shim drives the runtime for a
// container's create, start and exit; the daemon's own calls all go through this interface,
// and only runcRuntime below runs the binary, so there is one place to read what the daemon
// does behind the shim's back (signals, pause, ps, and deleting what a dead shim left).
type Runtime interface {
	// Binary and Root are what the shim is launched with.
	Binary() string
	Root() string
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Ps(ctx context.Context, id string) ([]int, error)
	// Update changes a running container's resources live (`update --resources`).
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
	// Delete removes whatever is left of a container: the runtime's state (killing what
	// still runs) and, when cgroupsPath is not empty, its cgroups in every hierarchy, whether
	// or not the runtime still had state (a runtime killed half-way through its create leaves
	// cgroups it never recorded).
	Delete(ctx context.Context, id, cgroupsPath string) error
}

// Shim is one container's shim connection (*shim.Client).
type Shim interface {
	Start(ctx context.Context) (int, error)
	Pid() (int, error)
	Kill(ctx context.Context, signal int, all bool) error
	Wait(ctx context.Context) (shim.ExitStatus, error)
	// WaitFinal is Wait as the last request: the shim then exits by itself; cleaned says it
	// deleted the runtime's state and the cgroups.
	WaitFinal(ctx context.Context) (es shim.ExitStatus, cleaned bool, err error)
	Resize(ctx context.Context, width, height uint16) error
	ReopenLog(ctx context.Context) error // the CRI's ReopenContainerLog
	Attach(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error
	AttachStream(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (wait func() error, err error)
	// AttachStart is AttachStream and Start in one request.
	AttachStart(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (pid int, wait func() error, err error)
	Exec(ctx context.Context, execID string, proc *specs.Process, stdin io.Reader, stdout, stderr io.Writer, resize <-chan [2]uint16, opts shim.ExecOptions) (int, error)
	Shutdown(ctx context.Context) error
	// PeerPidFD is a pidfd of the shim's process (the peer of its socket), to kill one that
	// no longer answers as it should (killStuckShim).
	PeerPidFD(ctx context.Context) (int, error)
	Close() error
}

// Shims launches shims and reconnects to them.
type Shims interface {
	Launch(ctx context.Context, cfg shim.Config) (Shim, error)
	Connect(ctx context.Context, socket string) (Shim, error)
}

// binaryShims runs the isulad-shim binary, one spare started ahead (shim.Spares).
type binaryShims struct{ spares *shim.Spares }

// Close ends the spare shim.
func (b binaryShims) Close() { b.spares.Close() }

// Refill starts the next spare shim in the background.
func (b binaryShims) Refill() { b.spares.Refill() }

func (b binaryShims) Launch(ctx context.Context, cfg shim.Config) (Shim, error) {
	c, err := b.spares.Launch(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (b binaryShims) Connect(ctx context.Context, socket string) (Shim, error) {
	c, err := shim.Connect(ctx, socket)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// runcRuntime drives a runc-compatible binary (runc, crun) with its own --root.
type runcRuntime struct{ r *runc.Runc }

func newRuncRuntime(binary, root string) Runtime {
	return runcRuntime{&runc.Runc{Command: binary, Root: root}}
}

func (r runcRuntime) Binary() string { return r.r.Command }
func (r runcRuntime) Root() string   { return r.r.Root }

func (r runcRuntime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	return r.r.Kill(ctx, id, int(sig), &runc.KillOpts{All: all})
}

func (r runcRuntime) Pause(ctx context.Context, id string) error  { return r.r.Pause(ctx, id) }
func (r runcRuntime) Resume(ctx context.Context, id string) error { return r.r.Resume(ctx, id) }
func (r runcRuntime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return r.r.Update(ctx, id, res)
}
func (r runcRuntime) Ps(ctx context.Context, id string) ([]int, error) {
	return r.r.Ps(ctx, id)
}

func (r runcRuntime) Delete(ctx context.Context, id, cgroupsPath string) error {
	var err error
	if _, serr := os.Stat(filepath.Join(r.r.Root, id)); serr == nil {
		err = r.r.Delete(ctx, id, &runc.DeleteOpts{Force: true})
		if _, serr := os.Stat(filepath.Join(r.r.Root, id)); serr != nil {
			err = nil // gone: what the runtime said on the way does not matter
		}
	}
	if cgroupsPath != "" {
		err = errors.Join(err, removeCgroups(cgroupsPath))
	}
	return err
}

// removeCgroups kills what is left in a container's cgroups and removes them, deepest first,
// in every cgroup hierarchy mounted on the host.
func removeCgroups(cgroupsPath string) error {
	cgroupsPath = filepath.Clean("/" + cgroupsPath)
	if cgroupsPath == "/" {
		return nil
	}
	mounts, err := cgroupMountpoints()
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, m := range mounts {
		dir := filepath.Join(m, cgroupsPath)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := removeCgroupTree(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cgroupMounts caches the mount points of the cgroup hierarchies. Parsing the mount table
// for each removal (every start cleans up after a possible earlier run) cost 7% of the
// daemon's CPU with 100 CRI pods in bench/cri.sh, the table growing with every container.
// The cache is keyed by /proc/cgroups (a dozen lines), whose hierarchy ids change when a
// controller moves between hierarchies (scripts/cgroup-hugetlb.sh) or one is mounted anew;
// a cached mount point that is no longer a cgroup file system also makes it read again.
var cgroupMounts struct {
	sync.Mutex
	key    string
	points []string
}

func cgroupMountpoints() ([]string, error) {
	key, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return nil, err
	}
	cgroupMounts.Lock()
	defer cgroupMounts.Unlock()
	if cgroupMounts.points != nil && cgroupMounts.key == string(key) && allCgroupFS(cgroupMounts.points) {
		return cgroupMounts.points, nil
	}
	ms, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.FSType != "cgroup" && m.FSType != "cgroup2", false
	})
	if err != nil {
		return nil, err
	}
	points := make([]string, 0, len(ms))
	for _, m := range ms {
		points = append(points, m.Mountpoint)
	}
	cgroupMounts.key, cgroupMounts.points = string(key), points
	return points, nil
}

func allCgroupFS(points []string) bool {
	for _, p := range points {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) != nil || (st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC) {
			return false
		}
	}
	return true
}

func removeCgroupTree(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		last = nil
		// A process that is still there (a runtime's init stuck before exec) is killed;
		// its exit takes a moment to empty the cgroup.
		for try := 0; try < 50; try++ {
			if last = syscall.Rmdir(dirs[i]); last == nil || errors.Is(last, syscall.ENOENT) {
				last = nil
				break
			}
			killCgroupProcs(dirs[i])
			time.Sleep(10 * time.Millisecond)
		}
		if last != nil {
			return &os.PathError{Op: "rmdir", Path: dirs[i], Err: last}
		}
	}
	return nil
}

func killCgroupProcs(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
