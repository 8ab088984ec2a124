package cli

import (
	"strings"
	"testing"
)

// Bad networking command lines: exit 125 with one line, before the daemon is asked.
func TestBadNetworkCommandLines(t *testing.T) {
	rootfs := t.TempDir()
	bad := [][]string{
		{"network", "create"}, {"network", "create", "a", "b"}, {"network", "create", "--bogus", "n"},
		{"network", "create", "--label", "=x", "n"}, {"network", "ls", "-f", "color=red"},
		{"network", "ls", "-f", "name"}, {"network", "ls", "--format", "{{.Name"},
		{"network", "inspect"}, {"network", "inspect", "-f", "{{", "n"}, {"network", "rm"},
		{"network", "prune", "--filter", "x=y"}, {"network", "bogus"},
		{"port"}, {"port", "c", "0"}, {"port", "c", "80/sctp"}, {"port", "a", "b", "c"},
		{"run", "-p", "0:80", "--net", "n", "--external-rootfs", rootfs, "none"},
		{"run", "-p", "70000", "--net", "n", "--external-rootfs", rootfs, "none"},
		{"run", "-p", "8000-8001:80", "--net", "n", "--external-rootfs", rootfs, "none"},
		{"run", "-p", "1.2.3:80:80", "--net", "n", "--external-rootfs", rootfs, "none"},
		{"run", "-p", "80", "--external-rootfs", rootfs, "none"}, // --net none
		{"run", "--expose", "x", "--external-rootfs", rootfs, "none"},
		{"run", "--ip", "10.1.1.300", "--net", "n", "--external-rootfs", rootfs, "none"},
		{"run", "--ip", "10.1.1.3", "--net", "host", "--external-rootfs", rootfs, "none"},
		{"run", "--dns", "x", "--external-rootfs", rootfs, "none"},
		{"run", "--add-host", "a=1.1.1.1", "--external-rootfs", rootfs, "none"},
		{"run", "--net", "container:", "--external-rootfs", rootfs, "none"},
		{"run", "--net", "a/b", "--external-rootfs", rootfs, "none"},
	}
	for _, args := range bad {
		f := &fakeClient{}
		code, _, errs := run(t, f, args...)
		if code != ExitEngine {
			t.Errorf("%q: exit %d (stderr %q)", args, code, errs)
		}
		if n := strings.Count(strings.TrimRight(errs, "\n"), "\n"); n != 0 || errs == "" {
			t.Errorf("%q: want one error line, got %q", args, errs)
		}
		if len(f.created) != 0 || len(f.started) != 0 {
			t.Errorf("%q: the API was called", args)
		}
	}
}

func TestBuildRequestNetworking(t *testing.T) {
	rootfs := t.TempDir()
	f := &fakeClient{}
	code, _, errs := run(t, f, "create", "--net", "lan", "--ip", "10.89.1.5", "-p", "127.0.0.1:8080:80", "-p", "53/udp",
		"--expose", "9000-9001", "-P", "--dns", "10.0.0.53", "--dns-search", "a.test", "--dns-opt", "ndots:2",
		"--add-host", "db:10.89.1.9", "-h", "web1", "--external-rootfs", rootfs, "none", "true")
	if code != 0 || len(f.created) != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	r := f.created[0]
	hc, c := r.HostConfig, r.Config
	if hc.NetworkMode != "lan" || hc.IPv4Address != "10.89.1.5" || !hc.PublishAllPorts || c.Hostname != "web1" {
		t.Errorf("hostconfig %+v", hc)
	}
	if b := hc.PortBindings["80/tcp"]; len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "8080" {
		t.Errorf("80/tcp: %+v", b)
	}
	if b := hc.PortBindings["53/udp"]; len(b) != 1 || b[0].HostPort != "" {
		t.Errorf("53/udp: %+v", b)
	}
	for _, k := range []string{"80/tcp", "53/udp", "9000/tcp", "9001/tcp"} {
		if _, ok := c.ExposedPorts[k]; !ok {
			t.Errorf("ExposedPorts lacks %s: %v", k, c.ExposedPorts)
		}
	}
	if strings.Join(hc.DNS, ",") != "10.0.0.53" || strings.Join(hc.DNSSearch, ",") != "a.test" ||
		strings.Join(hc.DNSOptions, ",") != "ndots:2" || strings.Join(hc.ExtraHosts, ",") != "db:10.89.1.9" {
		t.Errorf("dns/hosts: %+v", hc)
	}
}
