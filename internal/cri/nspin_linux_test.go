package cri

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("pinning namespaces needs root")
		}
		t.Skip("pinning namespaces needs root")
	}
}

// inNamespaces runs a command in the pinned namespaces through nsenter(1), a reader that
// is not this package's code.
func inNamespaces(t *testing.T, paths map[nsKind]string, args ...string) string {
	t.Helper()
	var flags []string
	for k, p := range paths {
		flags = append(flags, "--"+map[nsKind]string{nsNet: "net", nsIPC: "ipc", nsUTS: "uts"}[k]+"="+p)
	}
	out, err := exec.Command("nsenter", append(flags, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestPinNamespaces(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := pinNamespaces(pinRequest{
		Dir: dir, Kinds: []nsKind{nsNet, nsIPC, nsUTS}, Hostname: "pod-a",
		Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "1000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unpinNamespaces(dir) })
	for k, p := range paths {
		if !namespacePinned(p) {
			t.Errorf("%s: %s is not a pinned namespace", k, p)
		}
		host, _ := os.Readlink("/proc/1/ns/" + string(k)) // the host's (this process's main thread may be the one that pinned)
		var st unix.Stat_t
		unix.Stat(p, &st)
		if strings.Contains(host, "["+itoa(st.Ino)+"]") {
			t.Errorf("%s: the pinned namespace is the host's (%s)", k, host)
		}
	}
	if got := inNamespaces(t, paths, "hostname"); got != "pod-a" {
		t.Errorf("hostname in the pod = %q, want pod-a", got)
	}
	if got := inNamespaces(t, paths, "cat", "/sys/class/net/lo/operstate", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/kernel/shmmni"); !strings.HasPrefix(got, "unknown\n80\n1000") {
		// lo's operstate is "unknown" once it is up ("down" otherwise).
		t.Errorf("in the pod: lo, port start, shmmni = %q, want unknown 80 1000", got)
	}
	if host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(host)) == "80" {
		t.Errorf("the host's net sysctl was changed")
	}
	if err := unpinNamespaces(dir); err != nil {
		t.Fatal(err)
	}
	if err := unpinNamespaces(dir); err != nil {
		t.Fatalf("second unpin: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the pod's directory: %v", ents)
	}
}

func TestPinNamespacesFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	_, err := pinNamespaces(pinRequest{Dir: dir, Kinds: []nsKind{nsNet, nsUTS}, Sysctls: map[string]string{"net.ipv4.no_such_sysctl": "1"}})
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.no_such_sysctl") {
		t.Fatalf("err = %v, want one naming the sysctl", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the pod's directory: %v", ents)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), dir) {
		t.Errorf("a mount under %s is left", dir)
	}
}

func TestSysctlNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		ns   nsKind
	}{
		{"net.ipv4.ip_forward", "net/ipv4/ip_forward", nsNet},
		{"net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding", nsNet},
		{"kernel.shmmax", "kernel/shmmax", nsIPC},
		{"kernel.msgmax", "kernel/msgmax", nsIPC},
		{"fs.mqueue.msg_max", "fs/mqueue/msg_max", nsIPC},
		{"kernel.panic", "kernel/panic", ""},
		{"vm.overcommit_memory", "vm/overcommit_memory", ""},
		{"net/../../sysrq-trigger", "", ""},
		{"net.ipv4/../../x", "", ""},
		{"/net/ipv4", "", ""},
		{"", "", ""},
	} {
		p, err := sysctlPath(tc.name)
		if (err != nil) != (tc.path == "") || p != tc.path {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", tc.name, p, err, tc.path)
		}
		if ns := sysctlNamespace(tc.name); ns != tc.ns {
			t.Errorf("sysctlNamespace(%q) = %q, want %q", tc.name, ns, tc.ns)
		}
	}
}

// BenchmarkPinUnpin is the cost of a pod's namespaces without a process (docs/cri.md).
func BenchmarkPinUnpin(b *testing.B) {
	needRoot(b)
	base := b.TempDir()
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(base, itoa(uint64(i)))
		os.Mkdir(dir, 0o700)
		if _, err := pinNamespaces(pinRequest{Dir: dir, Kinds: []nsKind{nsNet, nsIPC, nsUTS}, Hostname: "p"}); err != nil {
			b.Fatal(err)
		}
		if err := unpinNamespaces(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Network sysctls are written once the pod's interfaces exist, in the pod's namespace only:
// one naming an interface CNI made (a veth pair inside the namespace stands in for it here) works.
func TestWriteSysctlsIn(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := pinNamespaces(pinRequest{Dir: dir, Kinds: []nsKind{nsNet}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unpinNamespaces(dir) })
	inNamespaces(t, paths, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	err = writeSysctlsIn(paths[nsNet], map[string]string{"net.ipv4.conf.eth0.forwarding": "1", "net/ipv4/ip_unprivileged_port_start": "99"})
	if err != nil {
		t.Fatal(err)
	}
	if got := inNamespaces(t, paths, "cat", "/proc/sys/net/ipv4/conf/eth0/forwarding", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "1\n99" {
		t.Errorf("in the pod: %q, want 1 and 99", got)
	}
	if host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(host)) == "99" {
		t.Errorf("the host's net sysctl was changed")
	}
	if err := writeSysctlsIn(paths[nsNet], map[string]string{"net.ipv4.conf.eth9.forwarding": "1"}); err == nil || !strings.Contains(err.Error(), "net.ipv4.conf.eth9.forwarding") {
		t.Errorf("a sysctl of a missing interface: %v, want one naming it", err)
	}
}
