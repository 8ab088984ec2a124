package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/spec"
)

func TestStatusPhrase(t *testing.T) {
	now := time.Now()
	cases := []struct {
		st   types.State
		want string
	}{
		{types.State{Status: "created"}, "Created"},
		{types.State{Status: "running", StartedAt: now.Add(-5 * time.Second)}, "Up 5 seconds"},
		{types.State{Status: "paused", StartedAt: now.Add(-2 * time.Minute)}, "Up 2 minutes (Paused)"},
		{types.State{Status: "exited", ExitCode: 137, FinishedAt: now.Add(-3 * time.Hour)}, "Exited (137) 3 hours ago"},
		{types.State{Status: "removing"}, "Removal In Progress"},
	}
	for _, c := range cases {
		if got := statusPhrase(c.st); got != c.want {
			t.Errorf("%+v: %q, want %q", c.st, got, c.want)
		}
	}
	if got := humanDuration(500 * time.Millisecond); got != "Less than a second" {
		t.Errorf("sub-second: %q", got)
	}
	if got := humanDuration(90 * time.Second); got != "About a minute" {
		t.Errorf("90s: %q", got)
	}
}

func TestStartCode(t *testing.T) {
	cases := map[string]int{
		`runc run failed: unable to start container process: exec: "nosuch": executable file not found in $PATH`: 127,
		"crun run: executable file `nosuch` not found in $PATH: No such file or directory":                       127,
		`exec: "/etc/passwd": permission denied`:                                                                 126,
		"something else broke":                                                                                   125,
	}
	for msg, want := range cases {
		if got := startCode(msg); got != want {
			t.Errorf("%q: %d, want %d", msg, got, want)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	d := &Daemon{}
	mk := func(name string, max, count int) *container.Container {
		c := &container.Container{RestartCount: count}
		c.HostConfig.RestartPolicy = types.RestartPolicy{Name: name, MaximumRetryCount: max}
		return c
	}
	cases := []struct {
		c    *container.Container
		code int
		want bool
	}{
		{mk("no", 0, 0), 1, false},
		{mk("always", 0, 5), 0, true},
		{mk("unless-stopped", 0, 0), 0, true},
		{mk("on-failure", 0, 10), 1, true},
		{mk("on-failure", 0, 0), 0, false},
		{mk("on-failure", 2, 1), 1, true},
		{mk("on-failure", 2, 2), 1, false},
		{mk("on-reboot", 0, 0), 129, true},
		{mk("on-reboot", 0, 0), 130, false},
		{mk("on-reboot", 0, 0), 0, false},
	}
	for i, c := range cases {
		if got := d.shouldRestart(c.c, c.code); got != c.want {
			t.Errorf("case %d (%s, exit %d): %v, want %v", i, c.c.HostConfig.RestartPolicy.Name, c.code, got, c.want)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	var req types.CreateRequest
	if err := decodeStrict([]byte(`{"Name":"x","Config":{"Cmd":["true"]}}`), &req); err != nil || req.Name != "x" {
		t.Fatalf("valid: %v", err)
	}
	for _, bad := range []string{`{"Nme":"x"}`, `{"Name":"x"} {}`, `[`, ``, `{"Config":{"Cmd":"true"}}`} {
		if err := decodeStrict([]byte(bad), &req); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "daemon.json")
	os.WriteFile(p, []byte(`{"graph":"/g","state":"/s","default-runtime":"runc","log-opts":{"max-size":"10m"}}`), 0o600)
	c := DefaultConfig()
	if unknown, err := LoadConfigFile(&c, p, true); err != nil || len(unknown) != 0 {
		t.Fatal(unknown, err)
	}
	if c.Graph != "/g" || c.State != "/s" || c.LogOpts["max-size"] != "10m" {
		t.Fatalf("loaded: %+v", c)
	}
	size, files, err := c.logLimits(map[string]string{"max-file": "3"})
	if err != nil || size != 10<<20 || files != 3 {
		t.Fatalf("log limits: %d %d %v", size, files, err)
	}
	if _, _, err := c.logLimits(map[string]string{"max-file": "0"}); err == nil {
		t.Fatalf("max-file 0 accepted")
	}
	os.WriteFile(p, []byte(`{"grpah":"/g","storage-driver":"overlay2"}`), 0o600)
	if unknown, err := LoadConfigFile(&c, p, true); err != nil || strings.Join(unknown, ",") != "grpah,storage-driver" {
		t.Fatalf("unknown keys: %v %v", unknown, err)
	}
	os.WriteFile(p, []byte(`{"graph":5}`), 0o600)
	if _, err := LoadConfigFile(&c, p, true); err == nil {
		t.Fatalf("a known key of the wrong type was accepted")
	}
	c = DefaultConfig()
	if _, err := LoadConfigFile(&c, filepath.Join(dir, "missing.json"), false); err != nil {
		t.Fatalf("missing optional file: %v", err)
	}
	c.Graph = "relative"
	if err := c.Finish(); err == nil {
		t.Fatalf("relative graph accepted")
	}
}

// TestExecPrivilegedInheritable: exec --privileged gets the container's bounding set as its
// effective and permitted capabilities, never as inheritable ones (CVE-2022-29162), and the
// container's own process is left as it was.
func TestExecPrivilegedInheritable(t *testing.T) {
	s := spec.Default()
	if err := spec.WithCapabilities([]string{"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"})(s); err != nil {
		t.Fatal(err)
	}
	s.Process.Capabilities.Effective = []string{"CAP_KILL"} // narrower than the bounding set
	s.Process.Capabilities.Permitted = []string{"CAP_KILL"}
	before := *s.Process.Capabilities
	for _, privileged := range []bool{false, true} {
		p, err := execProcessOf(s.Process, "", types.ExecConfig{Cmd: []string{"sh"}, Privileged: privileged})
		if err != nil {
			t.Fatal(err)
		}
		c := p.Capabilities
		if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
			t.Errorf("privileged=%v: inheritable %v, ambient %v; want none", privileged, c.Inheritable, c.Ambient)
		}
		wantEff := before.Effective
		if privileged {
			wantEff = before.Bounding
		}
		if !slices.Equal(c.Effective, wantEff) || !slices.Equal(c.Permitted, wantEff) || !slices.Equal(c.Bounding, before.Bounding) {
			t.Errorf("privileged=%v: %+v, want effective and permitted %v", privileged, c, wantEff)
		}
	}
	if !slices.Equal(s.Process.Capabilities.Effective, before.Effective) || len(s.Process.Capabilities.Inheritable) != 0 {
		t.Errorf("the container's process changed: %+v", s.Process.Capabilities)
	}
}
