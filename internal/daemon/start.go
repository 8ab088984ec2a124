package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/rootfs"
	"github.com/isulad-go/isulad/internal/shim"
	"github.com/isulad-go/isulad/internal/spec"
)

// Streams connects a client to a container's stdio while it starts.
type Streams struct {
	Stdin          io.Reader // nil: not forwarded
	Stdout, Stderr io.Writer
	Width, Height  uint16 // initial terminal size (in the OCI spec's consoleSize)
	// Done receives the result of the attach (nil once the output ended).
	Done chan error
	// release lets go of the run's hold (container.Run.Hold) for the client these streams
	// go to; set by the start once the run exists, called by whoever serves the client
	// (Streams.Release).
	release func()
}

// Release lets go of the client's hold on the run the start made, if it made one.
func (st *Streams) Release() {
	if st != nil && st.release != nil {
		st.release()
	}
}

// StartError is a start that failed in the runtime; Code is what `run` exits with
// (125 engine, 126 cannot execute, 127 not found).
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// startCode classifies a runtime start failure the way docker does.
func startCode(msg string) int {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "executable file not found"), strings.Contains(m, "no such file or directory"):
		return 127
	case strings.Contains(m, "permission denied"), strings.Contains(m, "is a directory"), strings.Contains(m, "exec format error"):
		return 126
	}
	return 125
}

// startTimeout bounds one start (shim launch, runtime create and start, hooks).
const startTimeout = 2 * time.Minute

// Start starts a created or exited container. With streams, the client is attached before
// the container's first instruction runs.
func (d *Daemon) Start(ctx context.Context, c *container.Container, st *Streams) error {
	c.Op.Lock()
	defer c.Op.Unlock()
	c.Lock()
	c.ManualStop = false
	c.Unlock()
	return d.startLocked(ctx, c, st)
}

