package front

import (
	"os/exec"
	"strings"
	"testing"
)

// cmd/isula links neither gRPC nor protobuf: that is what it is for.
func TestNoGRPC(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/isulad-go/isulad/cmd/isula").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		// Nor distribution/reference and go-digest (their regexps: ~1.5 ms of init), nor
		// run's flags and request building: the daemon parses the front's command line
		// (runopts.PlanRun).
		if strings.HasPrefix(p, "google.golang.org/grpc") || strings.HasPrefix(p, "google.golang.org/protobuf") ||
			p == "github.com/distribution/reference" || p == "github.com/opencontainers/go-digest" ||
			p == "github.com/spf13/pflag" || p == "github.com/isulad-go/isulad/internal/cli/runopts" ||
			p == "github.com/isulad-go/isulad/internal/opts" {
			t.Errorf("cmd/isula links %s", p)
		}
	}
	if n < 10 {
		t.Fatalf("go list gave %d packages: %s", n, out)
	}
}

// A command line that is not run is handed to isula-full from handover's init, and a run
// the daemon cannot be asked about (no daemon) after the front's small init; without
// isula-full the front says so, one line, exit 125.
func TestHandoverBeforeHeavyInit(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/isulad-go/isulad/cmd/isula").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"version"}, {"-H", "/x.sock", "ps"}, {"--help"}, {"run", "-it", "busybox"}} {
		cmd := exec.Command(dir+"/isula", args...)
		cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1", "ISULAD_HOST=unix://"+dir+"/none.sock")
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		want := "Error: cannot run the full client " + dir + "/isula-full: no such file or directory"
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 || lines[len(lines)-1] != want {
			t.Fatalf("%q: %v\n%s", args, err, out)
		}
		for _, pkg := range []string{"github.com/distribution/reference", "github.com/isulad-go/isulad/internal/opts", "regexp"} {
			if strings.Contains(string(out), "init "+pkg+" ") {
				t.Errorf("%q: %s was initialised in the front:\n%s", args, pkg, out)
			}
		}
	}
}
