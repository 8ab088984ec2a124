package opts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
)

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want types.PortMap
	}{
		{"80", types.PortMap{"80/tcp": {{}}}},
		{"8080:80", types.PortMap{"80/tcp": {{HostPort: "8080"}}}},
		{"127.0.0.1:8080:80/udp", types.PortMap{"80/udp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}},
		{"127.0.0.1::80", types.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}}},
		{"8000-8001:80-81", types.PortMap{"80/tcp": {{HostPort: "8000"}}, "81/tcp": {{HostPort: "8001"}}}},
		{"90-91/udp", types.PortMap{"90/udp": {{}}, "91/udp": {{}}}},
	} {
		pm := types.PortMap{}
		if err := ParsePublish(pm, tc.in); err != nil || !reflect.DeepEqual(pm, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, pm, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "65536", "0:80", "80:0", "x:80", "80/sctp", "1.2.3:80:80", "8000-8002:80-81",
		"81-80", "::1:80:80", "[::1]:80:80", "1:2:3:4", "+80", "-1"} {
		if err := ParsePublish(types.PortMap{}, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidateNetworking(t *testing.T) {
	ok := func(mod func(*types.Config, *types.HostConfig)) error {
		c, hc := &types.Config{}, &types.HostConfig{NetworkMode: "n1"}
		mod(c, hc)
		return validateNetworking(c, hc)
	}
	for name, mod := range map[string]func(*types.Config, *types.HostConfig){
		"ip": func(c *types.Config, hc *types.HostConfig) { hc.IPv4Address = "10.1.1.5" },
		"ports": func(c *types.Config, hc *types.HostConfig) {
			hc.PortBindings = types.PortMap{"80/tcp": {{HostPort: "8080"}}}
		},
		"dns": func(c *types.Config, hc *types.HostConfig) {
			hc.DNS = []string{"10.0.0.53"}
			hc.DNSSearch = []string{"a.b"}
		},
		"addhost":   func(c *types.Config, hc *types.HostConfig) { hc.ExtraHosts = []string{"db:10.1.1.1"} },
		"container": func(c *types.Config, hc *types.HostConfig) { hc.NetworkMode = "container:web" },
	} {
		if err := ok(mod); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, mod := range map[string]func(*types.Config, *types.HostConfig){
		"ip6":        func(c *types.Config, hc *types.HostConfig) { hc.IPv4Address = "::1" },
		"ip none":    func(c *types.Config, hc *types.HostConfig) { hc.NetworkMode = "none"; hc.IPv4Address = "10.1.1.5" },
		"ports host": func(c *types.Config, hc *types.HostConfig) { hc.NetworkMode = "host"; hc.PublishAllPorts = true },
		"bad key":    func(c *types.Config, hc *types.HostConfig) { hc.PortBindings = types.PortMap{"80-81/tcp": {{}}} },
		"bad port": func(c *types.Config, hc *types.HostConfig) {
			hc.PortBindings = types.PortMap{"80/tcp": {{HostPort: "99999"}}}
		},
		"bad expose":  func(c *types.Config, hc *types.HostConfig) { c.ExposedPorts = types.PortSet{"0/tcp": {}} },
		"bad dns":     func(c *types.Config, hc *types.HostConfig) { hc.DNS = []string{"x"} },
		"bad addhost": func(c *types.Config, hc *types.HostConfig) { hc.ExtraHosts = []string{"db=1.1.1.1"} },
		"bridge":      func(c *types.Config, hc *types.HostConfig) { hc.NetworkMode = "bridge" },
		"bad name":    func(c *types.Config, hc *types.HostConfig) { hc.NetworkMode = "a/b" },
		"container:":  func(c *types.Config, hc *types.HostConfig) { hc.NetworkMode = "container:" },
	} {
		if err := ok(mod); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParsePublish: -p never panics, refuses in one line, and what it accepts passes the
// daemon's check of a create request.
func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"80", "127.0.0.1:8080:80/udp", "8000-8009:80-89", "[::1]:80:80", "::80", "1-65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pm := types.PortMap{}
		if err := ParsePublish(pm, s); err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("%q: refusal is not one line: %q", s, err)
			}
			return
		}
		hc := &types.HostConfig{NetworkMode: "n", PortBindings: pm}
		if err := validateNetworking(&types.Config{}, hc); err != nil {
			t.Fatalf("%q accepted by ParsePublish, refused by the create check: %v", s, err)
		}
	})
}
