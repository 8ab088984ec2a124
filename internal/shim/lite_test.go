package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/testenv"
	"github.com/isulad-go/isulad/internal/unixsock"
)

// The light shim (cmd/isulad-shim-lite) against the real runtimes: the starts it serves, the
// handovers to the Go shim (this package's binary, beside it) at everything else. Every case
// runs a build with AddressSanitizer and UndefinedBehaviorSanitizer; TestLiteStatic runs the
// static build that ships.

var (
	liteBin, liteSanBin string // beside shimBin
	liteSkip            string
)

// buildLite builds the light shim beside shimBin, as scripts/build-shim-lite.sh builds it, and
// a sanitizer build.
func buildLite(dir string) {
	root, err := filepath.Abs("../..")
	if err != nil {
		liteSkip = err.Error()
		return
	}
	liteBin = filepath.Join(dir, "isulad-shim-lite")
	if out, err := exec.Command(filepath.Join(root, "scripts", "build-shim-lite.sh"), liteBin).CombinedOutput(); err != nil {
		liteSkip = fmt.Sprintf("scripts/build-shim-lite.sh (needs cc, libc6-dev): %v\n%s", err, out)
		return
	}
	liteSanBin = filepath.Join(dir, "isulad-shim-lite-san")
	cmd := exec.Command("cc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Wshadow", "-Wformat=2", "-Werror",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer",
		"-o", liteSanBin, filepath.Join(root, "cmd", "isulad-shim-lite", "lite.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		liteSkip = fmt.Sprintf("the sanitizer build of the light shim: %v\n%s", err, out)
	}
}

// liteEnv is a container of args for the light shim bin: its config as the daemon makes it
// for a detached start in a state directory it has just made.
func liteEnv(t *testing.T, rt string, o opts) *env {
	t.Helper()
	if liteSkip != "" {
		testenv.Missing(t, "%s", liteSkip)
	}
	e := newEnv(t, rt, o)
	e.cfg.FreshState, e.cfg.Detached = true, true
	t.Cleanup(func() { checkSanitizers(t, e) })
	return e
}

// checkSanitizers fails the test if the sanitizer build reported anything (its stderr is the
// container's shim.log).
func checkSanitizers(t *testing.T, e *env) {
	b, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, ShimLogFile))
	for _, m := range []string{"AddressSanitizer", "runtime error:", "LeakSanitizer", "UndefinedBehaviorSanitizer"} {
		if strings.Contains(string(b), m) {
			t.Errorf("the light shim's sanitizers reported:\n%s", b)
			return
		}
	}
}

// adoptLite starts a spare of bin and hands it e's config.
func adoptLite(t *testing.T, e *env, bin string) (*spare, *Client) {
	t.Helper()
	// No leak report at a spare's exit: it keeps its config for its life.
	t.Setenv("ASAN_OPTIONS", "detect_leaks=0")
	sp, err := startSpare(bin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.adopt(testCtx(t), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return sp, c
}

// exeOf is the program process pid runs.
func exeOf(pid int) string {
	p, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return filepath.Base(p)
}

const loopScript = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"

// A quiet container is served by the light shim alone until a request it does not serve (a
// kill): then the Go shim, in the same process, kills it and reports its exit to the wait the
// light shim held.
func TestLiteQuietThenKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"sh", "-c", loopScript}})
		sp, c := adoptLite(t, e, liteSanBin)
		pid, err := c.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		var st ExitStatus
		go func() {
			var err error
			st, err = c.Wait(ctx)
			waited <- err
		}()
		shim := sp.cmd.Process.Pid
		if got := e.shimPid(); got != shim {
			t.Errorf("shim.pid %d, the spare is %d", got, shim)
		}
		b, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, InitPidFile))
		if string(b) != strconv.Itoa(pid) {
			t.Errorf("init.pid %q, the start said %d", b, pid)
		}
		// Let the wait reach the shim and time pass: still the light shim.
		time.Sleep(300 * time.Millisecond)
		if exe := exeOf(shim); !strings.HasPrefix(exe, LiteShim) {
			t.Fatalf("the shim runs %q before any request but a wait", exe)
		}
		if ents, _ := os.ReadDir(e.cfg.StateDir); len(ents) != 3 { // shim.pid, init.pid, shim.log
			t.Errorf("state directory: %v", ents)
		}
		if err := c.Kill(ctx, int(syscall.SIGTERM), false); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil && !errors.Is(err, ErrShimGone) {
			t.Fatal(err)
		}
		if err == nil && st.Code != 0 {
			t.Errorf("exit %+v, want 0", st)
		}
		ef, _ := ReadExitFile(e.cfg.StateDir)
		if ef == nil || ef.Code != 0 {
			t.Errorf("exit.json %+v", ef)
		}
		waitSpareExit(t, sp)
		if _, err := os.Stat(filepath.Join(e.cfg.RuntimeRoot, e.cfg.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the runtime's state is still there: %v", err)
		}
	})
}

