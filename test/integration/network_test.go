package integration

// Bridge networks through CNI: real bridges, veths, namespaces and iptables rules, made and
// removed by the tests. Traffic goes only between the tests' own containers and 127.0.0.1;
// names are resolved by the network's own dnsmasq (dnsname), which answers them locally.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// netDaemon is a private daemon with its own cni-conf-dir (the host's /etc/cni/net.d is
// not touched); host-local's store and libcni's cache are under its graph.
func netDaemon(t *testing.T) *Daemon {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall", "dnsname", "loopback"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CNI plugin %s missing (containernetworking-plugins, dnsname)", p)
			}
			t.Skipf("CNI plugin %s missing: install containernetworking-plugins and golang-github-containernetworking-plugin-dnsname", p)
		}
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq missing (dnsmasq-base): the dnsname plugin needs it")
	}
	d := StartDaemon(t)
	conf := filepath.Join(d.Dir, "cni")
	cfg, _ := json.Marshal(map[string]string{"cni-conf-dir": conf})
	if err := os.WriteFile(filepath.Join(d.Dir, "daemon.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	d.Start()
	// Before the daemon's own cleanup (cleanups run last first): a failed test's networks
	// go too, with their bridges and rules.
	t.Cleanup(func() {
		select {
		case <-d.exited:
			d.extraEnv = nil
			d.Start()
		default:
		}
		for _, id := range strings.Fields(d.Isula("ps", "-aq").Stdout) {
			d.Isula("rm", "-f", id)
		}
		if nets := strings.Fields(d.Isula("network", "ls", "-q").Stdout); len(nets) > 0 {
			if r := d.Isula(append([]string{"network", "rm"}, nets...)...); r.Code != 0 {
				t.Errorf("cleanup: network rm: %s", r)
			}
		}
	})
	return d
}

// testSubnet returns a /24 of 10.231.0.0/16 that no host route overlaps, by index.
func testSubnet(t *testing.T, i int) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	for n := 200 + i; n < 256; n += 8 {
		p := netip.MustParsePrefix(fmt.Sprintf("10.231.%d.0/24", n))
		free := true
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			dst := f[0]
			if dst == "default" || dst == "local" || dst == "broadcast" {
				continue
			}
			if !strings.Contains(dst, "/") {
				dst += "/32"
			}
			if q, err := netip.ParsePrefix(dst); err == nil && q.Overlaps(p) {
				free = false
			}
		}
		if free {
			return p.String()
		}
	}
	t.Fatal("no free test subnet in 10.231.200.0-255")
	return ""
}

func netName(t *testing.T, tag string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return "it" + tag + hex.EncodeToString(b)
}

// netLeaks counts what networking leaves on the host, of the tests' own range
// (10.231.200.0-10.231.255.255, see testSubnet): bridges with an address there and the veths
// on them, network namespaces mounted under the daemon's state, iptables rules naming the
// range or an engine's bridge (masquerade, portmap, firewall, dnsname and isolation rules), dnsmasq
// processes of the tests' networks (named it...), addresses in host-local's store.
type netLeaks struct {
	Veths, Bridges, Netns, Rules, Dnsmasq, IPAM int
}

var testRange = regexp.MustCompile(`10\.231\.2[0-5][0-9]\.`)

