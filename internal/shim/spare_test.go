package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func waitSpareExit(t *testing.T, sp *spare) {
	t.Helper()
	select {
	case <-sp.exited:
	case <-time.After(10 * time.Second):
		sp.cmd.Process.Kill()
		t.Fatal("the spare shim did not exit")
	}
}

// adoptSpare starts a spare and hands it the config of a container running args.
func adoptSpare(t *testing.T, rt string, args ...string) (*env, *spare, *Client) {
	t.Helper()
	e := newEnv(t, rt, opts{args: args})
	// As the daemon does for a state directory it has just made: the spare skips the
	// removals of an earlier run's files (and writes its pid files in place).
	e.cfg.FreshState = true
	sp, err := startSpare(shimBin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.adopt(testCtx(t), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, sp, c
}

// A spare takes the container's config and is then its shim: it runs it, reports its
// exit, and its shim.pid is the spare's own pid.
func TestSpareAdopted(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e, sp, c := adoptSpare(t, rt, "sh", "-c", "echo hi; exit 4")
		t.Cleanup(func() { c.Close() })
		b, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, ShimPidFile))
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(sp.cmd.Process.Pid) {
			t.Errorf("shim.pid %q, the spare is %d", got, sp.cmd.Process.Pid)
		}
		// The daemon kills a stuck shim through PeerPidFD: it must be the spare's process,
		// whose command line does not name the container.
		pfd, err := c.PeerPidFD(ctx)
		if err != nil {
			t.Fatalf("PeerPidFD: %v", err)
		}
		if got := pidfdPid(t, pfd); got != sp.cmd.Process.Pid {
			t.Errorf("PeerPidFD is of pid %d, the spare is %d", got, sp.cmd.Process.Pid)
		}
		unix.Close(pfd)
		// The start goes on the socket pair of the adoption, which the shim serves.
		if c.first == nil {
			t.Fatal("the adopted client has no socket pair for its start")
		}
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if c.first != nil {
			t.Error("the start did not take the socket pair")
		}
		st, err := c.Wait(ctx)
		if err != nil {
			if !errors.Is(err, ErrShimGone) {
				t.Fatal(err)
			}
			ef, _ := ReadExitFile(e.cfg.StateDir)
			if ef == nil {
				t.Fatal("no exit file")
			}
			st = *ef
		}
		if st.Code != 4 {
			t.Errorf("exit %+v, want 4", st)
		}
		waitSpareExit(t, sp)
		// The runtime's state went with the fast delete (moved into the shim's state
		// directory, which goes with the container; the next shim removes it).
		if _, err := os.Stat(filepath.Join(e.cfg.RuntimeRoot, e.cfg.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the runtime's state of the container is still there: %v", err)
		}
		removeDeletedRuntimeState(e.cfg.StateDir)
		if _, err := os.Stat(filepath.Join(e.cfg.StateDir, deletedRuntimeState)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the moved runtime state was not removed: %v", err)
		}
		if es := e.logEntries(); len(es) != 1 || es[0].Log != "hi\n" {
			t.Errorf("log %+v", es)
		}
	})
}

// An adopted shim whose socket pair is closed unused (a client that never started it) goes
// on serving on its socket.
func TestSpareFirstUnused(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e, sp, c := adoptSpare(t, rt, "sh", "-c", "exit 3")
		c.Close()
		c2, err := Connect(ctx, e.cfg.Socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c2.Close() })
		if c2.first != nil {
			t.Fatal("a connected client has a socket pair")
		}
		if _, err := c2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		st, _, err := c2.WaitFinal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Code != 3 {
			t.Errorf("exit %+v, want 3", st)
		}
		waitSpareExit(t, sp)
	})
}

// A spare that is let go (EOF on its fd 3: the daemon closed it or died) exits, having
// made nothing; one given a config it cannot serve says why and exits.
func TestSpareLetGo(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	sp, err := startSpare(shimBin)
	if err != nil {
		t.Fatal(err)
	}
	sp.conn.Close()
	waitSpareExit(t, sp)
	if !sp.cmd.ProcessState.Success() {
		t.Errorf("spare let go: %v", sp.cmd.ProcessState)
	}

	sp, err = startSpare(shimBin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{ID: "x", Bundle: dir, Runtime: "/nonexistent/runtime", StateDir: filepath.Join(dir, "state"),
		Socket: filepath.Join(dir, "sock"), LogPath: filepath.Join(dir, "nodir", "nodir", "log")}
	os.WriteFile(filepath.Join(dir, "nodir"), nil, 0o600) // the log cannot be opened
	if _, err := sp.adopt(testCtx(t), cfg); err == nil || errors.Is(err, errSpareGone) {
		t.Fatalf("adopting with an unusable log path: %v", err)
	}
	waitSpareExit(t, sp)
	if _, err := os.Stat(cfg.Socket); !os.IsNotExist(err) {
		t.Errorf("a failed spare left its socket: %v", err)
	}
}

// Spares: launches keep working whether a spare is ready or not, and Close lets the
// spare go.
func TestSparesLaunch(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		s := NewSpares(shimBin)
		for i := 0; i < 3; i++ {
			e := newEnv(t, rt, opts{args: []string{"true"}})
			c, err := s.Launch(ctx, e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			s.Refill()
			if _, err := c.Wait(ctx); err != nil && !errors.Is(err, ErrShimGone) {
				t.Fatal(err)
			}
			c.Close()
		}
		s.mu.Lock()
		var sps []*spare
		for _, p := range s.pools {
			if p.spare != nil {
				sps = append(sps, p.spare)
			}
		}
		s.mu.Unlock()
		s.Close()
		for _, sp := range sps {
			waitSpareExit(t, sp)
		}
	})
}

// pidfdPid is the pid a pidfd refers to (its fdinfo's Pid line).
func pidfdPid(t *testing.T, pfd int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", pfd))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pid:"); ok {
			pid, _ := strconv.Atoi(strings.TrimSpace(v))
			return pid
		}
	}
	t.Fatalf("no Pid in the fdinfo of a pidfd: %s", b)
	return 0
}