// The container's first output hands the shim over; none of it is lost, stdout and stderr
// apart, and the exit comes to the held wait.
func TestLiteOutput(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"sh", "-c", "echo out; echo err >&2; sleep 0.2; echo more; exit 3"}})
		sp, c := adoptLite(t, e, liteSanBin)
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := c.Wait(ctx)
		if err != nil && !errors.Is(err, ErrShimGone) {
			t.Fatal(err)
		}
		if err == nil && st.Code != 3 {
			t.Errorf("exit %+v, want 3", st)
		}
		waitSpareExit(t, sp)
		got := map[string]string{}
		for _, en := range e.logEntries() {
			got[en.Stream] += en.Log
		}
		if got["stdout"] != "out\nmore\n" || got["stderr"] != "err\n" {
			t.Errorf("log %q", got)
		}
	})
}

// An init that exits at once (its exit may come with the runtime's own SIGCHLD) is seen.
func TestLiteExitAtOnce(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		for i := 0; i < 3; i++ {
			ctx := testCtx(t)
			e := liteEnv(t, rt, opts{args: []string{"sh", "-c", "exit 4"}})
			sp, c := adoptLite(t, e, liteSanBin)
			if _, err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := c.Wait(ctx)
			if err != nil {
				if !errors.Is(err, ErrShimGone) {
					t.Fatal(err)
				}
				ef, _ := ReadExitFile(e.cfg.StateDir)
				if ef == nil {
					t.Fatal("no exit")
				}
				st = *ef
			}
			if st.Code != 4 {
				t.Errorf("exit %+v, want 4", st)
			}
			waitSpareExit(t, sp)
		}
	})
}

// A failed start is the Go shim's error, word for word, and leaves nothing behind.
func TestLiteStartFails(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"nosuchcmd"}})
		sp, c := adoptLite(t, e, liteSanBin)
		_, err := c.Start(ctx)
		if err == nil {
			t.Fatal("no error")
		}
		g := newEnv(t, rt, opts{args: []string{"nosuchcmd"}})
		_, gerr := g.launch(ctx).Start(ctx)
		if gerr == nil || strings.ReplaceAll(gerr.Error(), g.cfg.ID, "ID") != strings.ReplaceAll(err.Error(), e.cfg.ID, "ID") {
			t.Errorf("light shim: %v\nGo shim:    %v", err, gerr)
		}
		c.Close()
		waitSpareExit(t, sp)
		e.checkRuntimeEmpty(t, rt)
	})
}

