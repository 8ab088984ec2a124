package shim

import (
	"os"
	"strings"
)

// A shim runs on one P (Main). Set by runtime.GOMAXPROCS(1) in main, that costs the Go
// runtime a stop of the world and a resize of its Ps after its start, on top of its own
// default computation (the cgroup's CPU limit) in schedinit: 3.3-4.3 ms of CPU for a spare's
// start to its exit against 2.4-3.0 ms with GOMAXPROCS=1 in its environment (perf stat, 6x40
// runs; docs/PERFORMANCE.md, issue 14's fifth round). So the daemon starts its shims with
// GOMAXPROCS=1, and the shim takes it out of its environment again at once (markedEnv names
// the variable the daemon set), so the runtime and what the runtime starts get the daemon's
// environment as before.
const (
	gomaxprocsEnv = "GOMAXPROCS"
	markedEnv     = "ISULAD_SHIM_SET_GOMAXPROCS"
)

// shimEnv is the environment the daemon starts a shim with: its own, with GOMAXPROCS=1 and
// the mark unless the daemon's own has a GOMAXPROCS (the operator's choice, passed on as is).
func shimEnv() []string {
	env := os.Environ()
	for _, kv := range env {
		if strings.HasPrefix(kv, gomaxprocsEnv+"=") {
			return env
		}
	}
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, markedEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, gomaxprocsEnv+"=1", markedEnv+"=1")
}

// unmarkEnv takes out of the shim's environment the GOMAXPROCS the daemon set for it.
func unmarkEnv() {
	if os.Getenv(markedEnv) == "" {
		return
	}
	os.Unsetenv(markedEnv)
	os.Unsetenv(gomaxprocsEnv)
}
