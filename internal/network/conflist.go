package network

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/isulad-go/isulad/internal/atomicfile"
)

// cniVersion is the CNI protocol spoken with the plugins (Debian's all speak 1.0.0).
const cniVersion = "1.0.0"

// conflist is the CNI configuration of a network: one Linux bridge (gateway on it, hairpin
// so a container reaches itself through a published port; the masquerade is the network's
// own rule, masqueradeRule), host-local addresses kept under
// the daemon's own directory, portmap for -p, firewall so a host with a restrictive FORWARD
// chain still passes the containers' traffic, and dnsname for names within the network.
// An internal network has no default route and no masquerade.
func (m *Manager) conflist(n *Network) ([]byte, error) {
	return m.conflistFor(n, true)
}

// conflistFor is the conflist a container is attached with: without portmap when it
// publishes no port (portmap would do nothing at ADD and still run iptables at DEL). The
// attachment keeps the one it used, for its DEL.
func (m *Manager) conflistFor(n *Network, ports bool) ([]byte, error) {
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  [][]map[string]string{{{"subnet": n.Subnet, "gateway": n.Gateway}}},
		"dataDir": m.IPAMDir(),
	}
	if !n.Internal {
		ipam["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
	}
	plugins := []map[string]any{
		{
			"type": "bridge", "bridge": n.Bridge, "isGateway": true, "ipMasq": false, // masqueradeRule
			"hairpinMode": true, "ipam": ipam, "capabilities": map[string]bool{"ips": true},
		},
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		{"type": "firewall", "backend": "iptables"},
		{"type": "dnsname", "domainName": DNSDomain, "capabilities": map[string]bool{"aliases": true}},
	}
	if !ports {
		plugins = append(plugins[:1], plugins[2:]...)
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": cniVersion, "name": n.Name, "plugins": plugins,
	}, "", "  ")
}

func (m *Manager) writeConf(n *Network) error {
	data, err := m.conflist(n)
	if err != nil {
		return err
	}
	return atomicfile.Write(m.ConfFile(n.Name), data, 0o644)
}

// Isolation between networks (and the masquerade): traffic from one network's bridge to another's is dropped
// (the bridge plugin routes between them otherwise), and an internal network's traffic
// leaves its bridge for nowhere. The rules live in one chain of the mangle table, jumped to
// from its FORWARD chain: mangle is traversed before filter, where the firewall plugin
// accepts every packet of a container's address.
const isolationChain = "ISULA-ISOLATION"

func iptables(args ...string) error { return iptablesIn("mangle", args...) }

func iptablesIn(table string, args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "5", "-t", table}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -t %s %s: %v: %s", table, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// masqueradeRule is the network's one masquerade rule (nat POSTROUTING) for what leaves it
// towards the outside, instead of the bridge plugin's chain per container: that cost each
// start and stop about ten iptables runs.
func masqueradeRule(n *Network) []string {
	return []string{"POSTROUTING", "-s", n.Subnet, "!", "-o", n.Bridge, "!", "-d", "224.0.0.0/4",
		"-m", "comment", "--comment", "isulad network " + n.Name, "-j", "MASQUERADE"}
}

func isolationRules(n *Network) [][]string {
	rules := [][]string{{"-i", n.Bridge, "-o", n.Bridge, "-j", "RETURN"}}
	if n.Internal {
		rules = append(rules, []string{"-i", n.Bridge, "-j", "DROP"}, []string{"-o", n.Bridge, "-j", "DROP"})
	} else {
		rules = append(rules, []string{"-i", n.Bridge, "-o", "isula-+", "-j", "DROP"})
	}
	return rules
}

// ensureIsolation adds the network's rules unless they are there.
func ensureIsolation(n *Network) error {
	if iptables("-n", "-L", isolationChain) != nil {
		if err := iptables("-N", isolationChain); err != nil && iptables("-n", "-L", isolationChain) != nil {
			return err
		}
	}
	jump := []string{"FORWARD", "-j", isolationChain}
	if iptables(append([]string{"-C"}, jump...)...) != nil {
		if err := iptables(append([]string{"-I"}, jump...)...); err != nil {
			return err
		}
	}
	if masq := masqueradeRule(n); !n.Internal && iptablesIn("nat", append([]string{"-C"}, masq...)...) != nil {
		if err := iptablesIn("nat", append([]string{"-A"}, masq...)...); err != nil {
			return err
		}
	}
	for _, r := range isolationRules(n) {
		spec := append([]string{isolationChain}, r...)
		if iptables(append([]string{"-C"}, spec...)...) == nil {
			continue
		}
		// RETURN first, so a network's own traffic passes before any DROP.
		op := "-A"
		if r[len(r)-1] == "RETURN" {
			op = "-I"
		}
		if err := iptables(append([]string{op}, spec...)...); err != nil {
			return err
		}
	}
	return nil
}

// removeIsolation deletes the network's rules, and the chain with its jump once no network
// (of any daemon) has rules left in it.
func removeIsolation(n *Network) {
	for iptablesIn("nat", append([]string{"-D"}, masqueradeRule(n)...)...) == nil {
	}
	for _, r := range isolationRules(n) {
		spec := append([]string{isolationChain}, r...)
		for iptables(append([]string{"-D"}, spec...)...) == nil {
		}
	}
	out, err := exec.Command("iptables", "-w", "5", "-t", "mangle", "-S", isolationChain).Output()
	if err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
		return // gone already, or other networks' rules remain
	}
	if iptables("-D", "FORWARD", "-j", isolationChain) == nil {
		iptables("-X", isolationChain)
	}
}

// removeDNSRule deletes the rule dnsname adds to let the containers reach its dnsmasq on
// the bridge, and never deletes.
func removeDNSRule(n *Network) {
	rule := []string{"-w", "5", "-D", "INPUT", "-i", n.Bridge, "-p", "udp", "-m", "udp", "--dport", "53", "-j", "ACCEPT"}
	for exec.Command("iptables", rule...).Run() == nil {
	}
}

// deleteLink deletes a network interface of the host, if there.
func deleteLink(name string) {
	exec.Command("ip", "link", "delete", name).Run()
}