func (d *Daemon) startLocked(ctx context.Context, c *container.Container, st *Streams) (err error) {
	switch c.Status() {
	case container.Running:
		if st != nil {
			return fmt.Errorf("container %s is already running: %w", c.Name, errConflict)
		}
		return nil
	case container.Paused:
		return fmt.Errorf("container %s is paused: unpause it instead: %w", c.Name, errConflict)
	case container.Removing:
		return fmt.Errorf("container %s is being removed: %w", c.Name, errConflict)
	case container.Dead:
		return fmt.Errorf("container %s is dead (its removal failed): remove it again with rm -f: %w", c.Name, errConflict)
	}
	// The start is the daemon's work, not the client's: a client that goes away must not
	// cancel it half-way (its undo would shut the shim down while the runtime starts the
	// container). The daemon's own bound applies instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	// A shim left from the previous run (still draining its exit) must be gone first; a
	// container this daemon created and never launched a shim for has none (the probe of
	// its socket and the runtime cleanup were 0.4-0.5 ms of every first start).
	c.Lock()
	fresh := c.NoShimYet
	c.NoShimYet = false
	c.Unlock()
	if !fresh {
		d.reapOldShim(ctx, c)
	}

	hc := c.HostConfig
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if err := d.mountRootfs(c); err != nil {
		return err
	}
	undo = append(undo, func() { d.unmountRootfs(c) })
	if hc.EnvTargetFile != "" {
		// The environment the runtime gives the process: the one in the OCI spec.
		s, err := d.loadSpec(c)
		if err != nil {
			return err
		}
		if err := rootfs.WriteEnvTargetFile(c.Rootfs, hc.EnvTargetFile, s.Process.Env); err != nil {
			return err // names the flag and the path
		}
	}
	// Host channels are mounted before the runtime creates the container, which binds them
	// from their backing mounts.
	if err := d.bindChannelsFromBacking(c); err != nil {
		return fmt.Errorf("host channels: updating the OCI spec: %w", err)
	}
	var remap *spec.IDMap
	if hc.UserRemap != "" && len(hc.HostChannels) > 0 {
		if remap, err = spec.ParseUserRemap(hc.UserRemap); err != nil {
			return err
		}
	}
	for _, ch := range hc.HostChannels {
		mounted, err := d.channels.Mount(c.ID, ch)
		if err != nil {
			return err
		}
		if mounted {
			d.channelEvent(c, "mount", ch)
			undo = append(undo, func() { d.channels.Unmount(c.ID, ch); d.channelEvent(c, "unmount", ch) })
		}
		if remap != nil {
			if err := d.channels.Chown(c.ID, ch, int(remap.UID), int(remap.GID)); err != nil {
				return err
			}
		}
	}
	if err := fault.Point(fault.StartAfterMount); err != nil {
		return err
	}
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return err
	}
	size, files, err := d.cfg.logLimits(hc.LogConfig.Config)
	if err != nil {
		return err
	}
	if st != nil && c.Config.Tty && st.Width > 0 && st.Height > 0 {
		// The runtime sizes the terminal before the first instruction runs, so even a
		// command that asks at once (stty size) sees the client's size.
		if err := d.setConsoleSize(c, st.Width, st.Height); err != nil {
			return err
		}
	}
	// The network (namespace, CNI ADD, /etc/hosts...) before the runtime creates the
	// container, made while the shim is launched: neither needs the other, and the shim's
	// launch is a round trip to the spare at least (the none network's three files were
	// 0.35 ms in front of it, a bridge's CNI ADD tens of ms). Its undo, queued now, waits
	// for it and runs after the shim's (the shim is shut down and the runtime cleaned up
	// first).
	type netResult struct {
		undo func()
		err  error
	}
	netC := make(chan netResult, 1)
	go func() {
		u, err := d.networkUp(ctx, c) // network.go
		netC <- netResult{u, err}
	}()
	var joined *netResult
	joinNetwork := func() netResult {
		if joined == nil {
			r := <-netC
			joined = &r
		}
		return *joined
	}
	undo = append(undo, func() {
		if r := joinNetwork(); r.err == nil {
			r.undo()
		}
	})
	sd := d.stateDir(c.ID)
	freshState, err := makeStateDir(sd)
	if err != nil {
		return err
	}
	if !freshState {
		os.Remove(filepath.Join(sd, "exit.json"))
	}
	client, err := d.shims.Launch(ctx, shim.Config{
		ID: c.ID, Bundle: d.store.Dir(c.ID), Runtime: rt.Binary(), RuntimeRoot: rt.Root(),
		StateDir: sd, Socket: shim.SocketPath(d.cfg.State, c.ID),
		LogPath: d.logPath(c), LogMaxSize: size, LogMaxFile: files, LogFormat: logFormat(c),
		Terminal: c.Config.Tty, Stdin: c.Config.OpenStdin, FreshState: freshState,
		Detached: st == nil,
	})
	if err != nil {
		return fmt.Errorf("starting the shim: %w", err)
	}
	// Undone in reverse: shim shutdown, then whatever the runtime still holds (a shim that
	// died after the runtime's create cannot delete it: its init, cgroup and state would stay).
	undo = append(undo, func() {
		if err := d.cleanupRuntime(c.ID); err != nil {
			d.log.Warn("cleaning up after a failed start", "id", c.ID, "err", err)
		}
	})
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A shim refuses to shut down while the runtime's start is still in flight (it
		// would leave a container up with nobody supervising it): wait for the start to
		// end, then shut down; cleanupRuntime (next in the undo) kills what came up.
		for {
			err := client.Shutdown(sctx)
			if !errors.Is(err, shim.ErrStartInProgress) {
				if err != nil {
					d.log.Warn("shutting the shim down after a failed start", "id", c.ID, "err", err)
				}
				break
			}
			select {
			case <-sctx.Done():
				d.log.Error("the shim's start did not end; leaving the shim to supervise it", "id", c.ID)
				client.Close()
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		client.Close()
	})
	if r := joinNetwork(); r.err != nil {
		return r.err
	}
	// The monitor's wait is asked before the start: a container that exits at once (a
	// short command) is reported as soon as the start's bookkeeping below is done, not a
	// connection later. A failed start ends it with an error nobody reads.
	waited := make(chan waitResult, 1)
	go func() { waited <- d.waitExit(c, client) }()
	var pid int
	if st != nil {
		// The streams and the start in one request to the shim.
		var wait func() error
		if pid, wait, err = client.AttachStart(ctx, st.Stdin, st.Stdout, st.Stderr); err == nil {
			go func() {
				err := wait()
				if st.Done != nil {
					st.Done <- err
				}
			}()
		}
	} else {
		pid, err = client.Start(ctx)
	}
	if err != nil || !hc.AutoRemove {
		// The next start's spare shim, now that this one's runtime is done. A --rm
		// container's spare comes once its exit is handled (handleExit): started here, its
		// fork, exec and Go start competed with the exit and the removal of a short run.
		d.refillSpare()
	}
	if err != nil {
		code := startCode(err.Error())
		if serr := d.store.Update(c, func(c *container.Container) error {
			c.State.ExitCode = code
			c.State.Error = err.Error()
			return nil
		}); serr != nil {
			d.log.Error("recording a failed start", "id", c.ID, "err", serr)
		}
		return &StartError{Code: code, Err: err}
	}
	setRunning := func(c *container.Container) error { return c.SetRunningLocked(pid, time.Now().UTC()) }
	if hc.AutoRemove {
		// A --rm container's start is kept in memory only (as its exit is, handleExit): a
		// daemon that dies while it runs finds its shim and takes it as running whatever
		// the record says (restore), and one that finds no shim removes it. The record's
		// write was on the exit path of a short run.
		c.Lock()
		err := setRunning(c)
		c.Unlock()
		if err != nil {
			return err
		}
	} else if err := d.store.Update(c, setRunning); err != nil {
		// Running only once the disk says so: a record that cannot be saved fails the
		// start, and the undo stops the container.
		return err
	}
	run := c.NewRun()
	if st != nil {
		// The attached client is held on to until it has its exit (and has gone): a --rm
		// container's spare shim waits for that (handleExit).
		st.release = run.Hold()
	}
	d.setShim(c.ID, client)
	d.log.Info("container started", "id", c.ID, "pid", pid)
	d.event(c, "start")
	undo = nil
	d.bgGo(func() { d.monitor(c, run, waited) })
	return nil
}

