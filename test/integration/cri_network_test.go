package integration

// CRI pods on a CNI network: a conflist of the test's own (its own bridge, a private /24
// no host route overlaps, host-local's store in the test's directory) under a private
// cni-conf-dir, with daemon.json network-plugin "cni". Packets go only to the test's own
// pods and to 127.0.0.1.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/testenv"
)

// podNet is one test's pod network.
type podNet struct {
	Name, Bridge, Subnet string
	Prefix               string // "10.A.B." of the subnet, to find its rules
	IPAMDir, ConfDir     string
}

// podSubnet picks a random 10.A.B.0/24 (A in 100-199) that no host route or address
// overlaps.
func podSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	addrs, _ := exec.Command("ip", "-o", "-4", "addr").Output()
	var used []netip.Prefix
	for _, l := range strings.Split(string(routes), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "local" || dst == "broadcast" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			used = append(used, p)
		}
	}
	for _, l := range strings.Split(string(addrs), "\n") {
		if f := strings.Fields(l); len(f) > 3 {
			if p, err := netip.ParsePrefix(f[3]); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	for i := 0; i < 100; i++ {
		a, _ := rand.Int(rand.Reader, big.NewInt(100))
		b, _ := rand.Int(rand.Reader, big.NewInt(256))
		p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 100+a.Int64(), b.Int64()))
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
			}
		}
		if free {
			return p
		}
	}
	t.Fatal("no free /24 in 10.100.0.0-10.199.255.255")
	return netip.Prefix{}
}

// startPodNetDaemon is a CRI daemon (startCRIDaemon) with network-plugin cni and a private
// cni-conf-dir holding one bridge conflist with portmap and firewall.
func startPodNetDaemon(t *testing.T) (*Daemon, *criClient, string, podNet) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall", "loopback"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			testenv.Missing(t, "CNI plugin %s missing: install containernetworking-plugins", p)
		}
	}
	b := make([]byte, 3)
	rand.Read(b)
	sub := podSubnet(t)
	pn := podNet{Name: "itpods" + hex.EncodeToString(b), Bridge: "itp" + hex.EncodeToString(b), Subnet: sub.String(),
		Prefix: strings.TrimSuffix(sub.Addr().String(), "0")}
	// The bridge plugin makes the bridge and never deletes it: the test does, last.
	t.Cleanup(func() { exec.Command("ip", "link", "del", pn.Bridge).Run() })
	d, cc, dir := startCRIDaemon(t)
	pn.ConfDir, pn.IPAMDir = filepath.Join(d.Dir, "cni"), filepath.Join(d.Dir, "ipam")
	os.MkdirAll(pn.ConfDir, 0o755)
	writeJSON(t, filepath.Join(pn.ConfDir, "10-pods.conflist"), map[string]any{
		"cniVersion": "1.0.0", "name": pn.Name,
		"plugins": []map[string]any{
			{"type": "bridge", "bridge": pn.Bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{"type": "host-local", "dataDir": pn.IPAMDir,
					"ranges": [][]map[string]string{{{"subnet": pn.Subnet}}}}},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			{"type": "firewall", "backend": "iptables"},
		},
	})
	// A file that sorts after it: not the pod network.
	writeJSON(t, filepath.Join(pn.ConfDir, "20-other.conflist"), map[string]any{"cniVersion": "1.0.0", "name": "other",
		"plugins": []map[string]any{{"type": "loopback"}}})
	restartWithMoreConfig(t, d, map[string]any{"network-plugin": "cni", "cni-conf-dir": pn.ConfDir})
	return d, cc, dir, pn
}

// restartWithMoreConfig adds keys to the daemon's daemon.json (startCRIDaemon's registry
// mirror stays) and restarts it.
func restartWithMoreConfig(t *testing.T, d *Daemon, extra map[string]any) {
	t.Helper()
	cfg := map[string]any{}
	if b, err := os.ReadFile(filepath.Join(d.Dir, "daemon.json")); err == nil {
		json.Unmarshal(b, &cfg)
	}
	for k, v := range extra {
		cfg[k] = v
	}
	restartWithConfig(t, d, cfg)
}

// podNetLeaks counts what a pod network holds on the host: veths on its bridge, iptables
// rules naming its subnet or the pod, host-local leases.
type podNetLeaks struct{ Veths, Rules, Leases int }

