// Package daemon is the engine's core: it owns the container store, turns API calls into
// lifecycle operations (host channels, OCI spec, shim, runtime), handles exits and restart
// policies, and recovers every container after a restart.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/events"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/network"
	"github.com/isulad-go/isulad/internal/shim"
	"github.com/isulad-go/isulad/internal/trash"
	"github.com/isulad-go/isulad/internal/volume"
)

var (
	errInvalid  = errdefs.ErrInvalidArgument
	errConflict = errdefs.ErrConflict
	errNotFound = errdefs.ErrNotFound
)

// Daemon is the running engine.
type Daemon struct {
	memMu    sync.Mutex
	memTimer *time.Timer // releaseMemorySoon

	cfg      Config
	log      *slog.Logger
	store    *container.Store
	channels *hostchannel.Manager
	// graphTrash and stateTrash delete removed containers' directories in the background.
	graphTrash, stateTrash *trash.Bin
	net                    *network.Manager // network.go
	netMu                  sync.RWMutex     // creates (read) against network removal (write)
	events                 *events.Log
	volumes                *volume.Store
	// closing is closed when the API shuts down: streams that never end by themselves
	// (events, stats) end then, so a graceful stop does not wait for them.
	closing     chan struct{}
	closingOnce sync.Once
	images      *images

	shims      Shims                             // launches and reconnects shims
	newRuntime func(binary, root string) Runtime // the one maker of runtime drivers

	mu     sync.Mutex
	conns  map[string]Shim // live shim connections by container ID
	closed bool            // Close was called: no new shim connection is kept, no back-off restarts
	done   chan struct{}   // closed by Close

	// bg tracks background work (exit monitors, restarts) so shutdown can wait briefly.
	bg sync.WaitGroup
}

// New prepares the daemon's directories, loads every container and reconciles them with
// what is actually running.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	return newDaemon(cfg, log, binaryShims{shim.NewSpares(cfg.ShimPath)}, newRuncRuntime)
}

// newDaemon is New with the shims and the runtime given (tests give fakes).
func newDaemon(cfg Config, log *slog.Logger, shims Shims, newRuntime func(binary, root string) Runtime) (*Daemon, error) {
	if err := ensureDirs(cfg); err != nil {
		return nil, err
	}
	store, err := container.NewStore(filepath.Join(cfg.Graph, "containers"))
	if err != nil {
		return nil, err
	}
	// Removed containers' directories go to a trash beside them and are deleted in the
	// background (what a crash left there goes now).
	graphTrash, err := trash.Open(filepath.Join(cfg.Graph, ".trash"))
	if err != nil {
		return nil, err
	}
	stateTrash, err := trash.Open(filepath.Join(cfg.State, ".trash"))
	if err != nil {
		return nil, err
	}
	store.RemoveDir = graphTrash.Remove
	hc, err := hostchannel.NewManager(filepath.Join(cfg.Graph, "hostchannels"), filepath.Join(cfg.State, "hostchannels"), log)
	if err != nil {
		return nil, err
	}
	im, err := newImages(cfg)
	if err != nil {
		return nil, err
	}
	ev, err := events.Open(filepath.Join(cfg.Graph, "events"), events.DefaultMaxSize)
	if err != nil {
		return nil, err
	}
	vols, err := volume.Open(filepath.Join(cfg.Graph, "volumes"))
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, store: store, channels: hc, images: im, shims: shims, newRuntime: newRuntime, conns: map[string]Shim{}, done: make(chan struct{}), events: ev, volumes: vols, closing: make(chan struct{}), graphTrash: graphTrash, stateTrash: stateTrash}
	if err := d.initNetwork(); err != nil {
		return nil, err
	}
	if err := d.restore(); err != nil {
		return nil, err
	}
	d.restoreImages()
	d.reconcileNetwork()
	return d, nil
}

// runtime returns the OCI runtime driver for a runtime name.
func (d *Daemon) runtime(name string) (Runtime, error) {
	rc, ok := d.cfg.Runtimes[name]
	if !ok {
		return nil, fmt.Errorf("runtime %q is not configured (have %s): %w", name, d.runtimeNames(), errInvalid)
	}
	return d.newRuntime(rc.Path, filepath.Join(d.cfg.State, "runtime", name)), nil
}

func (d *Daemon) runtimeNames() string {
	return strings.Join(slices.Sorted(maps.Keys(d.cfg.Runtimes)), ", ")
}

// stateDir is the container's runtime state directory.
func (d *Daemon) stateDir(id string) string {
	return filepath.Join(d.cfg.State, "containers", id)
}

func (d *Daemon) setShim(id string, c Shim) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c == nil {
		delete(d.conns, id)
	} else if d.closed {
		// A start that finished after Close (a restart policy's back-off, say): let go of
		// the shim at once, as Close did for the others, so its monitor ends.
		c.Close()
	} else {
		d.conns[id] = c
	}
}