// reapOldShim waits (briefly) for the shim of a previous run to go away.
func (d *Daemon) reapOldShim(ctx context.Context, c *container.Container) {
	if old := d.getShim(c.ID); old != nil {
		old.Close()
		d.setShim(c.ID, nil)
	}
	sock := shim.SocketPath(d.cfg.State, c.ID)
	for i := 0; i < 100; i++ {
		cl, err := d.shims.Connect(ctx, sock)
		if err != nil {
			break
		}
		if err := cl.Shutdown(ctx); errors.Is(err, shim.ErrStartInProgress) {
			d.killStuckShim(ctx, c.ID, cl) // its start outlived the run it belonged to
		}
		cl.Close()
		time.Sleep(20 * time.Millisecond)
	}
	d.cleanupRuntime(c.ID)
}

func (d *Daemon) logPath(c *container.Container) string {
	if c.CRILog != "" {
		return c.CRILog
	}
	return filepath.Join(d.store.Dir(c.ID), c.ID+"-json.log")
}

// waitResult is what waitExit learnt.
type waitResult struct {
	es  shim.ExitStatus
	xi  exitInfo
	err error
}

// waitExit waits for the container's exit through its shim.
func (d *Daemon) waitExit(c *container.Container, client Shim) waitResult {
	var r waitResult
	if c.HostConfig.AutoRemove {
		// A --rm container's shim has nothing left to do for the daemon after this: it
		// exits once it answered, and says whether it deleted the runtime's state.
		r.es, r.xi.cleaned, r.err = client.WaitFinal(context.Background())
		r.xi.gone = r.err == nil
	} else {
		r.es, r.err = client.Wait(context.Background())
	}
	return r
}