func countPodNet(t *testing.T, pn podNet, podID string) podNetLeaks {
	t.Helper()
	var l podNetLeaks
	links, _ := exec.Command("ip", "-o", "link", "show", "master", pn.Bridge).Output()
	l.Veths = strings.Count(string(links), "veth")
	for _, table := range []string{"filter", "nat", "mangle"} {
		save, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("iptables-save: %v", err)
		}
		for _, s := range strings.Split(string(save), "\n") {
			if strings.Contains(s, pn.Prefix) || (podID != "" && strings.Contains(s, podID)) {
				l.Rules++
			}
		}
	}
	leases, _ := os.ReadDir(filepath.Join(pn.IPAMDir, pn.Name))
	for _, e := range leases {
		if strings.HasPrefix(e.Name(), pn.Prefix) {
			l.Leases++
		}
	}
	return l
}

// podIP is the pod's IP as crictl inspectp reports it.
func podIP(t *testing.T, cc *criClient, podID string) string {
	t.Helper()
	var st struct {
		Status struct {
			State   string
			Network struct {
				IP            string `json:"ip"`
				AdditionalIps []struct {
					IP string `json:"ip"`
				} `json:"additionalIps"`
			}
		}
	}
	if err := json.Unmarshal([]byte(cc.must("inspectp", podID)), &st); err != nil {
		t.Fatal(err)
	}
	return st.Status.Network.IP
}

// httpdPod runs a pod publishing hostPort on 127.0.0.1 and a busybox httpd in it that
// serves body on port 80. It returns the pod's and the container's IDs.
func httpdPod(t *testing.T, cc *criClient, dir, name string, hostPort int, body string) (string, string) {
	t.Helper()
	pod := writeJSON(t, filepath.Join(dir, name+"-pod.json"), map[string]any{
		"metadata": map[string]any{"name": name, "namespace": "default", "uid": "uid-" + name}, "hostname": name,
		"port_mappings": []map[string]any{{"protocol": 0, "container_port": 80, "host_port": hostPort, "host_ip": "127.0.0.1"}},
		"dns_config":    map[string]any{"servers": []string{"192.0.2.53"}, "searches": []string{"svc.test"}, "options": []string{"ndots:2"}},
		// A sysctl of the interface CNI makes, and an IPC one.
		"linux": map[string]any{"sysctls": map[string]string{"net.ipv4.conf.eth0.accept_local": "1", "kernel.msgmax": "4096"}},
	})
	ctr := writeJSON(t, filepath.Join(dir, name+"-ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "web"}, "image": map[string]any{"image": "busybox"},
		"command": []string{"sh", "-c", "mkdir -p /tmp/www && echo " + body + " > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"},
	})
	podID := cc.must("runp", pod)
	id := cc.must("create", podID, ctr, pod)
	cc.must("start", id)
	return podID, id
}

