package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/network"
)

func netTestDaemon(t *testing.T) *Daemon {
	t.Helper()
	tmp := t.TempDir()
	d := &Daemon{cfg: Config{Graph: tmp + "/graph", State: tmp + "/state"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var err error
	if d.store, err = container.NewStore(tmp + "/graph/containers"); err != nil {
		t.Fatal(err)
	}
	if d.net, err = network.New(network.Config{ConfDir: tmp + "/cni", DataDir: tmp + "/graph/network", RunDir: tmp + "/state/netns"}, d.log); err != nil {
		t.Fatal(err)
	}
	return d
}

func specWithNetns() *specs.Spec {
	return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}}}
}

func mountOf(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestWithNetworkSpec(t *testing.T) {
	d := netTestDaemon(t)
	id := strings.Repeat("a", 64)
	other := strings.Repeat("b", 64)
	dir := d.store.Dir(id)
	for _, tc := range []struct {
		name  string
		hc    types.HostConfig
		netns string
		src   map[string]string // destination -> source ("" = no mount)
		ro    bool
	}{
		{"none", types.HostConfig{NetworkMode: "none"}, "",
			map[string]string{"/etc/hosts": dir + "/hosts", "/etc/resolv.conf": dir + "/resolv.conf", "/etc/hostname": dir + "/hostname"}, false},
		{"network", types.HostConfig{NetworkMode: "lan"}, d.net.NetnsPath(id),
			map[string]string{"/etc/hosts": dir + "/hosts", "/etc/resolv.conf": dir + "/resolv.conf", "/etc/hostname": dir + "/hostname"}, false},
		{"container", types.HostConfig{NetworkMode: "container:" + other}, "",
			map[string]string{"/etc/hosts": d.store.Dir(other) + "/hosts", "/etc/resolv.conf": d.store.Dir(other) + "/resolv.conf", "/etc/hostname": dir + "/hostname"}, false},
		{"host with --dns", types.HostConfig{NetworkMode: "host", DNS: []string{"10.0.0.53"}}, "",
			map[string]string{"/etc/resolv.conf": dir + "/resolv.conf"}, false},
		{"user mount wins", types.HostConfig{NetworkMode: "none", Binds: []string{"/x:/etc/hosts"}}, "",
			map[string]string{"/etc/hosts": "/x"}, false},
	} {
		s := specWithNetns()
		if strings.Contains(tc.name, "user mount") {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hosts", Source: "/x", Type: "bind"})
		}
		c := &container.Container{ID: id, HostConfig: tc.hc}
		d.withNetworkSpec(s, c)
		if got := s.Linux.Namespaces[0].Path; got != tc.netns {
			t.Errorf("%s: netns path %q, want %q", tc.name, got, tc.netns)
		}
		for dest, src := range tc.src {
			m := mountOf(s, dest)
			if m == nil || m.Source != src {
				t.Errorf("%s: %s mounted from %v, want %s", tc.name, dest, m, src)
			}
		}
		if n := len(s.Mounts); n != 3 {
			t.Errorf("%s: %d mounts, want 3: %v", tc.name, n, s.Mounts)
		}
	}
	// --net host without options: the host's own files, read-only (those that exist).
	s := specWithNetns()
	d.withNetworkSpec(s, &container.Container{ID: id, HostConfig: types.HostConfig{NetworkMode: "host"}})
	if st, err := os.Stat("/etc/hosts"); err == nil && st.Mode().IsRegular() {
		if m := mountOf(s, "/etc/hosts"); m == nil || m.Source != "/etc/hosts" || !strings.Contains(strings.Join(m.Options, ","), "ro") {
			t.Errorf("--net host: /etc/hosts mount %v", m)
		}
	}
	// systemd: drop-ins that keep it from stopping the three mount units, and the unit path;
	// a mount of the user's (a CRI pod's hosts file) gets one too.
	s = specWithNetns()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hosts", Source: "/pod/hosts", Type: "bind"})
	c := &container.Container{ID: id, SystemdInit: true, HostConfig: types.HostConfig{NetworkMode: "none"}}
	d.withNetworkSpec(s, c)
	if m := mountOf(s, systemdUnitDir); m == nil {
		t.Fatalf("systemd: no %s mount: %v", systemdUnitDir, s.Mounts)
	}
	for _, unit := range []string{"etc-hosts.mount", "etc-resolv.conf.mount", "etc-hostname.mount", "run-isulad-systemd.mount"} {
		b, err := os.ReadFile(filepath.Join(dir, "systemd", unit+".d", "isulad.conf"))
		if err != nil || !strings.Contains(string(b), "DefaultDependencies=no") {
			t.Errorf("systemd drop-in for %s: %q %v", unit, b, err)
		}
	}
	if !strings.Contains(strings.Join(s.Process.Env, " "), "SYSTEMD_UNIT_PATH="+systemdUnitDir+":") {
		t.Errorf("systemd: env %v", s.Process.Env)
	}
	if n := len(s.Mounts); n != 4 {
		t.Errorf("systemd: %d mounts, want the user's hosts, resolv.conf, hostname and the unit dir: %v", n, s.Mounts)
	}
}

func TestClaimsOf(t *testing.T) {
	d := &Daemon{}
	hc := types.HostConfig{NetworkMode: "lan", IPv4Address: "10.1.1.5", PortBindings: types.PortMap{
		"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}, {HostPort: ""}}, "53/udp": {{HostPort: "5353"}},
	}}
	got := d.claimsOf(hc)
	want := []network.Claim{{Network: "lan", IP: "10.1.1.5"}, {Proto: "udp", HostPort: 5353}, {Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080}}
	if len(got) != len(want) {
		t.Fatalf("%+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("claim %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if c := d.claimsOf(types.HostConfig{NetworkMode: "none", IPv4Address: "10.1.1.5"}); c != nil {
		t.Errorf("--net none claims %v", c)
	}
}