// monitor handles the container's exit, which waited reports (waitExit).
func (d *Daemon) monitor(c *container.Container, run *container.Run, waited <-chan waitResult) {
	r := <-waited
	es, xi, err := r.es, r.xi, r.err
	if err != nil {
		if !errors.Is(err, shim.ErrShimGone) {
			// The connection was closed by us (daemon shutting down): nothing to do.
			return
		}
		// The shim died: maybe after writing the exit status, else kill the container.
		if e, _ := shim.ReadExitFile(d.stateDir(c.ID)); e != nil {
			es = *e
		} else {
			d.log.Warn("shim died: killing the container", "id", c.ID)
			d.killOrphan(c)
			es = shim.ExitStatus{Code: 137, ExitedAt: time.Now()}
		}
	}
	// Not the client's Close: it would cut the attach streams of this client that may still
	// be reading the last output (the shim answers waiters once that output is written to
	// the sockets, not once it is read). They end by themselves when the shim exits.
	d.setShim(c.ID, nil)
	d.handleExit(c, run, es, xi)
}

// exitInfo is what the exit's report says about the shim that made it.
type exitInfo struct {
	gone    bool // the shim exits by itself (a final wait): no shutdown needed
	cleaned bool // the shim deleted the runtime's state and the container's cgroups
}

// refillSpare starts the next spare shim in the background (shim.Spares), if the daemon
// launches shims through spares.
func (d *Daemon) refillSpare() {
	if r, ok := d.shims.(interface{ Refill() }); ok {
		r.Refill()
	}
}

// handleExit records an exit and then applies --rm or the restart policy. xi is what is
// known of the shim that reported it (nothing after a daemon restart).
func (d *Daemon) handleExit(c *container.Container, run *container.Run, es shim.ExitStatus, xi exitInfo) {
	defer func() {
		close(run.Done)
		if c.HostConfig.AutoRemove {
			// The spare held back at the start of a --rm container (startLocked), once
			// the exit went out and the attached client, if any, let go of the run: its
			// fork, exec and Go start competed with the client's last moments (the exit
			// frame's read, the process's exit) on a short run.
			run.AfterHolds(d.refillSpare)
		}
	}()
	d.networkDown(c) // CNI DEL once the container is gone (network.go)
	// The exit is a fact: it is recorded in memory even if the disk refuses it (the record
	// then still says running, and a restarted daemon finds the exit in exit.json).
	c.Lock()
	if es.ExitedAt.IsZero() {
		es.ExitedAt = time.Now()
	}
	err := c.SetExitedLocked(es.Code, es.ExitedAt.UTC(), es.OOMKilled)
	manual := c.ManualStop
	c.Unlock()
	autoRemove := c.HostConfig.AutoRemove
	// The image rootfs is mounted only while the container runs.
	d.unmountRootfs(c)
	if err == nil {
		// A --rm container's exit is not written: its removal follows at once, and a
		// daemon that dies before it ends removes every --rm container that is not
		// running (restore), whichever state its record says.
		if !autoRemove {
			if serr := d.store.Save(c); serr != nil {
				d.log.Error("saving the exit of a container", "id", c.ID, "err", serr)
			}
		}
		// Before Exited: whoever waits for the exit (stop, restart) publishes after the die.
		if es.OOMKilled {
			d.event(c, "oom")
		}
		d.event(c, "die", "exitCode", strconv.Itoa(es.Code))
	}
	close(run.Exited)
	var te *container.ErrTransition
	if errors.As(err, &te) && te.NoChange() {
		d.log.Debug("exit already recorded: a second report of it is ignored", "id", c.ID)
		return
	}
	if err != nil {
		d.log.Warn("exit of a container in an unexpected state", "id", c.ID, "err", err)
		return
	}
	d.log.Info("container exited", "id", c.ID, "code", es.Code)
	if autoRemove {
		if fault.Point(fault.ExitBeforeAutoRemove) != nil {
			return
		}
		if err := d.removeExited(c, xi); err != nil && !isErr(err, errNotFound) {
			d.log.Error("auto-remove", "id", c.ID, "err", err)
		}
		return
	}
	if !manual && d.shouldRestart(c, es.Code) {
		d.restartAfterExit(c, es.Code)
	}
}