func (d *Daemon) getShim(id string) Shim {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[id]
}

// restore brings the in-memory view back in line with the disk and the running system,
// after a clean restart or a crash.
func (d *Daemon) restore() error {
	found, err := d.store.Load()
	if err != nil {
		return err
	}
	for _, dir := range found.Unfinished {
		d.log.Warn("removing the directory of a container whose create did not finish", "dir", dir)
		if err := unmountOrphanRootfs(dir); err != nil {
			d.log.Error("unmounting the image rootfs of an unfinished create", "dir", dir, "err", err)
			continue // never delete through a mounted rootfs
		}
		os.RemoveAll(dir)
		os.RemoveAll(d.stateDir(filepath.Base(dir)))
	}
	for _, q := range found.Quarantined {
		d.log.Warn("quarantined a container whose record cannot be read: it is not managed, and its runtime, shim, host channels and directory are left alone; repair or remove its record and restart the daemon",
			"id", q.ID, "dir", q.Dir, "err", q.Err)
	}
	for _, r := range found.Renamed {
		d.log.Warn("renamed a container whose recorded name another container has", "id", r.ID, "name", r.From, "holder", r.Holder, "new-name", r.To)
		if r.SaveErr != nil {
			d.log.Error("saving the new name", "id", r.ID, "err", r.SaveErr)
		}
	}
	// Host channels whose owner never got a record (create killed half-way) go now; those
	// of a quarantined container are its own.
	if err := d.channels.Reconcile(d.store.Owns); err != nil {
		d.log.Error("host channel reconciliation", "err", err)
	}
	// Runtime state dirs of containers that no longer exist.
	if ents, err := os.ReadDir(filepath.Join(d.cfg.State, "containers")); err == nil {
		for _, e := range ents {
			if !d.store.Owns(e.Name()) {
				d.cleanupRuntime(e.Name())
				os.RemoveAll(d.stateDir(e.Name()))
			}
		}
	}
	for _, c := range d.store.List() {
		d.recover(c)
	}
	return nil
}

// recover finds out what happened to one container while the daemon was away.
func (d *Daemon) recover(c *container.Container) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	status := c.Status()
	switch status {
	case container.Removing:
		// Finished before the daemon serves: nobody sees a container whose removal is
		// still going on after a restart. A failure leaves it Dead, listed as such.
		d.log.Info("finishing an interrupted removal", "id", c.ID)
		d.finishRemove(c)
		return
	case container.Dead:
		return // a failed removal: rm -f tries again
	case container.Restarting:
		// The daemon died in the policy's back-off: the exit is recorded already; the
		// back-off starts over.
		c.Lock()
		err := c.SetStatusLocked(container.Exited)
		code := c.State.ExitCode
		c.Unlock()
		if err == nil {
			err = d.store.Save(c)
		}
		if err != nil {
			d.log.Error("recovering a container in its restart back-off", "id", c.ID, "err", err)
		}
		d.cleanupRuntime(c.ID)
		d.bgGo(func() { d.restartAfterExit(c, code) })
		return
	}
	client, err := d.shims.Connect(ctx, shim.SocketPath(d.cfg.State, c.ID))
	if err == nil {
		pid, perr := client.Pid()
		// The daemon died during a start: the shim refuses to shut down while the runtime's
		// start is in flight (ErrStartInProgress), and the record says the start never
		// happened. Kill that shim; cleanupRuntime (below) then kills whatever the runtime
		// brought up and deletes its state.
		if perr == nil && pid == 0 {
			if err := client.Shutdown(ctx); errors.Is(err, shim.ErrStartInProgress) {
				d.log.Warn("a shim was still starting the container when the daemon stopped: killing it", "id", c.ID)
				d.killStuckShim(ctx, c.ID, client)
			}
		}
		if perr == nil && pid > 0 {
			// It runs: that is a fact, recorded in memory even if the disk refuses it.
			c.Lock()
			var terr error
			if st := container.Status(c.State.Status); st != container.Running && st != container.Paused {
				terr = c.SetStatusLocked(container.Running)
			}
			c.State.Pid = pid
			c.Unlock()
			if terr != nil {
				d.log.Error("reconnected container in an unexpected state", "id", c.ID, "err", terr)
			}
			if err := d.store.Save(c); err != nil {
				d.log.Error("saving container record", "id", c.ID, "err", err)
			}
			run := c.NewRun()
			d.setShim(c.ID, client)
			d.bgGo(func() {
				waited := make(chan waitResult, 1)
				waited <- d.waitExit(c, client)
				d.monitor(c, run, waited)
			})
			d.log.Info("reconnected to running container", "id", c.ID, "pid", pid)
			return
		}
		// A shim that never started its container: let it go.
		client.Shutdown(ctx)
		client.Close()
	}
	if status != container.Running && status != container.Paused {
		d.cleanupRuntime(c.ID)
		if c.HostConfig.AutoRemove {
			// Its exit was recorded, but the daemon stopped before --rm removed it; or it
			// never started (created, or its start cut by the crash). A --rm container
			// does not outlive the daemon (as docker's restore does): its record is not
			// even durable. Like an interrupted removal, done before the daemon serves.
			d.log.Info("removing a --rm container that was not running when the daemon stopped", "id", c.ID, "status", status)
			if err := d.Remove(context.Background(), c, true); err != nil && !isErr(err, errNotFound) {
				d.log.Error("auto-remove", "id", c.ID, "err", err)
			}
			return
		}
		if rp := c.HostConfig.RestartPolicy.Name; (rp == "always" || rp == "unless-stopped") && c.StartedOnce && !c.ManualStop {
			d.bgGo(func() { d.restartAfterExit(c, 0) })
		}
		return
	}
	// It was running and its shim is gone: the exit file tells how it ended; without one
	// the shim died first, so the container is killed and reported as killed.
	es, _ := shim.ReadExitFile(d.stateDir(c.ID))
	if es == nil {
		d.log.Warn("container's shim is gone without an exit status: killing it", "id", c.ID)
		d.killOrphan(c)
		es = &shim.ExitStatus{Code: 137, ExitedAt: time.Now()}
	}
	d.cleanupRuntime(c.ID)
	run := c.NewRun()
	d.bgGo(func() { d.handleExit(c, run, *es, exitInfo{}) })
}

