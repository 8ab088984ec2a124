package runopts

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
)

func noLookup(string) (string, bool) { return "", false }

// What the daemon serves of a front's command line (the arguments after run), and what it
// hands back to the full client.
func TestPlanRun(t *testing.T) {
	rootfs := t.TempDir()
	for _, tc := range []struct {
		args     []string
		fallback bool
	}{
		{[]string{"--rm", "--external-rootfs", rootfs, "none", "true"}, false},
		{[]string{"busybox", "sh", "-d", "-it"}, true},
		{[]string{"--pull=never", "busybox"}, false},
		{[]string{"--sig-proxy=false", "-e", "X", "busybox"}, true},
		{[]string{"-d", "busybox"}, true},
		{[]string{"--detach=true", "-it", "--pull=never", "busybox"}, false},
		{[]string{"--hook-spec", "/abs/hooks.json", "--pull=never", "busybox"}, false},
	} {
		p, ok := PlanRun(tc.args, noLookup)
		if !ok || p.Fallback != tc.fallback || len(p.Create) == 0 {
			t.Errorf("%q: %+v %v, want served, fallback %v", tc.args, p, ok, tc.fallback)
		}
	}
	for _, args := range [][]string{
		{}, {"-i", "busybox"}, {"-t", "busybox"}, {"-it", "busybox"}, {"--help", "busybox"},
		{"-d", "--help", "busybox"}, {"--pull", "always", "busybox"}, {"--pull=sometimes", "busybox"},
		{"--bogus", "busybox"}, {"--memory", "lots", "busybox"}, {"--name"},
		// What only the client's side can do: another daemon, its files, its working directory.
		{"-H", "/other.sock", "busybox"}, {"--host=/other.sock", "busybox"},
		{"--env-file", "/etc/passwd", "busybox"}, {"--external-rootfs", "rel/rootfs", "none", "true"},
		{"--hook-spec", "hooks.json", "busybox"},
	} {
		if p, ok := PlanRun(args, noLookup); ok {
			t.Errorf("%q: served: %+v", args, p)
		}
	}
	if _, ok := PlanRun([]string{"busybox"}, nil); ok {
		t.Error("served without the client's environment")
	}
	// The request: the command after the image, flags stop there, sig-proxy and -d passed on.
	p, ok := PlanRun([]string{"--rm", "--sig-proxy=false", "busybox", "sh", "-c", "x", "--rm"}, noLookup)
	var req types.CreateRequest
	if err := json.Unmarshal(p.Create, &req); !ok || err != nil || p.SigProxy || p.Detach ||
		req.Config.Image != "busybox" || strings.Join(req.Config.Cmd, " ") != "sh -c x --rm" ||
		!req.HostConfig.AutoRemove || !req.Config.AttachStdout || req.Config.AttachStdin {
		t.Fatalf("%+v %v %v", req, ok, err)
	}
	if p, ok := PlanRun([]string{"-d", "busybox"}, noLookup); !ok || !p.Detach || !p.SigProxy {
		t.Fatalf("-d: %+v %v", p, ok)
	}
}

// A bare -e KEY takes its value from the client's environment that came with the command
// line, never from the daemon's own.
func TestPlanRunEnvIsTheClients(t *testing.T) {
	t.Setenv("PLANRUN_DAEMON_SECRET", "daemon-value")
	lookup := func(k string) (string, bool) {
		if k == "FROMCLIENT" {
			return "client-value", true
		}
		return "", false
	}
	p, ok := PlanRun([]string{"-e", "FROMCLIENT", "-e", "PLANRUN_DAEMON_SECRET", "-e", "B=2", "--pull=never", "busybox"}, lookup)
	var req types.CreateRequest
	if err := json.Unmarshal(p.Create, &req); !ok || err != nil {
		t.Fatalf("%v %v", ok, err)
	}
	if got := strings.Join(req.Config.Env, " "); got != "FROMCLIENT=client-value B=2" {
		t.Fatalf("env %q, want the client's FROMCLIENT and B only", got)
	}
}

// The daemon's parse of a front's command line, on the start's path of every front run.
func BenchmarkPlanRun(b *testing.B) {
	rootfs := b.TempDir()
	args := []string{"--rm", "--runtime", "crun", "--external-rootfs", rootfs, "none", "true"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := PlanRun(args, noLookup); !ok {
			b.Fatal("not served")
		}
	}
}
