// Package testenv is what a test does when the machine lacks something it needs (root, a
// runtime, a rootfs): under CI (the CI variable set, as .ci/run does) the machine was promised
// to have it, so the test fails; elsewhere the test skips, saying what is missing. Either way
// `go test` never reports ok for a test that did not run.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the CI variable is set (non-empty).
func InCI() bool { return os.Getenv("CI") != "" }

// Missing ends the test because of what the machine lacks: Fatal under CI, Skip otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI is set, so this is a failure: %s", reason)
	}
	t.Skip(reason)
}

// Root ends the test (Missing) unless it runs as root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (%s)", why)
	}
}

// LookPath finds a program on PATH, or ends the test (Missing).
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found on PATH: %v", name, err)
	}
	return p
}