// killOrphan kills a container that has no shim any more.
func (d *Daemon) killOrphan(c *container.Container) {
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt.Kill(ctx, c.ID, syscall.SIGKILL, true)
	rt.Delete(ctx, c.ID, c.CgroupsPath)
}

// cleanupRuntime deletes whatever the runtime still knows of a container, its cgroups, and
// its shim socket. Safe to call when there is nothing.
func (d *Daemon) cleanupRuntime(id string) error {
	// The container's own runtime; for an unknown container, any runtime may hold it.
	names := slices.Collect(maps.Keys(d.cfg.Runtimes))
	cgroupsPath := ""
	if c, err := d.store.Get(id); err == nil && c.ID == id {
		names, cgroupsPath = []string{c.Runtime}, c.CgroupsPath
	}
	var errs []error
	for _, name := range names {
		rt, err := d.runtime(name)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, rt.Delete(ctx, id, cgroupsPath))
		cancel()
	}
	os.Remove(shim.SocketPath(d.cfg.State, id))
	return errors.Join(errs...)
}

func (d *Daemon) bgGo(f func()) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f()
	}()
}

// Close lets go of the shims without touching the containers: they keep running.
func (d *Daemon) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.done)
	}
	for id, c := range d.conns {
		c.Close()
		delete(d.conns, id)
	}
	d.mu.Unlock()
	d.memMu.Lock()
	if d.memTimer != nil {
		d.memTimer.Stop()
	}
	d.memMu.Unlock()
	if c, ok := d.shims.(interface{ Close() }); ok {
		c.Close() // the spare shim exits
	}
	if d.events != nil {
		d.events.Close()
	}
	for _, t := range []*trash.Bin{d.graphTrash, d.stateTrash} {
		if t != nil {
			t.Wait()
		}
	}
}

// isErr is errors.Is, short.
func isErr(err, target error) bool { return errors.Is(err, target) }

func init() {
	// The host-channel package's categories, for the gRPC edge.
	errdefs.Register(hostchannel.ErrInvalid, errdefs.ErrInvalidArgument)
	errdefs.Register(hostchannel.ErrExists, errdefs.ErrAlreadyExists)
	errdefs.Register(hostchannel.ErrNotFound, errdefs.ErrNotFound)
	errdefs.Register(hostchannel.ErrUnsafe, errdefs.ErrConflict)
	errdefs.Register(hostchannel.ErrBusy, errdefs.ErrConflict)
	errdefs.Register(shim.ErrStartInProgress, errdefs.ErrConflict)
}

// killStuckShim SIGKILLs the shim behind cl (the process listening on its socket, by a
// pidfd the kernel gives for it) and waits briefly for it to go. The pid in shim.pid is not
// used: checking it against the command line failed for an adopted spare shim, whose
// command line is `isulad-shim --spare`, so a stuck spare was never killed.
func (d *Daemon) killStuckShim(ctx context.Context, id string, cl Shim) {
	pfd, err := cl.PeerPidFD(ctx)
	if err != nil {
		d.log.Warn("a stuck shim could not be killed", "id", id, "err", err)
		return
	}
	defer unix.Close(pfd)
	unix.PidfdSendSignal(pfd, unix.SIGKILL, nil, 0)
	fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
	unix.Poll(fds, 5000) // readable once the process has exited
}
