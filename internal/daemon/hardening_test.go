package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/shim"
	"golang.org/x/sys/unix"
)

// Issue 10 #7: a removal that fails leaves the container Dead, and rm -f tries again,
// also after a daemon restart.
func TestFailedRemovalCanBeRetried(t *testing.T) {
	f := newFakeDaemon(t)
	ctx := context.Background()
	c := f.run("stuck", nil)
	f.w.deleteErr = errors.New("device or resource busy")
	if err := f.Remove(ctx, c, true); err == nil {
		t.Fatalf("removal succeeded although the runtime could not delete the container")
	}
	if st := c.Snapshot(); st.Status != "dead" || !st.Dead {
		t.Fatalf("after a failed removal: %+v", st)
	}
	if rows, _ := f.List(true, nil); len(rows) != 1 || rows[0].Status != "Dead" {
		t.Fatalf("ps -a: %+v", rows)
	}
	if err := f.Start(ctx, c, nil); !isErr(err, errConflict) {
		t.Fatalf("start of a dead container: %v", err)
	}
	f.restart()
	c, err := f.store.Get("stuck")
	if err != nil || c.Status() != container.Dead {
		t.Fatalf("after a daemon restart: %v %v", c, err)
	}
	if err := f.Remove(ctx, c, true); err != nil {
		t.Fatalf("rm -f of a dead container: %v", err)
	}
	if f.store.Known(c.ID) {
		t.Fatalf("still known")
	}
}

// Issue 10 #16: a removal interrupted by the daemon's death is finished before the restarted
// daemon answers anyone, so no ps lists it.
func TestRestartFinishesInterruptedRemoval(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("going", nil)
	if err := f.Stop(context.Background(), c, 1); err != nil {
		t.Fatal(err)
	}
	// What markRemoving saved before the daemon was killed.
	if err := f.store.Update(c, func(c *container.Container) error { return c.SetStatusLocked(container.Removing) }); err != nil {
		t.Fatal(err)
	}
	// And a --rm container whose exit was recorded but not yet acted on.
	rm := f.create("rm", func(r *types.CreateRequest) { r.HostConfig.AutoRemove = true })
	if err := f.store.Update(rm, func(c *container.Container) error { return c.SetExitedLocked(0, time.Now(), false) }); err != nil {
		t.Fatal(err)
	}
	// And a --rm container that never started (its record is not durable: it does not
	// outlive the daemon).
	created := f.create("rm-created", func(r *types.CreateRequest) { r.HostConfig.AutoRemove = true })
	if _, err := os.Stat(filepath.Join(f.store.Dir(created.ID), "committed")); !os.IsNotExist(err) {
		t.Fatalf("a --rm container got a durable commit mark: %v", err)
	}
	f.restart()
	if rows, _ := f.List(true, nil); len(rows) != 0 {
		t.Fatalf("ps -a right after the restart lists %+v", rows)
	}
	for _, x := range []*container.Container{c, rm, created} {
		if _, err := os.Stat(f.store.Dir(x.ID)); !os.IsNotExist(err) {
			t.Fatalf("directory of the removed container %s: %v", x.Name, err)
		}
	}
}