func TestCRIPodNetwork(t *testing.T) {
	d, cc, dir, pn := startPodNetDaemon(t)
	var info struct {
		Status struct {
			Conditions []struct {
				Type   string
				Status bool
			}
		}
	}
	json.Unmarshal([]byte(cc.must("info")), &info)
	if len(info.Status.Conditions) != 2 || !info.Status.Conditions[1].Status {
		t.Errorf("crictl info: NetworkReady %+v, want true with a conflist in cni-conf-dir", info.Status.Conditions)
	}
	port := freePort(t)
	podID, id := httpdPod(t, cc, dir, "web", port, "hello-pod")
	ip := podIP(t, cc, podID)
	if a, err := netip.ParseAddr(ip); err != nil || !netip.MustParsePrefix(pn.Subnet).Contains(a) {
		t.Fatalf("pod IP %q, want one of %s", ip, pn.Subnet)
	}
	if got := countPodNet(t, pn, podID); got.Veths != 1 || got.Leases != 1 || got.Rules == 0 {
		t.Errorf("while the pod runs: %+v, want one veth, one lease and its rules", got)
	}
	// The container is in the pod's namespace: its eth0 has the pod's address.
	if out := cc.must("exec", id, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, " "+ip+"/24 ") {
		t.Errorf("eth0 in the container: %q, want %s", out, ip)
	}
	// From the host: the pod's IP, and the host port on 127.0.0.1 (portmap's DNAT).
	if body, err := httpGet("http://" + ip + "/"); err != nil || body != "hello-pod\n" {
		t.Errorf("GET the pod's IP: %q %v", body, err)
	}
	if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != "hello-pod\n" {
		t.Errorf("GET the pod's host port 127.0.0.1:%d: %q %v", port, body, err)
	}
	// The pod's files: hosts names the pod's IP, resolv.conf is the DNS config, one mount each.
	if out := cc.must("exec", id, "cat", "/etc/hosts"); !strings.Contains(out, ip+"\tweb") {
		t.Errorf("/etc/hosts: %q, want %s web", out, ip)
	}
	if out := cc.must("exec", id, "cat", "/etc/resolv.conf"); out != "nameserver 192.0.2.53\nsearch svc.test\noptions ndots:2" {
		t.Errorf("/etc/resolv.conf: %q", out)
	}
	if out := cc.must("exec", id, "cat", "/proc/sys/net/ipv4/conf/eth0/accept_local", "/proc/sys/kernel/msgmax"); out != "1\n4096" {
		t.Errorf("the pod's sysctls: %q, want 1 and 4096", out)
	}
	if out := cc.must("exec", id, "hostname"); out != "web" {
		t.Errorf("hostname: %q", out)
	}
	var spec struct {
		Mounts []struct{ Destination, Source string }
	}
	data, err := os.ReadFile(filepath.Join(d.Graph, "containers", id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &spec)
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		var srcs []string
		for _, m := range spec.Mounts {
			if filepath.Clean(m.Destination) == "/etc/"+f {
				srcs = append(srcs, m.Source)
			}
		}
		if len(srcs) != 1 || !strings.Contains(srcs[0], filepath.Join("cri", "sandboxes", podID)) {
			t.Errorf("mounts on /etc/%s: %v, want the pod's file once", f, srcs)
		}
	}
	// A second pod asking for the same host port is refused, with one line, and leaves nothing.
	clash := writeJSON(t, filepath.Join(dir, "clash.json"), map[string]any{
		"metadata":      map[string]any{"name": "clash", "namespace": "default", "uid": "uid-clash"},
		"port_mappings": []map[string]any{{"protocol": 0, "container_port": 80, "host_port": port, "host_ip": "127.0.0.1"}},
	})
	if r := cc.run("", "runp", clash); r.Code == 0 || !strings.Contains(r.Stderr, fmt.Sprintf("host port 127.0.0.1:%d/tcp is already taken by pod default/web", port)) {
		t.Errorf("runp of a pod with a taken host port: %s", r)
	}
	if got := countPodNet(t, pn, ""); got.Veths != 1 || got.Leases != 1 {
		t.Errorf("after the refused pod: %+v, want only the first pod's veth and lease", got)
	}

	// Stop: CNI DEL releases the veth, the rules and the lease; a second stop is a no-op.
	cc.must("stopp", podID)
	if got := countPodNet(t, pn, podID); got != (podNetLeaks{}) {
		t.Errorf("after stopp: %+v left, want nothing", got)
	}
	if !httpRefused(fmt.Sprintf("http://127.0.0.1:%d/", port)) {
		t.Errorf("the host port still answers after stopp")
	}
	if ip2 := podIP(t, cc, podID); ip2 != ip {
		t.Errorf("a stopped pod's IP %q, want the last one %q", ip2, ip)
	}
	cc.must("stopp", podID)
	cc.must("rmp", podID)
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "network", "attachments")); len(ents) != 0 {
		t.Errorf("attachment records left: %v", ents)
	}
}

// A daemon SIGKILLed and restarted: the pod keeps its IP and answers on it and on its host
// port; stopp then releases everything.
func TestCRIPodNetworkDaemonKill(t *testing.T) {
	d, cc, dir, pn := startPodNetDaemon(t)
	port := freePort(t)
	podID, _ := httpdPod(t, cc, dir, "survivor", port, "still-here")
	ip := podIP(t, cc, podID)
	d.Kill()
	d.Start()
	if got := podIP(t, cc, podID); got != ip {
		t.Errorf("pod IP after the restart: %q, want %q", got, ip)
	}
	for _, u := range []string{"http://" + ip + "/", fmt.Sprintf("http://127.0.0.1:%d/", port)} {
		if body, err := httpGet(u); err != nil || body != "still-here\n" {
			t.Errorf("GET %s after the restart: %q %v", u, body, err)
		}
	}
	// The restarted daemon still holds the pod's host port against another pod.
	clash := writeJSON(t, filepath.Join(dir, "clash.json"), map[string]any{
		"metadata":      map[string]any{"name": "clash", "namespace": "default", "uid": "uid-clash"},
		"port_mappings": []map[string]any{{"protocol": 0, "container_port": 80, "host_port": port, "host_ip": "127.0.0.1"}},
	})
	if r := cc.run("", "runp", clash); r.Code == 0 {
		t.Errorf("runp of a pod with a taken host port after the restart: %s", r)
	}
	cc.must("stopp", podID)
	if got := countPodNet(t, pn, podID); got != (podNetLeaks{}) {
		t.Errorf("after stopp: %+v left, want nothing", got)
	}
	cc.must("rmp", podID)
}

