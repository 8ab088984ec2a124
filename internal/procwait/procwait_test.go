package procwait

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// Many children waited for at once hold no thread each, and every Wait returns with its
// child's own status once it exits.
func TestWaitHoldsNoThread(t *testing.T) {
	const n = 40
	before := threads(t)
	type res struct {
		i   int
		err error
	}
	done := make(chan res, n)
	release, err := os.CreateTemp(t.TempDir(), "release")
	if err != nil {
		t.Fatal(err)
	}
	release.Close()
	os.Remove(release.Name())
	for i := 0; i < n; i++ {
		// Each child waits for the release file, then exits with its own code.
		cmd := exec.Command("/bin/sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.02; done; exit $2", "sh", release.Name(), strconv.Itoa(i%7))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func(i int) { done <- res{i, Wait(cmd)} }(i)
	}
	time.Sleep(300 * time.Millisecond) // let every Wait park
	during := threads(t)
	if during-before >= n/2 {
		t.Errorf("threads went from %d to %d with %d children waited for: a thread per wait", before, during, n)
	}
	if err := os.WriteFile(release.Name(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < n; k++ {
		select {
		case r := <-done:
			code := 0
			if ee, ok := r.err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if r.err != nil {
				t.Fatalf("child %d: %v", r.i, r.err)
			}
			if code != r.i%7 {
				t.Errorf("child %d exited %d, want %d", r.i, code, r.i%7)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d waits did not return", n-k, n)
		}
	}
}

// A child that exited before Wait is reaped at once.
func TestWaitExitedBefore(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c := make(chan error, 1)
	go func() { c <- Wait(cmd) }()
	select {
	case err := <-c:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait of an exited child did not return")
	}
}