// Issue 10 #14: a state change the disk refuses fails the operation, and memory keeps what
// the disk has.
func TestPersistenceFailureFailsTheOperation(t *testing.T) {
	f := newFakeDaemon(t)
	ctx := context.Background()
	c := f.run("full", nil)
	stopped := f.create("stopped", nil)
	for _, x := range []*container.Container{c, stopped} {
		dir := f.store.Dir(x.ID)
		os.RemoveAll(dir)
		if err := os.WriteFile(dir, nil, 0o600); err != nil { // the record cannot be written
			t.Fatal(err)
		}
	}
	if err := f.Pause(ctx, c); err == nil || c.Status() != container.Running {
		t.Fatalf("pause: err=%v status=%s", err, c.Status())
	}
	if len(f.w.Calls("resume "+c.ID)) != 1 {
		t.Fatalf("the container paused for a state that was not saved was not resumed: %v", f.w.calls)
	}
	if err := f.Kill(ctx, c, "SIGKILL"); err == nil || c.ManualStop || c.Status() != container.Running {
		t.Fatalf("kill: err=%v manual=%v status=%s", err, c.ManualStop, c.Status())
	}
	if err := f.Stop(ctx, c, 1); err == nil || c.Status() != container.Running {
		t.Fatalf("stop: err=%v status=%s", err, c.Status())
	}
	if err := f.Rename(c, "other"); err == nil || c.Name != "full" {
		t.Fatalf("rename: err=%v name=%s", err, c.Name)
	}
	if _, err := f.store.Get("full"); err != nil {
		t.Fatalf("the old name no longer resolves after a failed rename: %v", err)
	}
	if err := f.Start(ctx, stopped, nil); err == nil || stopped.Status() != container.Created {
		t.Fatalf("start: err=%v status=%s", err, stopped.Status())
	}
	// The start fails where it first writes into the container's directory: since the
	// network's files live there, that can be before the shim is launched; a shim that was
	// launched must have been shut down.
	if len(f.w.Calls("launch "+stopped.ID)) != 0 && len(f.w.Calls("shutdown "+stopped.ID)) == 0 {
		t.Fatalf("a start whose state was not saved was not undone: %v", f.w.calls)
	}
}

// Issue 10 #15: a second report of one exit is a no-op, not a second exit.
func TestSecondExitHandlingIsNoOp(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("once", nil)
	f.w.Exit(c.ID, 3)
	waitDone(t, c)
	first := c.Snapshot()
	f.handleExit(c, c.NewRun(), shim.ExitStatus{Code: 9, ExitedAt: time.Now().Add(time.Hour)}, exitInfo{})
	if st := c.Snapshot(); st.ExitCode != 3 || !st.FinishedAt.Equal(first.FinishedAt) {
		t.Fatalf("a second exit report overwrote the first: %+v", st)
	}
}

