package quickexit

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// allowedCPUs is the Cpus_allowed_list of every thread of this process.
func allowedCPUs(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			continue // the thread is gone
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				out[task.Name()] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

func TestGatherPinsEveryThread(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: every thread is on it already, nothing to check")
	}
	// More threads: goroutines locked to theirs, parked until the end.
	var wg, started sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			started.Done()
			<-release
		}()
	}
	defer func() { close(release); wg.Wait() }()
	started.Wait()
	before := allowedCPUs(t)
	if len(before) < 5 {
		t.Fatalf("want at least 5 threads, have %d", len(before))
	}
	Gather()
	after := allowedCPUs(t)
	// Every thread there was when Gather was called (the runtime may start one of its own
	// at any time, from a thread that was not pinned yet).
	var cpu string
	for tid := range before {
		set, ok := after[tid]
		if !ok {
			continue // gone
		}
		if strings.ContainsAny(set, ",-") {
			t.Fatalf("thread %s may run on CPUs %s, want one", tid, set)
		}
		if cpu == "" {
			cpu = set
		} else if set != cpu {
			t.Fatalf("threads on CPUs %s and %s, want all on one", cpu, set)
		}
	}
}

func TestExitCode(t *testing.T) {
	if os.Getenv("QUICKEXIT_HELPER") == "1" {
		Exit(7)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitCode$")
	cmd.Env = append(os.Environ(), "QUICKEXIT_HELPER=1")
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 7 {
		t.Fatalf("helper: %v, want exit status 7", err)
	}
}
