package daemon

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/opts"
	"github.com/isulad-go/isulad/internal/shim"
)

// Stop sends the container's stop signal, waits up to timeout seconds (negative: the
// default of 10), then kills it. The stop is the user's: no restart policy undoes it.
func (d *Daemon) Stop(ctx context.Context, c *container.Container, timeout int) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	st := c.Status()
	if err := d.stopLocked(ctx, c, timeout); err != nil {
		return err
	}
	if st == container.Running || st == container.Paused {
		d.event(c, "stop")
	}
	return nil
}

func (d *Daemon) stopLocked(ctx context.Context, c *container.Container, timeout int) error {
	// A container in its restart policy's back-off is stopped by leaving Restarting.
	if err := d.store.Update(c, func(c *container.Container) error {
		c.ManualStop = true
		if container.Status(c.State.Status) == container.Restarting {
			return c.SetStatusLocked(container.Exited)
		}
		return nil
	}); err != nil {
		return err
	}
	st := c.Status()
	if st != container.Running && st != container.Paused {
		return nil
	}
	if timeout < 0 {
		timeout = 10
		if c.Config.StopTimeout != nil {
			timeout = *c.Config.StopTimeout
		}
	}
	run := c.CurrentRun()
	sig, err := opts.ParseSignal(c.StopSignal)
	if err != nil {
		sig = syscall.SIGTERM
	}
	if st == container.Paused {
		// A frozen process cannot act on a signal: thaw it after signalling.
		d.signal(ctx, c, sig, false)
		d.resume(ctx, c)
	} else if err := d.signal(ctx, c, sig, false); err != nil {
		d.log.Warn("stop signal", "id", c.ID, "err", err)
	}
	if run != nil && timeout > 0 {
		select {
		case <-run.Exited:
			return nil
		case <-time.After(time.Duration(timeout) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.log.Info("container did not stop in time: killing it", "id", c.ID, "timeout", timeout)
	d.signal(ctx, c, syscall.SIGKILL, true)
	return d.waitExited(ctx, c, run)
}

// waitExited waits for the exit of the current run to be recorded.
func (d *Daemon) waitExited(ctx context.Context, c *container.Container, run *container.Run) error {
	if run == nil {
		return nil
	}
	select {
	case <-run.Exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", c.Name)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal sends sig to the container's init (or all its processes).
func (d *Daemon) signal(ctx context.Context, c *container.Container, sig syscall.Signal, all bool) error {
	// A running container's shim signals its init itself, without a runtime process (it
	// falls back on the runtime's kill when it cannot do the same). Not a paused one: the
	// runtime's kill of a frozen container is left to the runtime.
	if cl := d.getShim(c.ID); cl != nil && c.Status() == container.Running {
		if err := cl.Kill(ctx, int(sig), all); err == nil {
			return nil
		}
	}
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return err
	}
	if err := rt.Kill(ctx, c.ID, sig, all); err != nil {
		// Fall back on the recorded pid (the runtime may already have deleted its state).
		if pid := c.Snapshot().Pid; pid > 0 {
			return syscall.Kill(pid, sig)
		}
		return err
	}
	return nil
}

// Kill sends a signal (default SIGKILL). It counts as a user stop.
func (d *Daemon) Kill(ctx context.Context, c *container.Container, signal string) error {
	sig := syscall.SIGKILL
	if signal != "" {
		s, err := opts.ParseSignal(signal)
		if err != nil {
			return err
		}
		sig = s
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	if st := c.Status(); st != container.Running && st != container.Paused {
		return fmt.Errorf("container %s is not running: %w", c.Name, errConflict)
	}
	if err := d.store.Update(c, func(c *container.Container) error {
		c.ManualStop = true
		return nil
	}); err != nil {
		return err
	}
	if err := d.signal(ctx, c, sig, false); err != nil {
		return err
	}
	d.event(c, "kill", "signal", opts.SignalName(sig))
	return nil
}

// Restart stops (if running) and starts the container.
func (d *Daemon) Restart(ctx context.Context, c *container.Container, timeout int) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	if err := d.stopLocked(ctx, c, timeout); err != nil {
		return err
	}
	if run := c.CurrentRun(); run != nil {
		<-run.Exited
	}
	c.Lock()
	c.ManualStop = false
	c.Unlock()
	if err := d.startLocked(ctx, c, nil); err != nil {
		return err
	}
	d.event(c, "restart")
	return nil
}

// Pause freezes every process of the container.
func (d *Daemon) Pause(ctx context.Context, c *container.Container) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	if st := c.Status(); st != container.Running {
		return fmt.Errorf("container %s is not running (%s): %w", c.Name, st, errConflict)
	}
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return err
	}
	if err := rt.Pause(ctx, c.ID); err != nil {
		return fmt.Errorf("pausing %s: %v", c.Name, err)
	}
	if err := d.store.Update(c, func(c *container.Container) error { return c.SetStatusLocked(container.Paused) }); err != nil {
		rt.Resume(ctx, c.ID) // the record still says running: so is the container
		return err
	}
	d.event(c, "pause")
	return nil
}

// Unpause thaws a paused container.
func (d *Daemon) Unpause(ctx context.Context, c *container.Container) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	if st := c.Status(); st != container.Paused {
		return fmt.Errorf("container %s is not paused (%s): %w", c.Name, st, errConflict)
	}
	if err := d.resume(ctx, c); err != nil {
		return err
	}
	d.event(c, "unpause")
	return nil
}

func (d *Daemon) resume(ctx context.Context, c *container.Container) error {
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return err
	}
	if err := rt.Resume(ctx, c.ID); err != nil {
		return fmt.Errorf("unpausing %s: %v", c.Name, err)
	}
	if err := d.store.Update(c, func(c *container.Container) error {
		if c.State.Status != string(container.Paused) {
			return nil
		}
		return c.SetStatusLocked(container.Running)
	}); err != nil {
		rt.Pause(ctx, c.ID) // the record still says paused: so is the container
		return err
	}
	return nil
}

