package integration

import (
	"fmt"
	"os/exec"
	"strings"
)

// The CNI firewall and portmap plugins make host-wide chains on first use and never remove
// them (they are shared by every CNI user of the host). The tests leave the host as they
// found it: the chains a run made are removed at its end, once nothing but the plugins' own
// fixed rules is in them.
var cniGlobalChains = map[string][]string{
	"filter": {"CNI-FORWARD", "CNI-ADMIN"},
	"nat":    {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"},
}

// cniChains lists the CNI global chains present in each table.
func cniChains() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for table := range cniGlobalChains {
		out[table] = map[string]bool{}
		save, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			continue // no iptables: nothing to clean either
		}
		for _, l := range strings.Split(string(save), "\n") {
			if name, ok := strings.CutPrefix(l, ":"); ok {
				out[table][strings.Fields(name)[0]] = true
			}
		}
	}
	return out
}

// removeCNIChains removes the global chains that were not there before (cniChains' answer
// then), with the rules that jump to them, if what they hold is only the plugins' fixed
// rules: a chain that still has another rule is in use and stays.
func removeCNIChains(before map[string]map[string]bool) {
	now := cniChains()
	for table, names := range cniGlobalChains {
		made := map[string]bool{}
		for _, n := range names {
			if now[table][n] && !before[table][n] {
				made[n] = true
			}
		}
		save, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil || len(made) == 0 {
			continue
		}
		var jumps []string // rules elsewhere that jump to a chain we remove
		inUse := false
		for _, l := range strings.Split(string(save), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "-A" {
				continue
			}
			target := ""
			for i := range f[:len(f)-1] {
				if f[i] == "-j" {
					target = f[i+1]
				}
			}
			switch {
			case made[f[1]] && !made[target] && target != "MASQUERADE" && target != "MARK":
				inUse = true // a rule of somebody's inside
			case made[target] && !made[f[1]]:
				jumps = append(jumps, l)
			}
		}
		if inUse {
			fmt.Printf("CNI chains of table %s still in use: left\n", table)
			continue
		}
		for _, l := range jumps {
			args := append([]string{"-t", table, "-D"}, splitRule(strings.TrimPrefix(l, "-A "))...)
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				fmt.Printf("removing %q: %v %s\n", l, err, out)
			}
		}
		for n := range made {
			exec.Command("iptables", "-t", table, "-F", n).Run()
		}
		for n := range made {
			if out, err := exec.Command("iptables", "-t", table, "-X", n).CombinedOutput(); err != nil {
				fmt.Printf("removing chain %s/%s: %v %s\n", table, n, err, out)
			}
		}
	}
}

// splitRule splits an iptables-save rule into arguments, keeping "quoted words" together.
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case r == ' ' && !quoted:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
