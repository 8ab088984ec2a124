package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/shim"
)

// The whole lifecycle through the Runtime and Shims interfaces: every runtime call the
// daemon makes is seen by the fake.
func TestLifecycleThroughFakes(t *testing.T) {
	f := newFakeDaemon(t)
	ctx := context.Background()
	c := f.create("web", nil)
	if c.Status() != container.Created || c.CgroupsPath != "/isulad/"+c.ID {
		t.Fatalf("created: %s %s", c.Status(), c.CgroupsPath)
	}
	if _, err := os.Stat(filepath.Join(f.store.Dir(c.ID), "config.json")); err != nil {
		t.Fatalf("no OCI spec: %v", err)
	}
	if err := f.Start(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	if st := c.Snapshot(); st.Status != "running" || st.Pid == 0 {
		t.Fatalf("started: %+v", st)
	}
	if err := f.Start(ctx, c, &Streams{}); !isErr(err, errConflict) {
		t.Fatalf("attached start of a running container: %v", err)
	}
	if rows, _ := f.List(false, nil); len(rows) != 1 || rows[0].State != "running" {
		t.Fatalf("ps: %+v", rows)
	}
	if _, rows, err := f.Top(ctx, c, []string{"-o", "pid"}); err != nil || rows != nil && len(rows) > 1 {
		t.Fatalf("top: %v %v", rows, err)
	}
	if err := f.Pause(ctx, c); err != nil || c.Status() != container.Paused {
		t.Fatalf("pause: %v %s", err, c.Status())
	}
	if err := f.Pause(ctx, c); !isErr(err, errConflict) {
		t.Fatalf("second pause: %v", err)
	}
	if err := f.Unpause(ctx, c); err != nil || c.Status() != container.Running {
		t.Fatalf("unpause: %v %s", err, c.Status())
	}
	if err := f.Remove(ctx, c, false); !isErr(err, errConflict) {
		t.Fatalf("rm of a running container without -f: %v", err)
	}
	if err := f.Stop(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	if st := c.Snapshot(); st.Status != "exited" || st.ExitCode != 143 || !c.ManualStop {
		t.Fatalf("stopped: %+v manual=%v", st, c.ManualStop)
	}
	if err := f.Kill(ctx, c, ""); !isErr(err, errConflict) {
		t.Fatalf("kill of a stopped container: %v", err)
	}
	if err := f.Restart(ctx, c, 1); err != nil || c.Status() != container.Running {
		t.Fatalf("restart: %v %s", err, c.Status())
	}
	if err := f.Kill(ctx, c, "SIGUSR1"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, container.Exited)
	if code := c.Snapshot().ExitCode; code != 138 {
		t.Fatalf("exit after SIGUSR1: %d", code)
	}
	if err := f.Rename(c, "web2"); err != nil {
		t.Fatal(err)
	}
	if j := f.Inspect(c); j.Name != "/web2" || j.State.Status != "exited" {
		t.Fatalf("inspect: %s %s", j.Name, j.State.Status)
	}
	if err := f.Start(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(ctx, c, true); err != nil {
		t.Fatal(err)
	}
	if f.store.Known(c.ID) {
		t.Fatalf("still known after rm -f")
	}
	if _, err := os.Stat(f.store.Dir(c.ID)); !os.IsNotExist(err) {
		t.Fatalf("directory left: %v", err)
	}
	if !slices.Contains(f.w.Calls("delete "), "delete "+c.ID+" "+c.CgroupsPath) {
		t.Fatalf("the runtime was never asked to delete the container and its cgroups: %v", f.w.Calls("delete "))
	}
}

func TestStartFailureKeepsContainer(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.create("bad", nil)
	f.w.startErr = errors.New(`exec: "nosuch": executable file not found in $PATH`)
	err := f.Start(context.Background(), c, nil)
	var se *StartError
	if !errors.As(err, &se) || se.Code != 127 {
		t.Fatalf("start: %v", err)
	}
	if st := c.Snapshot(); st.Status != "created" || st.ExitCode != 127 || st.Error == "" {
		t.Fatalf("after a failed start: %+v", st)
	}
	if len(f.w.Calls("shutdown "+c.ID)) == 0 || len(f.w.Calls("delete "+c.ID)) == 0 {
		t.Fatalf("the failed start was not undone: %v", f.w.calls)
	}
}

func TestRecoverReconnectsAndSeesExit(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("long", nil)
	f.restart()
	c2, err := f.store.Get("long")
	if err != nil || c2 == c {
		t.Fatalf("reloaded: %v", err)
	}
	if st := c2.Snapshot(); st.Status != "running" || st.Pid != c.Snapshot().Pid {
		t.Fatalf("after restart: %+v", st)
	}
	f.w.Exit(c2.ID, 3)
	waitStatus(t, c2, container.Exited)
	if code := c2.Snapshot().ExitCode; code != 3 {
		t.Fatalf("exit code %d", code)
	}
}

func TestRecoverShimGone(t *testing.T) {
	f := newFakeDaemon(t)
	withFile := f.run("with-exit-file", nil)
	without := f.run("without", nil)
	f.Daemon.Close()
	f.bg.Wait()
	f.w.Crash(withFile.ID)
	f.w.Crash(without.ID)
	if err := os.WriteFile(filepath.Join(f.stateDir(withFile.ID), shim.ExitFile), []byte(`{"Code":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f.Daemon = nil
	f.restart()
	for name, code := range map[string]int{"with-exit-file": 7, "without": 137} {
		c, err := f.store.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, c)
		if st := c.Snapshot(); st.Status != "exited" || st.ExitCode != code {
			t.Errorf("%s: %+v, want exited %d", name, st, code)
		}
	}
	if len(f.w.Calls("kill "+without.ID)) == 0 {
		t.Errorf("the container without a shim and exit status was not killed")
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("flaky", func(r *types.CreateRequest) {
		r.HostConfig.RestartPolicy = types.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	})
	for i := 1; i <= 2; i++ {
		run := c.CurrentRun()
		f.w.Exit(c.ID, 1)
		<-run.Done
		waitStatus(t, c, container.Running)
		if c.RestartCount != i {
			t.Fatalf("restart count %d, want %d", c.RestartCount, i)
		}
	}
	f.w.Exit(c.ID, 1)
	waitDone(t, c)
	if c.Status() != container.Exited {
		t.Fatalf("restarted past the maximum: %s", c.Status())
	}
}

func TestAutoRemove(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("rm", func(r *types.CreateRequest) { r.HostConfig.AutoRemove = true })
	f.w.Exit(c.ID, 0)
	waitDone(t, c)
	if f.store.Known(c.ID) {
		t.Fatalf("--rm container still there after its exit")
	}
}

func TestExecThroughShim(t *testing.T) {
	f := newFakeDaemon(t)
	c := f.run("x", nil)
	code, err := f.Exec(context.Background(), c, types.ExecConfig{Cmd: []string{"ls", "/"}}, ExecStreams{})
	if err != nil || code != 0 || len(f.w.Calls("exec "+c.ID+" ls /")) != 1 {
		t.Fatalf("exec: %d %v %v", code, err, f.w.calls)
	}
}
