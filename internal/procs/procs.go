// Package procs keeps the daemon's Go code on one P, except while work that can use more is in
// progress.
//
// The daemon's usual work is short handlers that mostly wait on other processes: the shims, the
// runtimes, the clients. With more than one P, a goroutine made runnable wakes an idle P's thread
// to look for work, and a contended mutex spins; on this project's machine (a 2-vCPU guest, where
// a wakeup of an idle vCPU and each timer are VM exits) that is CPU taken from the runtimes in a
// burst of starts. Measured (docs/PERFORMANCE.md, issue 14's seventh round), 100 parallel `run -d`
// with runc, 8 rounds paired with the daemon before: the daemon's CPU 43 against 45.5 ticks a
// burst, and 0.2-0.4 MiB less idle RSS; the burst's wall clock did not move (1.005x).
//
// What can use the machine's CPUs, a layer being digested and gunzipped, an archive being
// written or read, runs Wide: the daemon has the runtime's default GOMAXPROCS while at least one
// such operation is in progress, and goes back to one P when the last ends.
//
// A GOMAXPROCS in the daemon's environment is the operator's choice: then nothing is changed.
package procs

import (
	"os"
	"runtime"
	"sync"
)

var (
	mu      sync.Mutex
	managed bool // Narrow set one P: Wide and its end change GOMAXPROCS
	wide    int  // operations in progress that asked for the default
)

// Narrow puts the process on one P, unless GOMAXPROCS is in its environment or the default is
// one P already. Call it once, at the start.
func Narrow() {
	mu.Lock()
	defer mu.Unlock()
	if managed || os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) <= 1 {
		return
	}
	managed = true
	if wide == 0 {
		runtime.GOMAXPROCS(1)
	}
}

// Wide gives the process the runtime's default GOMAXPROCS until the returned function is called
// (once; later calls do nothing), and for as long as another Wide is in progress.
func Wide() (done func()) {
	mu.Lock()
	wide++
	if wide == 1 && managed {
		runtime.SetDefaultGOMAXPROCS()
	}
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			wide--
			if wide == 0 && managed {
				runtime.GOMAXPROCS(1)
			}
			mu.Unlock()
		})
	}
}
