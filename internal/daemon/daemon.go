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
	"time"

	runc "github.com/containerd/go-runc"

	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/shim"
)

var (
	errInvalid  = errdefs.ErrInvalidArgument
	errConflict = errdefs.ErrConflict
	errNotFound = errdefs.ErrNotFound
)

// Daemon is the running engine.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	store    *container.Store
	channels *hostchannel.Manager
	images   *images

	mu    sync.Mutex
	shims map[string]*shim.Client // live shim connections by container ID

	// bg tracks background work (exit monitors, restarts) so shutdown can wait briefly.
	bg sync.WaitGroup
}

// New prepares the daemon's directories, loads every container and reconciles them with
// what is actually running.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	for _, dir := range []string{cfg.Graph, cfg.State, filepath.Join(cfg.State, "containers"), filepath.Join(cfg.State, "s"), filepath.Join(cfg.State, "runtime")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	store, err := container.NewStore(filepath.Join(cfg.Graph, "containers"))
	if err != nil {
		return nil, err
	}
	hc, err := hostchannel.NewManager(filepath.Join(cfg.Graph, "hostchannels"), log)
	if err != nil {
		return nil, err
	}
	im, err := newImages(cfg)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, store: store, channels: hc, images: im, shims: map[string]*shim.Client{}}
	if err := d.restore(); err != nil {
		return nil, err
	}
	d.restoreImages()
	return d, nil
}

// runtime returns the OCI runtime driver for a runtime name.
func (d *Daemon) runtime(name string) (*runc.Runc, error) {
	rc, ok := d.cfg.Runtimes[name]
	if !ok {
		return nil, fmt.Errorf("runtime %q is not configured (have %s): %w", name, d.runtimeNames(), errInvalid)
	}
	return &runc.Runc{Command: rc.Path, Root: filepath.Join(d.cfg.State, "runtime", name)}, nil
}

func (d *Daemon) runtimeNames() string {
	return strings.Join(slices.Sorted(maps.Keys(d.cfg.Runtimes)), ", ")
}

// stateDir is the container's runtime state directory.
func (d *Daemon) stateDir(id string) string {
	return filepath.Join(d.cfg.State, "containers", id)
}

func (d *Daemon) setShim(id string, c *shim.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c == nil {
		delete(d.shims, id)
	} else {
		d.shims[id] = c
	}
}

func (d *Daemon) getShim(id string) *shim.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.shims[id]
}

// restore brings the in-memory view back in line with the disk and the running system,
// after a clean restart or a crash.
func (d *Daemon) restore() error {
	orphans, err := d.store.Load()
	if err != nil {
		return err
	}
	for _, dir := range orphans {
		d.log.Warn("removing the directory of a container whose create did not finish", "dir", dir)
		if err := unmountOrphanRootfs(dir); err != nil {
			d.log.Error("unmounting the image rootfs of an unfinished create", "dir", dir, "err", err)
			continue // never delete through a mounted rootfs
		}
		os.RemoveAll(dir)
		os.RemoveAll(d.stateDir(filepath.Base(dir)))
	}
	// Host channels whose owner never got a record (create killed half-way) go now.
	if err := d.channels.Reconcile(d.store.Known); err != nil {
		d.log.Error("host channel reconciliation", "err", err)
	}
	// Runtime state dirs of containers that no longer exist.
	if ents, err := os.ReadDir(filepath.Join(d.cfg.State, "containers")); err == nil {
		for _, e := range ents {
			if !d.store.Known(e.Name()) {
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
	if status == container.Removing || status == container.Dead {
		d.log.Info("finishing an interrupted removal", "id", c.ID)
		c.Lock()
		c.State.Status = string(container.Removing)
		c.Unlock()
		d.bgGo(func() { d.finishRemove(c) })
		return
	}
	client, err := shim.Connect(ctx, shim.SocketPath(d.cfg.State, c.ID))
	if err == nil {
		pid, perr := client.Pid()
		if perr == nil && pid > 0 {
			c.Lock()
			if st := container.Status(c.State.Status); st != container.Running && st != container.Paused {
				c.SetStatusLocked(container.Running)
			}
			c.State.Pid = pid
			c.Unlock()
			d.store.Save(c)
			d.setShim(c.ID, client)
			run := c.NewRun()
			d.bgGo(func() { d.monitor(c, client, run) })
			d.log.Info("reconnected to running container", "id", c.ID, "pid", pid)
			return
		}
		// A shim that never started its container: let it go.
		client.Shutdown(ctx)
		client.Close()
	}
	if status != container.Running && status != container.Paused && status != container.Restarting {
		d.cleanupRuntime(c.ID)
		if status == container.Exited && c.HostConfig.AutoRemove {
			// Its exit was recorded, but the daemon stopped before --rm removed it.
			d.log.Info("removing a --rm container whose exit was recorded before the daemon stopped", "id", c.ID)
			d.bgGo(func() {
				if err := d.Remove(context.Background(), c, true); err != nil && !isErr(err, errNotFound) {
					d.log.Error("auto-remove", "id", c.ID, "err", err)
				}
			})
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
	d.bgGo(func() { d.handleExit(c, run, *es) })
}

// killOrphan kills a container that has no shim any more.
func (d *Daemon) killOrphan(c *container.Container) {
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt.Kill(ctx, c.ID, 9, &runc.KillOpts{All: true})
	rt.Delete(ctx, c.ID, &runc.DeleteOpts{Force: true})
}

// cleanupRuntime deletes whatever the runtime still knows of a container, and its shim
// socket. Safe to call when there is nothing.
func (d *Daemon) cleanupRuntime(id string) {
	// The container's own runtime; for an unknown container, any runtime may hold it.
	names := slices.Collect(maps.Keys(d.cfg.Runtimes))
	if c, err := d.store.Get(id); err == nil {
		names = []string{c.Runtime}
	}
	for _, name := range names {
		rt, err := d.runtime(name)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(rt.Root, id)); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rt.Delete(ctx, id, &runc.DeleteOpts{Force: true})
			cancel()
		}
	}
	os.Remove(shim.SocketPath(d.cfg.State, id))
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
	for id, c := range d.shims {
		c.Close()
		delete(d.shims, id)
	}
	d.mu.Unlock()
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
}
