package reaper

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func spawn(t *testing.T, script string) int {
	t.Helper()
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func wait(t *testing.T, c <-chan Exit) Exit {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("timeout")
	}
	return Exit{}
}

func TestReaper(t *testing.T) {
	r := New()
	stop := make(chan struct{})
	defer close(stop)
	go r.Run(stop)

	// Registered before the exit.
	pid := spawn(t, "sleep 0.2; exit 3")
	if e := wait(t, r.Wait(pid)); e.Pid != pid || e.Status != 3 || e.Signal != 0 {
		t.Fatalf("%+v", e)
	}

	// Exit reaped before anybody asked: kept.
	pid = spawn(t, "exit 7")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		_, ok := r.kept[pid]
		r.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exit not kept")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e := wait(t, r.Wait(pid)); e.Status != 7 {
		t.Fatalf("%+v", e)
	}

	// Killed by a signal: 128+N.
	pid = spawn(t, "sleep 100")
	c := r.Wait(pid)
	syscall.Kill(pid, syscall.SIGKILL)
	if e := wait(t, c); e.Status != 137 || e.Signal != 9 {
		t.Fatalf("%+v", e)
	}

	// Many at once, several waiters for one pid.
	pids := map[int]<-chan Exit{}
	for i := 0; i < 20; i++ {
		p := spawn(t, "exit 1")
		pids[p] = r.Wait(p)
	}
	for p, c := range pids {
		if e := wait(t, c); e.Pid != p || e.Status != 1 {
			t.Fatalf("%+v", e)
		}
	}
	pid = spawn(t, "sleep 0.1")
	c1, c2 := r.Wait(pid), r.Wait(pid)
	wait(t, c1)
	wait(t, c2)
}

func TestKeptIsBounded(t *testing.T) {
	r := New()
	for i := 0; i < maxKept+10; i++ {
		r.dispatch(Exit{Pid: 100000 + i})
	}
	if len(r.kept) > maxKept {
		t.Fatalf("%d kept", len(r.kept))
	}
}

// A pidfd taken while the child runs signals it; once the child is reaped, PidFD refuses,
// and the old pidfd does not reach a process that got the pid since.
func TestPidFD(t *testing.T) {
	r := New()
	stop := make(chan struct{})
	defer close(stop)
	go r.Run(stop)
	pid := spawn(t, "sleep 30")
	fd, err := r.PidFD(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	c := r.Wait(pid)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e.Signal != int(unix.SIGKILL) {
		t.Fatalf("%+v", e)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != unix.ESRCH {
		t.Fatalf("signal through the pidfd of a reaped child: %v", err)
	}
	// Exited and kept (nobody waited yet): refused.
	pid = spawn(t, "exit 0")
	for i := 0; ; i++ {
		r.mu.Lock()
		_, kept := r.kept[pid]
		r.mu.Unlock()
		if kept {
			break
		}
		if i > 1000 {
			t.Fatal("exit not kept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if fd, err := r.PidFD(pid); err != unix.ESRCH {
		unix.Close(fd)
		t.Fatalf("PidFD of a reaped child: %v", err)
	}
}
