package network

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestNextFreeSubnet(t *testing.T) {
	for _, tc := range []struct {
		used []string
		want string
	}{
		{nil, "192.168.0.0/24"},
		{[]string{"192.168.0.0/24"}, "192.168.1.0/24"},
		{[]string{"192.168.0.0/23", "192.168.2.128/25"}, "192.168.3.0/24"},
		{[]string{"192.168.0.0/16"}, "172.16.0.0/24"},
		{[]string{"192.0.0.0/8"}, "172.16.0.0/24"},
		{[]string{"192.168.0.0/16", "172.16.0.0/12"}, "10.0.0.0/24"},
		{[]string{"192.168.0.0/16", "172.16.0.0/12", "10.0.0.5/32"}, "10.0.1.0/24"},
	} {
		got, err := nextFreeSubnet(prefixes(tc.used...))
		if err != nil || got.String() != tc.want {
			t.Errorf("used %v: got %v %v, want %s", tc.used, got, err, tc.want)
		}
	}
	if _, err := nextFreeSubnet(prefixes("0.0.0.0/1", "128.0.0.0/1")); err == nil {
		t.Error("everything used: no error")
	}
}

func TestHostRoutesParse(t *testing.T) {
	a, err := parseHexIP("0002000A") // 10.0.2.0 little-endian
	if err != nil || a.String() != "10.0.2.0" {
		t.Fatalf("%v %v", a, err)
	}
	if _, err := hostRoutes(); err != nil {
		t.Fatalf("hostRoutes: %v", err)
	}
}

func TestClaimConflicts(t *testing.T) {
	m := &Manager{}
	if err := m.Claim("a", "ca", []Claim{{Network: "n", IP: "10.0.0.5"}, {Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c        Claim
		conflict bool
	}{
		{Claim{Network: "n", IP: "10.0.0.5"}, true},
		{Claim{Network: "m", IP: "10.0.0.5"}, false},
		{Claim{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080}, true},
		{Claim{Proto: "tcp", HostPort: 8080}, true},                       // any address
		{Claim{Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}, true},    // any address
		{Claim{Proto: "tcp", HostIP: "127.0.0.2", HostPort: 8080}, false}, // another address
		{Claim{Proto: "udp", HostIP: "127.0.0.1", HostPort: 8080}, false},
		{Claim{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8081}, false},
	} {
		err := m.Claim("b", "cb", []Claim{tc.c})
		if (err != nil) != tc.conflict {
			t.Errorf("%+v: err %v, want conflict %v", tc.c, err, tc.conflict)
		}
		if err != nil && !strings.Contains(err.Error(), "ca") {
			t.Errorf("%+v: %v does not name the holder", tc.c, err)
		}
		m.Release("b")
	}
	if err := m.Claim("a", "ca", []Claim{{Network: "n", IP: "10.0.0.5"}}); err != nil {
		t.Errorf("a container's own claim again: %v", err)
	}
	if err := m.Claim("c", "cc", []Claim{{Proto: "udp", HostPort: 53}, {Proto: "udp", HostIP: "127.0.0.1", HostPort: 53}}); err == nil {
		t.Error("a port asked twice by one container: no error")
	}
	m.Release("a")
	if err := m.Claim("b", "cb", []Claim{{Network: "n", IP: "10.0.0.5"}}); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestConflist(t *testing.T) {
	m := &Manager{cfg: Config{DataDir: "/g/network"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, internal := range []bool{false, true} {
		n := &Network{Name: "n1", ID: "abc", Subnet: "10.231.9.0/24", Gateway: "10.231.9.1", Bridge: "isula-abc", Internal: internal}
		data, err := m.conflist(n)
		if err != nil {
			t.Fatal(err)
		}
		list, err := libcni.ConfListFromBytes(data)
		if err != nil {
			t.Fatalf("libcni refuses it: %v", err)
		}
		var types []string
		for _, p := range list.Plugins {
			types = append(types, p.Network.Type)
		}
		if strings.Join(types, ",") != "bridge,portmap,firewall,dnsname" || list.Name != "n1" {
			t.Errorf("plugins %v", types)
		}
		var br struct {
			IPMasq bool `json:"ipMasq"`
			IPAM   struct {
				DataDir string `json:"dataDir"`
				Routes  []any  `json:"routes"`
			} `json:"ipam"`
		}
		json.Unmarshal(list.Plugins[0].Bytes, &br)
		if br.IPMasq || (len(br.IPAM.Routes) == 0) != internal || br.IPAM.DataDir != "/g/network/ipam" {
			t.Errorf("internal=%v: bridge %+v", internal, br)
		}
		// Without published ports the container is attached without portmap.
		data, _ = m.conflistFor(n, false)
		if list, err = libcni.ConfListFromBytes(data); err != nil || len(list.Plugins) != 3 || list.Plugins[1].Network.Type != "firewall" {
			t.Errorf("without ports: %v %s", err, data)
		}
	}
}

func TestHostsAndResolvConf(t *testing.T) {
	h := string(HostsFile("10.1.2.3", "h1", "web", []string{"db:10.9.9.9"}))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.1.2.3\th1 web\n", "10.9.9.9\tdb\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("hosts lacks %q:\n%s", want, h)
		}
	}
	if h := string(HostsFile("", "h1", "h1", nil)); !strings.Contains(h, "127.0.1.1\th1\n") {
		t.Errorf("hosts without a network:\n%s", h)
	}
	host := []byte("# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch a.example b.example\noptions edns0\n")
	for _, tc := range []struct {
		dns, search, opts []string
		netDNS            string
		want              string
	}{
		{nil, nil, nil, "", "nameserver 192.0.2.53\nsearch a.example b.example\noptions edns0\n"},
		{nil, nil, nil, "10.1.2.1", "nameserver 10.1.2.1\nsearch dns.isulad a.example b.example\noptions edns0\n"},
		{[]string{"10.0.0.53"}, []string{"x.test"}, []string{"ndots:2"}, "", "nameserver 10.0.0.53\nsearch x.test\noptions ndots:2\n"},
		{nil, []string{"."}, nil, "", "nameserver 192.0.2.53\noptions edns0\n"},
		{nil, []string{"."}, nil, "10.1.2.1", "nameserver 10.1.2.1\nsearch dns.isulad\noptions edns0\n"},
	} {
		if got := string(ResolvConf(host, tc.dns, tc.search, tc.opts, tc.netDNS)); got != tc.want {
			t.Errorf("%+v:\n%s\nwant\n%s", tc, got, tc.want)
		}
	}
}