// Remove deletes a stopped container (force: kill it first), its host channels, its
// runtime state and its records. The external rootfs is never touched.
func (d *Daemon) Remove(ctx context.Context, c *container.Container, force bool) error {
	if err := d.markRemoving(ctx, c, force, true); err != nil {
		return err
	}
	return d.finishRemove(c)
}

// removeExited is --rm's removal right after the exit; xi is what the exit's report said
// of its shim. The Removing status is not written: a daemon that dies in the middle removes
// every --rm container that is not running when it comes back (restore), whatever its
// record says.
func (d *Daemon) removeExited(c *container.Container, xi exitInfo) error {
	if err := d.markRemoving(context.Background(), c, true, false); err != nil {
		return err
	}
	return d.finishRemoveWith(c, xi)
}

// markRemoving stops a running container when force allows it, then records the container
// as being removed (on disk too when persist), under the container's operation lock.
func (d *Daemon) markRemoving(ctx context.Context, c *container.Container, force, persist bool) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	st := c.Status()
	if st == container.Running || st == container.Paused {
		if !force {
			return fmt.Errorf("you cannot remove a %s container %s: stop it first or use rm -f: %w", st, container.ShortID(c.ID), errConflict)
		}
		c.Lock()
		c.ManualStop = true
		c.Unlock()
		run := c.CurrentRun()
		if st == container.Paused {
			d.resume(ctx, c)
		}
		d.signal(ctx, c, syscall.SIGKILL, true)
		if err := d.waitExited(ctx, c, run); err != nil {
			return err
		}
	}
	if st == container.Removing {
		return fmt.Errorf("removal of container %s is already in progress: %w", c.Name, errConflict)
	}
	if !d.store.Known(c.ID) {
		return fmt.Errorf("no such container: %s: %w", c.Name, errNotFound)
	}
	if !persist {
		c.Lock()
		defer c.Unlock()
		return c.SetStatusLocked(container.Removing)
	}
	return d.store.Update(c, func(c *container.Container) error { return c.SetStatusLocked(container.Removing) })
}