func countNetLeaks(t *testing.T, d *Daemon) netLeaks {
	t.Helper()
	var l netLeaks
	addrs, _ := exec.Command("ip", "-o", "-4", "addr").Output()
	bridges := map[string]bool{}
	for _, s := range strings.Split(string(addrs), "\n") {
		if f := strings.Fields(s); len(f) > 3 && strings.HasPrefix(f[1], "isula-") && testRange.MatchString(s) {
			bridges[f[1]] = true
		}
	}
	l.Bridges = len(bridges)
	links, _ := exec.Command("ip", "-o", "link").Output()
	for _, s := range strings.Split(string(links), "\n") {
		if f := strings.Fields(s); len(f) > 1 && strings.HasPrefix(f[1], "veth") {
			for i, w := range f {
				if w == "master" && i+1 < len(f) && bridges[f[i+1]] {
					l.Veths++
				}
			}
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	l.Netns = strings.Count(string(mi), filepath.Join(d.State, "netns"))
	rules, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	mangle, _ := exec.Command("iptables-save", "-t", "mangle").Output()
	for _, s := range strings.Split(string(rules)+string(mangle), "\n") {
		if testRange.MatchString(s) || strings.Contains(s, "isula-") {
			l.Rules++
		}
	}
	ps, _ := exec.Command("pgrep", "-f", "dnsmasq.*/dnsname/it").Output()
	l.Dnsmasq = len(strings.Fields(string(ps)))
	filepath.Walk(filepath.Join(d.Graph, "network", "ipam"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if _, perr := netip.ParseAddr(fi.Name()); perr == nil {
				l.IPAM++
			}
		}
		return nil
	})
	return l
}

var bb = func() []string { return []string{"--external-rootfs", busyboxRoot, "none"} }

// runIn runs a busybox command in a new --rm container on net and returns its output and code.
func runIn(d *Daemon, net, script string) Result {
	return d.Isula(append(append([]string{"run", "--rm", "--net", net}, bb()...), "sh", "-c", script)...)
}

func TestNetworkCommands(t *testing.T) {
	d := netDaemon(t)
	conf := filepath.Join(d.Dir, "cni")
	a, b := netName(t, "a"), netName(t, "b")
	sa := testSubnet(t, 0)
	if out := d.Must("network", "create", "--subnet", sa, "--label", "team=x", a); out != a {
		t.Fatalf("network create printed %q", out)
	}
	d.Must("network", "create", "--internal", b)
	if _, err := os.Stat(filepath.Join(conf, "isulacni-"+a+".conflist")); err != nil {
		t.Fatalf("conflist: %v", err)
	}
	var res []map[string]any
	if err := json.Unmarshal([]byte(d.Must("network", "inspect", a, b)), &res); err != nil || len(res) != 2 {
		t.Fatalf("inspect: %v %v", err, res)
	}
	if res[0]["Subnet"] != sa || res[0]["Gateway"] != strings.TrimSuffix(sa, "0/24")+"1" || res[0]["Driver"] != "bridge" {
		t.Errorf("inspect %s: %v", a, res[0])
	}
	auto, _ := res[1]["Subnet"].(string)
	if p, err := netip.ParsePrefix(auto); err != nil || p.Bits() != 24 || res[1]["Internal"] != true {
		t.Errorf("auto subnet %q internal %v", auto, res[1]["Internal"])
	}
	if ls := d.Must("network", "ls", "-f", "label=team=x", "--format", "{{.Name}} {{.Subnet}}"); ls != a+" "+sa {
		t.Errorf("ls -f label: %q", ls)
	}
	if q := strings.Fields(d.Must("network", "ls", "-q")); len(q) != 2 {
		t.Errorf("ls -q: %q", q)
	}

	// Bad input: one line, exit 125, nothing created.
	before, _ := os.ReadDir(conf)
	sub2 := testSubnet(t, 1)
	for _, args := range [][]string{
		{"--subnet", "10.231.300.0/24", "x1"},
		{"--subnet", sa, "x2"},                                        // same subnet
		{"--subnet", strings.TrimSuffix(sa, "0/24") + "128/25", "x3"}, // overlaps
		{"--subnet", sub2, "--gateway", "10.9.9.9", "x4"},             // gateway outside
		{"--subnet", strings.TrimSuffix(sub2, "0/24") + "5/24", "x5"}, // host bits
		{"-d", "macvlan", "x6"},
		{"--subnet", sub2, "none"},
		{"--subnet", sub2, "bad/name"},
		{"--subnet", sub2, a}, // exists
	} {
		r := d.Isula(append([]string{"network", "create"}, args...)...)
		if r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || r.Stderr == "" {
			t.Errorf("network create %v: %s", args, r)
		}
	}
	// A subnet of one of the host's own routes.
	routes, _ := exec.Command("ip", "-4", "route", "show", "scope", "link").Output()
	if f := strings.Fields(string(routes)); len(f) > 0 && strings.Contains(f[0], "/") {
		if r := d.Isula("network", "create", "--subnet", f[0], "x7"); r.Code != 125 || !strings.Contains(r.Stderr, "overlaps") {
			t.Errorf("network create on the host's route %s: %s", f[0], r)
		}
	}
	if after, _ := os.ReadDir(conf); len(after) != len(before) {
		t.Errorf("a refused create left files: %d -> %d", len(before), len(after))
	}
	for _, args := range [][]string{
		{"--net", "nosuchnet"},
		{"--net", a, "--ip", "10.9.9.9"},
		{"--net", a, "--ip", strings.TrimSuffix(sa, "0/24") + "1"}, // the gateway
		{"--net", "none", "--ip", strings.TrimSuffix(sa, "0/24") + "9"},
		{"--net", a, "-p", "0:80"},
		{"--net", a, "-p", "70000:80"},
		{"--net", a, "-p", "8000-8002:80-81"},
		{"--net", a, "-p", "80/sctp"},
		{"--net", "none", "-p", "80"},
		{"--net", a, "--add-host", "nohost"},
		{"--net", a, "--dns", "not-an-ip"},
	} {
		r := d.Isula(append(append([]string{"create"}, args...), append(bb(), "true")...)...)
		if r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("create %v: %s", args, r)
		}
	}
	if ps := d.Must("ps", "-aq"); ps != "" {
		t.Errorf("refused creates left containers: %q", ps)
	}

	// rm refuses a network in use, prune keeps it.
	d.Must(append([]string{"create", "--name", "user", "--net", a}, append(bb(), "true")...)...)
	if r := d.Isula("network", "rm", a); r.Code == 0 || !strings.Contains(r.Stderr, "user") {
		t.Errorf("network rm of a network in use: %s", r)
	}
	if out := d.Must("network", "prune"); out != b {
		t.Errorf("prune removed %q, want %s", out, b)
	}
	d.Must("rm", "user")
	d.Must("network", "rm", a)
	if ls := d.Must("network", "ls", "-q"); ls != "" {
		t.Errorf("networks left: %q", ls)
	}
	if after, _ := os.ReadDir(conf); len(after) != 0 {
		t.Errorf("conflists left: %v", after)
	}
	if r := d.Isula("network", "rm", a); r.Code == 0 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("rm of an unknown network: %s", r)
	}
}