// Issue 10 #15: the restart policy's back-off is the Restarting state; a stop in it ends it.
func TestRestartingDuringBackOff(t *testing.T) {
	f := newFakeDaemon(t)
	ctx := context.Background()
	c := f.run("loop", func(r *types.CreateRequest) { r.HostConfig.RestartPolicy = types.RestartPolicy{Name: "always"} })
	run := c.CurrentRun()
	f.w.Exit(c.ID, 1)
	<-run.Exited
	waitStatus(t, c, container.Restarting)
	if rows, _ := f.List(false, nil); len(rows) != 1 || rows[0].State != "restarting" {
		t.Fatalf("ps during the back-off: %+v", rows)
	}
	<-run.Done
	if c.Status() != container.Running || c.RestartCount != 1 {
		t.Fatalf("after the back-off: %s, count %d", c.Status(), c.RestartCount)
	}
	// Exit again (back-off 200ms) and stop during it: no start follows.
	run = c.CurrentRun()
	f.w.Exit(c.ID, 1)
	<-run.Exited
	waitStatus(t, c, container.Restarting)
	if err := f.Stop(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	if c.Status() != container.Exited {
		t.Fatalf("stop during the back-off: %s", c.Status())
	}
	<-run.Done
	if c.Status() != container.Exited || len(f.w.Calls("start "+c.ID)) != 2 {
		t.Fatalf("restarted after a stop in the back-off: %s %v", c.Status(), f.w.Calls("start "))
	}
}

// Issue 10 #12: a client that goes away while the runtime starts the container does not
// cancel the start: the undo must not shut the shim down under a starting container.
func TestStartOutlivesTheClient(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.create("slow", nil)
	f.w.startGate, f.w.startEntered = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- f.Start(ctx, c, nil) }()
	<-f.w.startEntered
	cancel() // the client disconnects mid-start
	select {
	case err := <-res:
		t.Fatalf("start ended with the client's context: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(f.w.startGate)
	if err := <-res; err != nil {
		t.Fatalf("start: %v", err)
	}
	if c.Status() != container.Running || len(f.w.Calls("shutdown "+c.ID)) != 0 {
		t.Fatalf("status %s, calls %v", c.Status(), f.w.calls)
	}
}

// Issue 10 #6: a running container whose record is damaged while the daemon is down is
// quarantined, and its shim and runtime are left alone; repaired, it is managed again.
func TestCorruptRecordLeavesRunningContainerAlone(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("precious", nil)
	record := filepath.Join(f.store.Dir(c.ID), "container.json")
	good, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{good[:len(good)/3], nil, []byte("{}")} {
		f.w.mu.Lock()
		f.w.calls = nil // what the start did is not the question
		f.w.mu.Unlock()
		f.Daemon.Close()
		f.bg.Wait()
		if err := os.WriteFile(record, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		f.Daemon = nil
		f.restart()
		if rows, _ := f.List(true, nil); len(rows) != 0 {
			t.Fatalf("record %.20q: listed %+v", bad, rows)
		}
		if !f.store.Owns(c.ID) {
			t.Fatalf("record %.20q: not owned", bad)
		}
		for _, call := range []string{"shutdown " + c.ID, "delete " + c.ID, "kill " + c.ID} {
			if calls := f.w.Calls(call); len(calls) != 0 {
				t.Fatalf("record %.20q: the quarantined container was touched: %v", bad, calls)
			}
		}
		if _, err := os.Stat(filepath.Join(f.store.Dir(c.ID), "config.json")); err != nil {
			t.Fatalf("record %.20q: its directory was touched: %v", bad, err)
		}
		if _, err := os.Stat(f.stateDir(c.ID)); err != nil {
			t.Fatalf("record %.20q: its state directory was touched: %v", bad, err)
		}
	}
	os.WriteFile(record, good, 0o600)
	f.restart()
	c2, err := f.store.Get("precious")
	if err != nil || c2.Status() != container.Running || c2.Snapshot().Pid != c.Snapshot().Pid {
		t.Fatalf("repaired: %v %v", c2, err)
	}
}

// A daemon that dies in a restart policy's back-off: the new daemon starts the back-off
// over and restarts the container, counting the restart once.
func TestRecoverInBackOff(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("loop", func(r *types.CreateRequest) { r.HostConfig.RestartPolicy = types.RestartPolicy{Name: "always"} })
	f.Daemon.Close()
	f.bg.Wait()
	// What a daemon killed in the back-off leaves: the record says restarting, nothing runs.
	f.w.Crash(c.ID)
	c.Lock()
	c.State.Status, c.State.ExitCode, c.RestartCount = string(container.Restarting), 1, 1
	c.Unlock()
	if err := f.store.Save(c); err != nil {
		t.Fatal(err)
	}
	f.Daemon = nil
	f.restart()
	c2, err := f.store.Get("loop")
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c2, container.Running)
	if c2.RestartCount != 2 {
		t.Fatalf("restart count %d, want 2", c2.RestartCount)
	}
}

// The containers' directories get ext4's "top directory" flag (spreadSubdirs) where the file
// system has it.
func TestSpreadSubdirs(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS); err != nil {
		t.Skipf("the file system of %s has no inode flags (%v): nothing to set", dir, err)
	}
	spreadSubdirs(dir)
	spreadSubdirs(dir) // set already: left as it is
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if flags&fsTopdirFL == 0 {
		var st unix.Statfs_t
		unix.Fstatfs(fd, &st)
		if st.Type == unix.EXT4_SUPER_MAGIC {
			t.Fatalf("ext4 directory without the top-directory flag after spreadSubdirs (flags %#x)", flags)
		}
		t.Skipf("the file system of %s (magic %#x) keeps no top-directory flag", dir, st.Type)
	}
}