// What the light shim does not serve it hands over before making anything: a state
// directory that is not fresh, a terminal. The shim then works as ever.
func TestLiteHandsOverUnsupported(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		for _, o := range []struct {
			name string
			set  func(*Config)
		}{
			{"not fresh", func(c *Config) { c.FreshState = false }},
			{"fault points", func(*Config) { t.Setenv("ISULAD_FAULTS", "nothing-here=error") }},
		} {
			ctx := testCtx(t)
			e := liteEnv(t, rt, opts{args: []string{"sh", "-c", "echo hi; exit 5"}})
			o.set(&e.cfg)
			sp, c := adoptLite(t, e, liteSanBin)
			if exe := exeOf(sp.cmd.Process.Pid); exe != "isulad-shim" {
				t.Errorf("%s: the adopted spare runs %q", o.name, exe)
			}
			if _, err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := c.Wait(ctx)
			if err == nil && st.Code != 5 {
				t.Errorf("%s: exit %+v", o.name, st)
			}
			waitSpareExit(t, sp)
			if es := e.logEntries(); len(es) != 1 || es[0].Log != "hi\n" {
				t.Errorf("%s: log %+v", o.name, es)
			}
		}
	})
}

// Waits held by the light shim: one whose client goes away is dropped, a state request hands
// the shim over with the others, which the exit then answers.
func TestLiteWaitersAndState(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"sh", "-c", loopScript}})
		sp, c := adoptLite(t, e, liteSanBin)
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		gone, cancel := context.WithCancel(ctx)
		goneC := make(chan error, 1)
		go func() { _, err := c.Wait(gone); goneC <- err }()
		kept := make(chan error, 2)
		for i := 0; i < 2; i++ {
			go func() {
				st, err := c.Wait(ctx)
				if err == nil && st.Code != 0 {
					err = fmt.Errorf("exit %+v", st)
				}
				kept <- err
			}()
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
		if err := <-goneC; err == nil {
			t.Error("a cancelled wait returned no error")
		}
		time.Sleep(100 * time.Millisecond)
		if exe := exeOf(sp.cmd.Process.Pid); !strings.HasPrefix(exe, LiteShim) {
			t.Fatalf("handed over by waits alone: %q", exe)
		}
		status, _, _, err := c.State(ctx)
		if err != nil || status != statusRunning {
			t.Fatalf("state %q, %v", status, err)
		}
		if exe := exeOf(sp.cmd.Process.Pid); exe != "isulad-shim" {
			t.Errorf("after a state request the shim runs %q", exe)
		}
		if err := c.Kill(ctx, int(syscall.SIGTERM), false); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := <-kept; err != nil && !errors.Is(err, ErrShimGone) {
				t.Errorf("held wait: %v", err)
			}
		}
		waitSpareExit(t, sp)
	})
}

// A request before the start hands the shim over with nothing started: the Go shim then
// starts the container itself, through the pipes the light shim made.
func TestLiteHandoverBeforeStart(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"sh", "-c", "echo hi; echo ho >&2; exit 6"}})
		sp, c := adoptLite(t, e, liteSanBin)
		if status, _, _, err := c.State(ctx); err != nil || status != statusCreated {
			t.Fatalf("state %q, %v", status, err)
		}
		if exe := exeOf(sp.cmd.Process.Pid); exe != "isulad-shim" {
			t.Errorf("after a state request the shim runs %q", exe)
		}
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := c.Wait(ctx)
		if err == nil && st.Code != 6 {
			t.Errorf("exit %+v", st)
		}
		waitSpareExit(t, sp)
		got := map[string]string{}
		for _, en := range e.logEntries() {
			got[en.Stream] += en.Log
		}
		if got["stdout"] != "hi\n" || got["stderr"] != "ho\n" {
			t.Errorf("log %q", got)
		}
	})
}