// A daemon killed at each point of a pod's network setup and teardown leaves nothing once
// restarted and the pod stopped and removed (or, cut before its record, swept at start).
func TestCRIPodNetworkCrashPoints(t *testing.T) {
	for _, tc := range []struct {
		fault    string
		atRunp   bool // the kill is in runp (else in stopp)
		podAfter bool // the pod is there after the restart
	}{
		{"network-after-add", true, false},
		{"cri-run-after-network", true, false},
		{"network-before-del", false, true},
		{"network-after-del", false, true},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			d, cc, dir, pn := startPodNetDaemon(t)
			pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
				"metadata":      map[string]any{"name": "crash", "namespace": "default", "uid": "uid-crash"},
				"port_mappings": []map[string]any{{"protocol": 0, "container_port": 80, "host_port": freePort(t), "host_ip": "127.0.0.1"}},
			})
			var podID string
			if !tc.atRunp {
				podID = cc.must("runp", pod)
			}
			d.Stop()
			d.extraEnv = append(d.extraEnv, "ISULAD_FAULTS="+tc.fault+"=kill")
			d.Start()
			var r Result
			if tc.atRunp {
				r = cc.run("", "runp", pod)
			} else {
				r = cc.run("", "stopp", podID)
			}
			if r.Code == 0 {
				t.Fatalf("crictl succeeded through a kill fault: %s", r)
			}
			select {
			case <-d.exited:
			case <-time.After(10 * time.Second):
				t.Fatal("the daemon did not die at the fault point")
			}
			if got := countPodNet(t, pn, ""); tc.fault != "network-after-del" && (got.Leases != 1 || got.Rules == 0) {
				t.Fatalf("the crash left %+v, want a lease and rules (the fault point is after ADD)", got)
			}
			d.extraEnv = d.extraEnv[:len(d.extraEnv)-1]
			d.Start()
			ids := strings.Fields(cc.must("pods", "-q"))
			if tc.podAfter != (len(ids) == 1) {
				t.Fatalf("pods after the restart: %v", ids)
			}
			for _, id := range ids {
				cc.must("stopp", id)
				cc.must("rmp", id)
			}
			WaitFor(t, "the crashed pod's network released", 10*time.Second, func() bool {
				return countPodNet(t, pn, podID) == podNetLeaks{}
			})
			if ents, _ := os.ReadDir(filepath.Join(d.Graph, "network", "attachments")); len(ents) != 0 {
				t.Errorf("attachment records left: %v", ents)
			}
		})
	}
}