// httpGet fetches a URL on the host. A refused connection is retried for 5 s: a server
// just started may not listen yet (the DNAT rule is there before it).
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.Get(url)
		if err != nil {
			if strings.Contains(err.Error(), "connection refused") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return "", err
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		return string(b), err
	}
}

// httpRefused tells whether nothing answers on url (a stopped container's port).
func httpRefused(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	r, err := c.Get(url)
	if err == nil {
		r.Body.Close()
	}
	return err != nil
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestNetworkNeighboursIsolationPorts(t *testing.T) {
	d := netDaemon(t)
	before := countNetLeaks(t, d)
	a, b := netName(t, "a"), netName(t, "b")
	subA := testSubnet(t, 2)
	d.Must("network", "create", "--subnet", subA, a)
	d.Must("network", "create", "--subnet", testSubnet(t, 3), b)
	port := freePort(t)
	// httpd serves /etc of the container: /etc/hostname tells who answered.
	d.Must(append(append([]string{"run", "-d", "--name", "web", "--net", a, "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, bb()...), "httpd", "-f", "-p", "80", "-h", "/etc")...)
	d.Must(append(append([]string{"run", "-d", "--name", "far", "--net", b}, bb()...), "httpd", "-f", "-p", "80", "-h", "/etc")...)
	webIP := d.Inspect("web", "{{.NetworkSettings.IPAddress}}")
	farIP := d.Inspect("far", "{{.NetworkSettings.IPAddress}}")
	short := d.Inspect("web", "{{.Config.Hostname}}")

	// The published port answers on the host.
	if got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); err != nil || strings.TrimSpace(got) != short {
		t.Fatalf("published port: %q %v", got, err)
	}
	if p := d.Must("port", "web"); p != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Errorf("port: %q", p)
	}
	if p := d.Must("ps", "-f", "name=web", "--format", "{{.Ports}}"); p != fmt.Sprintf("127.0.0.1:%d->80/tcp", port) {
		t.Errorf("ps PORTS: %q", p)
	}
	webID := d.Inspect("web", "{{.Id}}")
	if c := d.Must("network", "inspect", "-f", `{{range $id, $c := .Containers}}{{$id}} {{$c.Name}} {{$c.IPv4Address}}{{end}}`, a); !strings.HasPrefix(c, webID+" web "+webIP+"/24") {
		t.Errorf("network inspect Containers: %q", c)
	}
	// Neighbours by IP and by name (dnsname), and --add-host/--dns-opt in the files.
	r := runIn(d, a, fmt.Sprintf(`ping -c1 -W3 %s >/dev/null && echo ip-ok
ping -c1 -W3 web >/dev/null && ping -c1 -W3 web.dns.isulad. >/dev/null && echo name-ok
wget -q -O- http://web/hostname
echo | nc -w 3 web 80 >/dev/null && echo nc-ok
`, webIP))
	if r.Code != 0 || !strings.Contains(r.Stdout, "ip-ok") || !strings.Contains(r.Stdout, "name-ok") ||
		!strings.Contains(r.Stdout, short) || !strings.Contains(r.Stdout, "nc-ok") {
		t.Fatalf("neighbours on %s: %s", a, r)
	}
	// Another network reaches neither by IP nor by name. (By its full name with the final dot:
	// dnsmasq answers its own domain itself, where a bare unknown name would be forwarded to
	// the host's resolvers, outside this machine.)
	r = runIn(d, b, fmt.Sprintf(`ping -c1 -W2 %s >/dev/null && echo reached; timeout 3 wget -q -O- http://%s/hostname && echo reached; ping -c1 -W2 web.dns.isulad. >/dev/null 2>&1 && echo reached; true`, webIP, webIP))
	if strings.Contains(r.Stdout, "reached") {
		t.Fatalf("network %s reaches %s on %s: %s", b, webIP, a, r)
	}
	r = runIn(d, a, fmt.Sprintf(`ping -c1 -W2 %s >/dev/null && echo reached; true`, farIP))
	if strings.Contains(r.Stdout, "reached") {
		t.Fatalf("network %s reaches %s on %s: %s", a, farIP, b, r)
	}
	// An internal network: no default route, and nothing of the other networks.
	in := netName(t, "i")
	d.Must("network", "create", "--internal", "--subnet", testSubnet(t, 8), in)
	r = runIn(d, in, fmt.Sprintf(`ip route | grep -q default && echo has-default; ping -c1 -W2 %s >/dev/null && echo reached; true`, webIP))
	if strings.Contains(r.Stdout, "has-default") || strings.Contains(r.Stdout, "reached") || r.Code != 0 {
		t.Errorf("--internal network: %s", r)
	}
	d.Must("network", "rm", in)
	// Generated files.
	r = d.Isula(append(append([]string{"run", "--rm", "--net", a, "-h", "myhost", "--add-host", "db.local:10.231.0.77",
		"--dns-search", "example.test", "--dns-opt", "ndots:2"}, bb()...), "sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf")...)
	for _, want := range []string{"myhost\n", "\tmyhost ", "10.231.0.77\tdb.local", "search dns.isulad example.test", "options ndots:2", "nameserver " + strings.TrimSuffix(subA, "0/24") + "1"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("generated files lack %q:\n%s", want, r)
		}
	}
	r = d.Isula(append(append([]string{"run", "--rm", "--net", "none", "--dns", "10.231.0.53"}, bb()...), "sh", "-c", "cat /etc/hosts /etc/resolv.conf")...)
	if !strings.Contains(r.Stdout, "127.0.0.1\tlocalhost") || !strings.Contains(r.Stdout, "nameserver 10.231.0.53") || strings.Count(r.Stdout, "nameserver") != 1 {
		t.Errorf("--net none files:\n%s", r)
	}
	r = d.Isula(append(append([]string{"run", "--rm", "--net", "host"}, bb()...), "sh", "-c", "cat /etc/resolv.conf; echo x >> /etc/hosts && echo writable")...)
	host, _ := os.ReadFile("/etc/resolv.conf")
	if !strings.HasPrefix(r.Stdout, string(host)) || strings.Contains(r.Stdout, "writable") {
		t.Errorf("--net host must share the host's files read-only:\n%s", r)
	}
	r = d.Isula(append(append([]string{"run", "--rm", "--net", "host", "--add-host", "db.local:10.231.0.78"}, bb()...), "cat", "/etc/hosts")...)
	hostHosts, _ := os.ReadFile("/etc/hosts")
	if !strings.HasPrefix(r.Stdout, string(hostHosts)) || !strings.HasSuffix(r.Stdout, "10.231.0.78\tdb.local\n") {
		t.Errorf("--net host --add-host: the host's hosts and the entry:\n%s", r)
	}

	// A container joining web's namespace sees its address.
	r = d.Isula(append(append([]string{"run", "--rm", "--net", "container:web"}, bb()...), "ip", "-4", "-o", "addr", "show", "eth0")...)
	if !strings.Contains(r.Stdout, webIP+"/") {
		t.Errorf("--net container:web: %s", r)
	}

	// Stop releases the network (CNI DEL); start gets it back; rm leaves nothing.
	d.Must("stop", "-t", "0", "web")
	if !httpRefused(fmt.Sprintf("http://127.0.0.1:%d/hostname", port)) {
		t.Errorf("stopped container still answers on its port")
	}
	d.Must("start", "web")
	if got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); err != nil || strings.TrimSpace(got) != short {
		t.Errorf("published port after restart: %q %v", got, err)
	}
	d.Must("rm", "-f", "web", "far")
	d.Must("network", "rm", a, b)
	if after := countNetLeaks(t, d); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}

func TestNetworkClaimsRace(t *testing.T) {
	d := netDaemon(t)
	before := countNetLeaks(t, d)
	a := netName(t, "a")
	sub := testSubnet(t, 4)
	d.Must("network", "create", "--subnet", sub, a)
	ip := strings.TrimSuffix(sub, "0/24") + "50"
	port := freePort(t)
	for _, args := range [][]string{
		{"--ip", ip},
		{"-p", fmt.Sprintf("127.0.0.1:%d:80", port)},
		{"-p", fmt.Sprintf("%d:80/udp", port)},
	} {
		var wg sync.WaitGroup
		res := make([]Result, 4)
		for i := range res {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res[i] = d.Isula(append(append(append([]string{"run", "-d", "--name", fmt.Sprintf("c%d", i), "--net", a}, args...), bb()...), "sleep", "100")...)
			}(i)
		}
		wg.Wait()
		won := 0
		for _, r := range res {
			switch {
			case r.Code == 0:
				won++
			case r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.Contains(r.Stderr, "already taken"):
				t.Errorf("%v: the loser: %s", args, r)
			}
		}
		if won != 1 {
			t.Fatalf("%v: %d of 4 won", args, won)
		}
		if ps := strings.Fields(d.Must("ps", "-aq")); len(ps) != 1 {
			t.Errorf("%v: losers left containers: %v", args, ps)
		}
		if ip != "" && args[0] == "--ip" {
			if got := d.Must("ps", "-q"); got != "" {
				id := got
				if have := d.Inspect(id, "{{.NetworkSettings.IPAddress}}"); have != ip {
					t.Errorf("--ip %s: got %s", ip, have)
				}
			}
		}
		for _, id := range strings.Fields(d.Must("ps", "-aq")) {
			d.Must("rm", "-f", id)
		}
	}
	// A port the host already uses is refused, and nothing is left.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	used := l.Addr().(*net.TCPAddr).Port
	r := d.Isula(append(append([]string{"run", "-d", "--net", a, "-p", fmt.Sprintf("127.0.0.1:%d:80", used)}, bb()...), "true")...)
	l.Close()
	if r.Code != 125 || !strings.Contains(r.Stderr, "in use") {
		t.Errorf("a host port in use: %s", r)
	}
	// -P with --expose picks free ports; port CONTAINER PORT prints one.
	d.Must(append(append([]string{"run", "-d", "--name", "pp", "--net", a, "--expose", "80", "--expose", "90-91/udp", "-P"}, bb()...), "httpd", "-f", "-p", "80", "-h", "/etc")...)
	out := d.Must("port", "pp")
	if n := len(strings.Split(out, "\n")); n != 3 {
		t.Errorf("port pp: %q", out)
	}
	hp := d.Must("port", "pp", "80")
	if !strings.HasPrefix(hp, "0.0.0.0:") {
		t.Errorf("port pp 80: %q", hp)
	}
	if got, err := httpGet("http://127.0.0.1:" + strings.TrimPrefix(hp, "0.0.0.0:") + "/hostname"); err != nil || got == "" {
		t.Errorf("-P port: %q %v", got, err)
	}
	d.Must("rm", "-f", "pp")

	// Concurrent starts on one network: distinct addresses, every name resolves.
	var wg sync.WaitGroup
	errs := make([]Result, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = d.Isula(append(append([]string{"run", "-d", "--name", fmt.Sprintf("p%d", i), "--net", a}, bb()...), "sleep", "100")...)
		}(i)
	}
	wg.Wait()
	ips := map[string]bool{}
	for i, r := range errs {
		if r.Code != 0 {
			t.Fatalf("concurrent run %d: %s", i, r)
		}
		ips[d.Inspect(fmt.Sprintf("p%d", i), "{{.NetworkSettings.IPAddress}}")] = true
	}
	if len(ips) != 4 {
		t.Errorf("concurrent starts got addresses %v", ips)
	}
	if r := runIn(d, a, "for n in p0 p1 p2 p3; do ping -c1 -W3 $n >/dev/null || echo unresolved $n; done"); r.Code != 0 || strings.Contains(r.Stdout, "unresolved") {
		t.Errorf("names after concurrent starts: %s", r)
	}
	for i := range errs {
		d.Must("rm", "-f", fmt.Sprintf("p%d", i))
	}
	d.Must("network", "rm", a)
	if after := countNetLeaks(t, d); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}

