// Package fault provides named fault points for robustness tests. They are off unless the
// environment variable ISULAD_FAULTS names them, and then cost one map lookup; with the
// variable unset, Point is a load of a nil map and a return.
//
//	ISULAD_FAULTS="create-after-mkdir=error,start-after-mount=kill"
//
// "error" makes Point return an error; "kill" SIGKILLs the current process on the spot (a
// crash at exactly that point); "sleep" pauses for 30 seconds so a test can kill the process
// from outside; "delay" pauses for 200 ms, so that what races the point happens first.
package fault

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// The named points.
const (
	CreateAfterMkdir     = "create-after-mkdir"     // host-channel directory made, record not saved
	CreateAfterRecord    = "create-after-record"    // record saved, tmpfs not mounted (start not begun)
	StartAfterMount      = "start-after-mount"      // tmpfs mounted, runtime create not run
	StartAfterCreate     = "start-after-create"     // runtime create done, start not done (shim side)
	ExitBeforeAutoRemove = "exit-before-autoremove" // exit seen, --rm removal not done
	// StartBeforeAnnounce: the runtime started init, its pid not yet announced to an attached
	// client (shim side); with "delay", a short command exits meanwhile.
	StartBeforeAnnounce = "start-before-announce"
)

var points = parse(os.Getenv("ISULAD_FAULTS"))

func parse(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			m[k] = v
		}
	}
	return m
}

// Enabled reports whether a fault is configured for name (for code that must take a
// different, equivalent path to expose the point, e.g. runtime create+start instead of run).
func Enabled(name string) bool {
	return points != nil && points[name] != ""
}

// Point triggers the fault configured for name, if any.
func Point(name string) error {
	if points == nil {
		return nil
	}
	switch points[name] {
	case "error":
		return fmt.Errorf("fault injected at %s", name)
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "sleep":
		time.Sleep(30 * time.Second)
	case "delay":
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}