// Host-network pods: the host's namespace, copies of the host's hosts and resolv.conf, no CNI.
func TestCRIHostNetworkPod(t *testing.T) {
	_, cc, dir, pn := startPodNetDaemon(t)
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "hostnet", "namespace": "default", "uid": "uid-hostnet"},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}},
	})
	ctr := writeJSON(t, filepath.Join(dir, "ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "sh"}, "image": map[string]any{"image": "busybox"},
		"command": []string{"sleep", "1000"},
	})
	podID := cc.must("runp", pod)
	id := cc.must("create", podID, ctr, pod)
	cc.must("start", id)
	if ip := podIP(t, cc, podID); ip != "" {
		t.Errorf("a host-network pod's IP %q, want none (the node's)", ip)
	}
	if got := countPodNet(t, pn, podID); got != (podNetLeaks{}) {
		t.Errorf("a host-network pod made %+v on the pod network", got)
	}
	hosts, _ := os.ReadFile("/etc/hosts")
	if out := cc.must("exec", id, "cat", "/etc/hosts"); out != strings.TrimSpace(string(hosts)) {
		t.Errorf("/etc/hosts of a host-network pod: %q, want the host's %q", out, hosts)
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if out := cc.must("exec", id, "cat", "/etc/resolv.conf"); out != strings.TrimSpace(string(resolv)) {
		t.Errorf("/etc/resolv.conf of a host-network pod: %q, want the host's", out)
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	if out := cc.must("exec", id, "readlink", "/proc/self/ns/net"); out != self {
		t.Errorf("network namespace %q, want the host's %q", out, self)
	}
	cc.must("rmp", "-f", podID)
}

// Without a conflist of the admin's, pods join daemon.json default-network, an engine
// network: network inspect lists them, network rm refuses while one is attached.
func TestCRIPodDefaultNetwork(t *testing.T) {
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall", "dnsname"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			testenv.Missing(t, "%s", "CNI plugin "+p+" missing (containernetworking-plugins, dnsname)")
		}
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		testenv.Missing(t, "%s", "dnsmasq missing (dnsmasq-base): the dnsname plugin needs it")
	}
	d, cc, dir := startCRIDaemon(t)
	name := netName(t, "pod")
	conf := filepath.Join(d.Dir, "cni")
	restartWithMoreConfig(t, d, map[string]any{"network-plugin": "cni", "cni-conf-dir": conf, "default-network": name})
	t.Cleanup(func() { d.Isula("network", "rm", name) }) // after the pods' removal (cleanups run last first)
	var info struct {
		Status struct {
			Conditions []struct {
				Type    string
				Status  bool
				Message string
			}
		}
	}
	json.Unmarshal([]byte(cc.must("info")), &info)
	if len(info.Status.Conditions) != 2 || info.Status.Conditions[1].Status || !strings.Contains(info.Status.Conditions[1].Message, "default-network "+name) {
		t.Errorf("NetworkReady before the default network exists: %+v, want false naming it", info.Status.Conditions)
	}
	sub := podSubnet(t)
	d.Must("network", "create", "--subnet", sub.String(), name)
	port := freePort(t)
	podID, _ := httpdPod(t, cc, dir, "onengine", port, "engine-net")
	ip := podIP(t, cc, podID)
	if a, err := netip.ParseAddr(ip); err != nil || !sub.Contains(a) {
		t.Fatalf("pod IP %q, want one of %s", ip, sub)
	}
	for _, u := range []string{"http://" + ip + "/", fmt.Sprintf("http://127.0.0.1:%d/", port)} {
		if body, err := httpGet(u); err != nil || body != "engine-net\n" {
			t.Errorf("GET %s: %q %v", u, body, err)
		}
	}
	if out := d.Must("network", "inspect", "--format", "{{range $id, $c := .Containers}}{{$id}} {{$c.IPv4Address}}{{end}}", name); out != podID+" "+ip+"/24" {
		t.Errorf("network inspect: %q, want the pod and its address", out)
	}
	if r := d.Isula("network", "rm", name); r.Code == 0 || !strings.Contains(r.Stderr, "still has container") {
		t.Errorf("network rm with a pod attached: %s", r)
	}
	cc.must("stopp", podID)
	if out := d.Must("network", "inspect", "--format", "{{len .Containers}}", name); out != "0" {
		t.Errorf("pods on the network after stopp: %s", out)
	}
	cc.must("rmp", podID)
	d.Must("network", "rm", name)
}

// Pods started and stopped in parallel get distinct addresses and leave nothing.
func TestCRIPodNetworkParallel(t *testing.T) {
	_, cc, dir, pn := startPodNetDaemon(t)
	const n = 8
	ids := make([]string, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			pod := writeJSON(t, filepath.Join(dir, fmt.Sprintf("pod%d.json", i)), map[string]any{
				"metadata": map[string]any{"name": fmt.Sprintf("par%d", i), "namespace": "default", "uid": fmt.Sprintf("uid-par%d", i)},
			})
			r := cc.run("", "runp", pod)
			if r.Code != 0 {
				errs <- fmt.Errorf("runp %d: %s", i, r)
				return
			}
			ids[i] = strings.TrimSpace(r.Stdout)
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	seen := map[string]bool{}
	for _, id := range ids {
		ip := podIP(t, cc, id)
		if seen[ip] || !strings.HasPrefix(ip, pn.Prefix) {
			t.Errorf("pod %s: IP %q, want a distinct one of %s", id, ip, pn.Subnet)
		}
		seen[ip] = true
	}
	if got := countPodNet(t, pn, ""); got.Veths != n || got.Leases != n {
		t.Errorf("with %d pods: %+v", n, got)
	}
	for _, id := range ids {
		go func() {
			if r := cc.run("", "stopp", id); r.Code != 0 {
				errs <- fmt.Errorf("stopp %s: %s", id, r)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := countPodNet(t, pn, ""); got != (podNetLeaks{}) {
		t.Errorf("after stopping them all: %+v left", got)
	}
}