// The daemon is SIGKILLed with a published port in use: the container keeps its network
// and port; a container that dies while the daemon is away loses its network at the next
// start; the leftovers of a crash are released.
func TestNetworkDaemonKilled(t *testing.T) {
	d := netDaemon(t)
	before := countNetLeaks(t, d)
	a := netName(t, "a")
	d.Must("network", "create", "--subnet", testSubnet(t, 5), a)
	port := freePort(t)
	d.Must(append(append([]string{"run", "-d", "--name", "web", "--net", a, "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, bb()...), "httpd", "-f", "-p", "80", "-h", "/etc")...)
	d.Must(append(append([]string{"run", "-d", "--name", "dies", "--net", a}, bb()...), "sleep", "1000")...)
	url := fmt.Sprintf("http://127.0.0.1:%d/hostname", port)
	short := d.Inspect("web", "{{.Config.Hostname}}")
	diesPid := d.Inspect("dies", "{{.State.Pid}}")
	diesIP := d.Inspect("dies", "{{.NetworkSettings.IPAddress}}")

	d.Kill()
	if got, err := httpGet(url); err != nil || strings.TrimSpace(got) != short {
		t.Fatalf("port with the daemon killed: %q %v", got, err)
	}
	exec.Command("kill", "-9", diesPid).Run()
	WaitFor(t, "the container to die", 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + diesPid)
		return err != nil
	})
	d.Start()
	if got, err := httpGet(url); err != nil || strings.TrimSpace(got) != short {
		t.Fatalf("port after the restart: %q %v", got, err)
	}
	WaitFor(t, "the dead container's address to be released", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(d.Graph, "network", "ipam", a, diesIP))
		return err != nil
	})
	if ip := d.Inspect("web", "{{.NetworkSettings.IPAddress}}"); ip == "" {
		t.Errorf("web lost its address in inspect after the restart")
	}
	// Leftovers of a crash half-way (an attach record, its namespace, an address of no
	// container): the next start releases them.
	d.Kill()
	fake := strings.Repeat("ab", 32)
	os.WriteFile(filepath.Join(d.Graph, "network", "ipam", a, strings.TrimSuffix(diesIP, "0")+"9"), []byte(fake+"\r\neth0"), 0o600)
	att, _ := json.Marshal(map[string]any{"ContainerID": fake, "Name": "ghost", "Network": a, "Netns": filepath.Join(d.State, "netns", fake),
		"Ports": []any{}, "Conflist": json.RawMessage(mustRead(t, filepath.Join(d.Dir, "cni", "isulacni-"+a+".conflist")))})
	os.WriteFile(filepath.Join(d.Graph, "network", "attachments", fake+".json"), att, 0o600)
	os.WriteFile(filepath.Join(d.State, "netns", fake), nil, 0o444)
	d.Start()
	if _, err := os.Stat(filepath.Join(d.Graph, "network", "attachments", fake+".json")); err == nil {
		t.Errorf("a stale attachment record survived the restart")
	}
	if _, err := os.Stat(filepath.Join(d.State, "netns", fake)); err == nil {
		t.Errorf("a stray namespace file survived the restart")
	}
	d.Must("rm", "-f", "web", "dies")
	d.Must("network", "rm", a)
	if after := countNetLeaks(t, d); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A systemd system container on a network: systemd itself serves a port (a socket unit
// with Accept=yes), reached from the host on the container's address and through -p.
func TestNetworkSystemdContainer(t *testing.T) {
	rf := debianRootfs(t)
	unit := filepath.Join(rf, "etc/systemd/system")
	os.WriteFile(filepath.Join(unit, "hello.socket"), []byte("[Socket]\nListenStream=8080\nAccept=yes\n[Install]\nWantedBy=sockets.target\n"), 0o644)
	os.WriteFile(filepath.Join(unit, "hello@.service"), []byte("[Service]\nExecStart=/bin/sh -c 'echo hello from $(hostname)'\nStandardOutput=socket\n"), 0o644)
	os.MkdirAll(filepath.Join(unit, "sockets.target.wants"), 0o755)
	os.Symlink("../hello.socket", filepath.Join(unit, "sockets.target.wants", "hello.socket"))
	s := &sysDaemon{Daemon: netDaemon(t)}
	before := countNetLeaks(t, s.Daemon)
	a := netName(t, "s")
	s.Must("network", "create", "--subnet", testSubnet(t, 6), a)
	port := freePort(t)
	start := time.Now()
	s.Must("run", "-d", "--name", "sd", "--system-container", "--net", a, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "--external-rootfs", rf, "none", "/sbin/init")
	took := waitSystemRunning(t, s, "sd", start)
	ip := s.Inspect("sd", "{{.NetworkSettings.IPAddress}}")
	short := s.Inspect("sd", "{{.Config.Hostname}}")
	for _, addr := range []string{ip + ":8080", fmt.Sprintf("127.0.0.1:%d", port)} {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || strings.TrimSpace(line) != "hello from "+short {
			t.Fatalf("%s answered %q %v", addr, line, err)
		}
	}
	t.Logf("systemd running on %s after %s, serving %s:8080 and 127.0.0.1:%d", a, took.Round(time.Millisecond), ip, port)
	s.Must("rm", "-f", "sd")
	s.Must("network", "rm", a)
	if after := countNetLeaks(t, s.Daemon); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}

// A daemon killed at each point of attach and detach: the next start releases what the
// interrupted operation made (namespace, address, veth, port rules), and the port and the
// address can be used again.
func TestNetworkCrashPoints(t *testing.T) {
	d := netDaemon(t)
	before := countNetLeaks(t, d)
	a := netName(t, "c")
	sub := testSubnet(t, 7)
	d.Must("network", "create", "--subnet", sub, a)
	ip := strings.TrimSuffix(sub, "0/24") + "77"
	withFault := func(f string) {
		d.Stop()
		d.extraEnv = nil
		if f != "" {
			d.extraEnv = []string{"ISULAD_FAULTS=" + f + "=kill"}
		}
		d.Start()
	}
	released := func(what string) {
		t.Helper()
		l := countNetLeaks(t, d)
		if l.Netns != 0 || l.IPAM != 0 || l.Veths != before.Veths {
			t.Fatalf("%s: not released after the restart: %+v (before %+v)", what, l, before)
		}
	}
	for _, point := range []string{"network-after-netns", "network-after-add", "network-before-del"} {
		port := freePort(t)
		args := append(append([]string{"run", "-d", "--name", "c", "--net", a, "--ip", ip, "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, bb()...), "httpd", "-f", "-p", "80", "-h", "/etc")
		withFault(point)
		r := d.Isula(args...)
		if point == "network-before-del" {
			if r.Code != 0 {
				t.Fatalf("%s: run: %s", point, r)
			}
			d.Isula("stop", "-t", "1", "c") // the daemon dies in the detach
		}
		select {
		case <-d.exited:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the daemon did not die at the fault point", point)
		}
		withFault("")
		WaitFor(t, point+": container not running", 20*time.Second, func() bool {
			return d.Inspect("c", "{{.State.Status}}") != "running"
		})
		WaitFor(t, point+": released", 20*time.Second, func() bool {
			l := countNetLeaks(t, d)
			return l.Netns == 0 && l.IPAM == 0
		})
		released(point)
		// The claims hold across the restart, and what was released can be used again.
		if r := d.Isula(append(append([]string{"create", "--net", a, "--ip", ip}, bb()...), "true")...); r.Code != 125 || !strings.Contains(r.Stderr, "already taken") {
			t.Errorf("%s: --ip of an existing container after the restart: %s", point, r)
		}
		d.Must("start", "c")
		if got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); err != nil || got == "" {
			t.Errorf("%s: port after the restart: %q %v", point, got, err)
		}
		if got := d.Inspect("c", "{{.NetworkSettings.IPAddress}}"); got != ip {
			t.Errorf("%s: --ip: %s", point, got)
		}
		d.Must("rm", "-f", "c")
	}
	d.Must("network", "rm", a)
	if after := countNetLeaks(t, d); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}

// daemon.json default-network: a container without --net joins it.
func TestNetworkDefaultNetwork(t *testing.T) {
	d := netDaemon(t)
	a := netName(t, "d")
	sub := testSubnet(t, 9)
	d.Must("network", "create", "--subnet", sub, a)
	cfg, _ := json.Marshal(map[string]string{"cni-conf-dir": filepath.Join(d.Dir, "cni"), "default-network": a})
	os.WriteFile(filepath.Join(d.Dir, "daemon.json"), cfg, 0o600)
	d.Stop()
	d.Start()
	out := d.Must(append(append([]string{"run", "--rm"}, bb()...), "ip", "-4", "-o", "addr", "show", "eth0")...)
	if !strings.Contains(out, strings.TrimSuffix(sub, "0/24")) {
		t.Errorf("default network: %q", out)
	}
	if out := d.Must(append(append([]string{"run", "--rm", "--net", "none"}, bb()...), "ls", "/sys/class/net")...); out != "lo" {
		t.Errorf("--net none with a default network: %q", out)
	}
	d.Must("network", "rm", a)
}

// Masquerade: a test-made "outside" (a namespace behind a veth on the host, with no route to
// the containers' subnet) answers a container only when its traffic leaves with the host's
// address. An --internal network gets no answer.
func TestNetworkMasquerade(t *testing.T) {
	d := netDaemon(t)
	before := countNetLeaks(t, d)
	a, in := netName(t, "m"), netName(t, "n")
	d.Must("network", "create", "--subnet", testSubnet(t, 10), a)
	d.Must("network", "create", "--internal", "--subnet", testSubnet(t, 11), in)
	out := testSubnet(t, 12)
	hostIP, farIP := strings.TrimSuffix(out, "0/24")+"1", strings.TrimSuffix(out, "0/24")+"2"
	ns, vo, vi := netName(t, "o"), "vo"+netName(t, ""), "vi"+netName(t, "")
	for _, c := range [][]string{
		{"netns", "add", ns},
		{"link", "add", vo, "type", "veth", "peer", "name", vi},
		{"link", "set", vi, "netns", ns},
		{"addr", "add", hostIP + "/24", "dev", vo},
		{"link", "set", vo, "up"},
		{"-n", ns, "addr", "add", farIP + "/24", "dev", vi},
		{"-n", ns, "link", "set", vi, "up"},
	} {
		if b, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, b)
		}
		if c[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
		}
		if c[0] == "link" && c[1] == "add" {
			t.Cleanup(func() { exec.Command("ip", "link", "delete", vo).Run() })
		}
	}
	if r := runIn(d, a, "ping -c1 -W3 "+farIP+" >/dev/null && echo answered"); !strings.Contains(r.Stdout, "answered") {
		t.Errorf("the outside does not answer a container of %s (no masquerade?): %s", a, r)
	}
	if r := runIn(d, in, "ping -c1 -W2 "+farIP+" >/dev/null && echo answered; true"); strings.Contains(r.Stdout, "answered") {
		t.Errorf("an --internal network reaches the outside: %s", r)
	}
	d.Must("network", "rm", a, in)
	if after := countNetLeaks(t, d); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}

// A container with a restart policy dies while the daemon is away: the restarted daemon
// releases its old attachment and the policy's start attaches it again, whichever runs first.
func TestNetworkRestartPolicyAfterCrash(t *testing.T) {
	d := netDaemon(t)
	before := countNetLeaks(t, d)
	a := netName(t, "r")
	d.Must("network", "create", "--subnet", testSubnet(t, 13), a)
	d.Must(append(append([]string{"run", "-d", "--name", "r", "--restart", "always", "--net", a}, bb()...), "sleep", "1000")...)
	pid := d.Inspect("r", "{{.State.Pid}}")
	d.Kill()
	exec.Command("kill", "-9", pid).Run()
	WaitFor(t, "the container to die", 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + pid)
		return err != nil
	})
	d.Start()
	WaitFor(t, "the restart policy to start it again", 20*time.Second, func() bool {
		st := d.Inspect("r", "{{.State.Status}} {{.State.Pid}}")
		return strings.HasPrefix(st, "running ") && !strings.HasSuffix(st, " "+pid)
	})
	ip := d.Inspect("r", "{{.NetworkSettings.IPAddress}}")
	if r := runIn(d, a, "ping -c1 -W3 r >/dev/null && ping -c1 -W3 "+ip+" >/dev/null && echo ok"); !strings.Contains(r.Stdout, "ok") || ip == "" {
		t.Errorf("restarted container %q unreachable: %s\n%s", ip, r, d.Log())
	}
	if l := countNetLeaks(t, d); l.Netns != 1 || l.IPAM != 1 {
		t.Errorf("after the restart: %+v, want one namespace and one address", l)
	}
	d.Must("rm", "-f", "r")
	d.Must("network", "rm", a)
	if after := countNetLeaks(t, d); after != before {
		t.Errorf("leaks: before %+v, after %+v", before, after)
	}
}