// finishRemove does the removal proper; it is also what a restarted daemon runs for a
// container whose removal was interrupted. A removal that fails leaves the container Dead,
// from which rm -f tries again.
func (d *Daemon) finishRemove(c *container.Container) error {
	return d.finishRemoveWith(c, exitInfo{})
}

// finishRemoveWith is finishRemove after an exit reported as xi says: a shim that exits by
// itself is neither looked for nor told to go, and the runtime's state and cgroups it
// deleted are not looked for again (together 3 round trips to the shim and a cgroupfs walk
// less on --rm's exit path).
func (d *Daemon) finishRemoveWith(c *container.Container, xi exitInfo) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() {
		if err == nil {
			d.releaseMemorySoon()
			return
		}
		d.log.Error("removal failed: the container is dead until rm -f succeeds", "id", c.ID, "err", err)
		if uerr := d.store.Update(c, func(c *container.Container) error { return c.SetStatusLocked(container.Dead) }); uerr != nil {
			d.log.Error("recording a failed removal", "id", c.ID, "err", uerr)
		}
	}()
	if cl := d.getShim(c.ID); cl != nil {
		cl.Shutdown(ctx)
		cl.Close()
		d.setShim(c.ID, nil)
	}
	// No process of the container may be left before its channels are unmounted. A shim
	// that answered a final wait did so after the container's processes were gone, and
	// exits by itself.
	if !xi.gone {
		if cl, err := d.shims.Connect(ctx, shim.SocketPath(d.cfg.State, c.ID)); err == nil {
			cl.Shutdown(ctx)
			cl.Close()
		}
	}
	if xi.cleaned {
		os.Remove(shim.SocketPath(d.cfg.State, c.ID)) // the rest of cleanupRuntime is done
	} else if err := d.cleanupRuntime(c.ID); err != nil {
		return fmt.Errorf("removing container %s from its runtime: %w", c.Name, err)
	}
	d.networkDown(c) // again, idempotent: a crash may have skipped the one at exit
	for _, ch := range c.HostConfig.HostChannels {
		if err := d.channels.Remove(c.ID, ch); err != nil {
			return fmt.Errorf("removing host channel %s: %w", ch.PathOnHost, err)
		}
		d.channelEvent(c, "unmount", ch)
	}
	if err := d.unmountRootfs(c); err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	d.stateTrash.Remove(d.stateDir(c.ID))
	if err := d.store.Delete(c); err != nil {
		return err
	}
	d.net.Release(c.ID)
	d.log.Info("container removed", "id", c.ID)
	d.event(c, "rm")
	return nil
}

// Rename changes the container's name.
func (d *Daemon) Rename(c *container.Container, name string) error {
	if err := opts.ValidateName(name); err != nil {
		return err
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	old := c.Name
	if err := d.store.Rename(c, name); err != nil {
		return err
	}
	if err := d.store.Save(c); err != nil {
		d.store.Rename(c, old)
		return fmt.Errorf("renaming %s to %s: %w", old, name, err)
	}
	d.event(c, "rename", "oldName", old)
	return nil
}

// memQuiet is how long removals must pause before the memory a burst freed goes back.
const memQuiet = 300 * time.Millisecond

// releaseMemorySoon gives the memory freed by the containers just removed back to the system
// once removals have paused for memQuiet (a forced collection of a heap of a few MiB: well
// under a millisecond). Without a soft memory limit (cmd/isulad) the collector would leave it
// in the process until the periodic release.
func (d *Daemon) releaseMemorySoon() {
	d.memMu.Lock()
	defer d.memMu.Unlock()
	if d.memTimer == nil {
		d.memTimer = time.AfterFunc(memQuiet, debug.FreeOSMemory)
		return
	}
	d.memTimer.Reset(memQuiet)
}
