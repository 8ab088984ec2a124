package shim

import (
	"os"
	"slices"
	"testing"
)

// The daemon starts a shim on one P through its environment, unless the operator set
// GOMAXPROCS; the shim takes the daemon's setting out again, so its runtime gets the
// daemon's environment.
func TestShimEnv(t *testing.T) {
	t.Setenv(markedEnv, "stale") // never passed on twice
	os.Unsetenv(gomaxprocsEnv)
	env := shimEnv()
	if !slices.Contains(env, "GOMAXPROCS=1") || !slices.Contains(env, markedEnv+"=1") || slices.Contains(env, markedEnv+"=stale") {
		t.Fatalf("daemon without GOMAXPROCS: shim env %q", env)
	}
	t.Setenv(gomaxprocsEnv, "1")
	t.Setenv(markedEnv, "1")
	unmarkEnv()
	if v, ok := os.LookupEnv(gomaxprocsEnv); ok {
		t.Errorf("after unmarkEnv GOMAXPROCS=%q is left for the runtime", v)
	}
	if _, ok := os.LookupEnv(markedEnv); ok {
		t.Error("after unmarkEnv the mark is left")
	}

	os.Unsetenv(markedEnv)
	t.Setenv(gomaxprocsEnv, "3")
	env = shimEnv()
	if !slices.Contains(env, "GOMAXPROCS=3") || slices.Contains(env, "GOMAXPROCS=1") || slices.Contains(env, markedEnv+"=1") {
		t.Fatalf("daemon with GOMAXPROCS=3: shim env %q", env)
	}
	unmarkEnv() // no mark: the operator's GOMAXPROCS stays
	if os.Getenv(gomaxprocsEnv) != "3" {
		t.Errorf("unmarkEnv without the mark took the operator's GOMAXPROCS")
	}
}