// shouldRestart applies the restart policy to an exit the user did not ask for.
func (d *Daemon) shouldRestart(c *container.Container, code int) bool {
	rp := c.HostConfig.RestartPolicy
	switch rp.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (rp.MaximumRetryCount == 0 || c.RestartCount < rp.MaximumRetryCount)
	case "on-reboot":
		return code == 129
	}
	return false
}

// restartAfterExit starts the container again, backing off a little on fast loops. The
// container is Restarting during the back-off; a user's stop or start, or a removal, in that
// time takes it out of Restarting, and the policy then leaves it alone.
func (d *Daemon) restartAfterExit(c *container.Container, code int) {
	var n int
	if err := d.store.Update(c, func(c *container.Container) error {
		if err := c.SetStatusLocked(container.Restarting); err != nil {
			return err
		}
		c.RestartCount++
		n = c.RestartCount
		return nil
	}); err != nil {
		d.log.Error("restart policy: cannot enter restarting", "id", c.ID, "err", err)
		return
	}
	delay := 100 * time.Millisecond
	if c.HostConfig.RestartPolicy.Name != "on-reboot" {
		delay = time.Duration(min(n, 10)) * 100 * time.Millisecond
	}
	select {
	case <-time.After(delay):
	case <-d.done:
		// The daemon is closing: the record stays Restarting, and the next daemon's
		// recovery starts the back-off over.
		return
	}
	c.Op.Lock()
	defer c.Op.Unlock()
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed || c.Status() != container.Restarting || !d.store.Known(c.ID) {
		return
	}
	d.log.Info("restarting container per its restart policy", "id", c.ID, "policy", c.HostConfig.RestartPolicy.Name, "exit", code)
	if err := d.startLocked(context.Background(), c, nil); err != nil {
		d.log.Error("restart failed", "id", c.ID, "err", err)
		if err := d.store.Update(c, func(c *container.Container) error {
			if container.Status(c.State.Status) != container.Restarting {
				return nil
			}
			return c.SetStatusLocked(container.Exited)
		}); err != nil {
			d.log.Error("restart failed: recording it", "id", c.ID, "err", err)
		}
	}
}

// hostChannelStatus is the live view of a container's channels for inspect.
func (d *Daemon) hostChannelStatus(c *container.Container) []types.HostChannelStatus {
	out := []types.HostChannelStatus{}
	for _, ch := range c.HostConfig.HostChannels {
		m, used := d.channels.Status(ch)
		out = append(out, types.HostChannelStatus{HostChannel: ch, Mounted: m, UsedBytes: used})
	}
	return out
}

// loadSpec reads the container's OCI spec (config.json in its bundle).
func (d *Daemon) loadSpec(c *container.Container) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(d.store.Dir(c.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if s.Process == nil {
		return nil, fmt.Errorf("container %s: its OCI spec has no process", c.Name)
	}
	return &s, nil
}

// setConsoleSize records the initial terminal size in the container's OCI spec.
func (d *Daemon) setConsoleSize(c *container.Container, w, h uint16) error {
	s, err := d.loadSpec(c)
	if err != nil {
		return err
	}
	s.Process.ConsoleSize = &specs.Box{Width: uint(w), Height: uint(h)}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(d.store.Dir(c.ID), "config.json"), data, 0o600)
}

// makeStateDir makes a container's state directory (and its parents). fresh: this call made
// it, so nothing of an earlier run of the container is in it.
func makeStateDir(dir string) (fresh bool, err error) {
	err = os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dir), 0o700); err == nil {
			err = os.Mkdir(dir, 0o700)
		}
	}
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return false, nil
		}
	}
	return false, err
}
