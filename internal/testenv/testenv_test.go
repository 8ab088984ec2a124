package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs itself as a child: without CI the child skips with the reason, with CI it
// fails with it.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Missing(t, "the machine lacks %s", "a thing")
		t.Fatal("Missing returned")
	}
	for _, tc := range []struct {
		ci, want string
		fails    bool
	}{
		{"", "--- SKIP: TestMissing", false},
		{"true", "--- FAIL: TestMissing", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fails || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "the machine lacks a thing") {
			t.Errorf("CI=%q: %v, want %q with the reason:\n%s", tc.ci, err, tc.want, out)
		}
	}
}