// A request that comes slowly (its line in parts) is handed over with what was read of it:
// the Go shim reads the rest and answers, nothing lost; a line of invalid UTF-8 and quotes
// too (the state passes it as bytes).
func TestLiteSlowRequest(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"sh", "-c", loopScript}})
		sp, c := adoptLite(t, e, liteSanBin)
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		ask := func(parts ...string) result {
			t.Helper()
			nc, err := unixsock.Dial(ctx, e.cfg.Socket)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			for i, p := range parts {
				if i > 0 {
					time.Sleep(300 * time.Millisecond)
				}
				nc.Write([]byte(p))
			}
			typ, b, err := readFrame(bufio.NewReader(nc), nil)
			if err != nil || typ != frameResult {
				t.Fatalf("frame %q %q: %v", typ, b, err)
			}
			var r result
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := ask(`{"op":"sta`, "te\"}\n"); r.Status != statusRunning {
			t.Errorf("state in two parts: %+v", r)
		}
		if exe := exeOf(sp.cmd.Process.Pid); exe != "isulad-shim" {
			t.Errorf("after a slow request the shim runs %q", exe)
		}
		// The request (an exec's would carry its environment) is not in the command line,
		// which every user can read.
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", sp.cmd.Process.Pid)); strings.Contains(string(b), "op") || strings.Contains(string(b), "{") {
			t.Errorf("the Go shim's command line holds the state: %q", b)
		}
		if r := ask("{\"op\":\"\xff\\\"x\"}\n"); !strings.Contains(r.Error, "unknown operation") {
			t.Errorf("a bad operation: %+v", r)
		}
		c.Kill(ctx, int(syscall.SIGKILL), true)
		c.Wait(ctx)
		waitSpareExit(t, sp)
	})
}

// A light spare the daemon lets go (EOF before a config) exits and leaves nothing.
func TestLiteLetGo(t *testing.T) {
	if liteSkip != "" {
		testenv.Missing(t, "%s", liteSkip)
	}
	t.Setenv("ASAN_OPTIONS", "detect_leaks=0")
	for _, bin := range []string{liteBin, liteSanBin} {
		sp, err := startSpare(bin)
		if err != nil {
			t.Fatal(err)
		}
		sp.conn.Close()
		waitSpareExit(t, sp)
		if code := sp.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s: exit %d", filepath.Base(bin), code)
		}
	}
}

// The static build (what make build installs) through a start, a quiet run and a kill.
func TestLiteStatic(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ctx := testCtx(t)
		e := liteEnv(t, rt, opts{args: []string{"sh", "-c", loopScript}})
		sp, c := adoptLite(t, e, liteBin)
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		rss := 0
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", sp.cmd.Process.Pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
					rss, _ = strconv.Atoi(strings.Fields(v)[0])
				}
			}
		}
		t.Logf("light shim VmRSS %d KiB", rss)
		if rss == 0 || rss > 2048 {
			t.Errorf("light shim VmRSS %d KiB, want under 2 MiB", rss)
		}
		if err := c.Kill(ctx, int(syscall.SIGKILL), true); err != nil {
			t.Fatal(err)
		}
		if st, err := c.Wait(ctx); err != nil && !errors.Is(err, ErrShimGone) {
			t.Fatal(err)
		} else if err == nil && st.Signal != int(syscall.SIGKILL) {
			t.Errorf("exit %+v", st)
		}
		waitSpareExit(t, sp)
		e.checkRuntimeEmpty(t, rt)
	})
}

// A burst of detached starts through Spares with the light shim installed takes light
// spares, not Go shims: a new light spare when none is ready.
func TestSparesLiteBurst(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		if liteSkip != "" {
			testenv.Missing(t, "%s", liteSkip)
		}
		ctx := testCtx(t)
		s := NewSpares(shimBin)
		defer s.Close()
		if s.pools[litePool].bin != liteBin {
			t.Fatalf("light pool %q, want %q", s.pools[litePool].bin, liteBin)
		}
		type one struct {
			e *env
			c *Client
		}
		var all []one
		for i := 0; i < 4; i++ {
			e := liteEnv(t, rt, opts{args: []string{"sh", "-c", loopScript}})
			c, err := s.Launch(ctx, e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			all = append(all, one{e, c})
		}
		for _, o := range all {
			pid := o.e.shimPid()
			if exe := exeOf(pid); !strings.HasPrefix(exe, LiteShim) {
				t.Errorf("shim %d runs %q", pid, exe)
			}
			if err := o.c.Kill(ctx, int(syscall.SIGKILL), true); err != nil {
				t.Fatal(err)
			}
			o.c.Wait(ctx)
			o.c.Close()
		}
	})
}
