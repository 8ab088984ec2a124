package integration

import (
	"strings"
	"testing"
)

// exec --privileged gets the container's bounding set as effective and permitted
// capabilities, never as inheritable ones (CVE-2022-29162): CapInh stays 0, as for the
// container's own process and a plain exec.
func TestExecPrivilegedCapInh(t *testing.T) {
	d := StartDaemon(t)
	d.Must("run", "-d", "--name", "caps", "--external-rootfs", busyboxRoot, "none", "sleep", "1000")
	status := func(args ...string) map[string]string {
		t.Helper()
		out := d.Must(append(append([]string{"exec"}, args...), "caps", "grep", "^Cap", "/proc/self/status")...)
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		return m
	}
	const none = "0000000000000000"
	plain, priv := status(), status("--privileged")
	for name, m := range map[string]map[string]string{"exec": plain, "exec --privileged": priv} {
		if m["CapInh"] != none || m["CapAmb"] != none {
			t.Errorf("%s: CapInh %s CapAmb %s, want %s", name, m["CapInh"], m["CapAmb"], none)
		}
	}
	if priv["CapEff"] != priv["CapBnd"] || priv["CapPrm"] != priv["CapBnd"] {
		t.Errorf("exec --privileged: %v, want effective and permitted = bounding (plain exec: %v)", priv, plain)
	}
}
