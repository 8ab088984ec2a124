package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/cri"
)

func TestWithCRINamespaces(t *testing.T) {
	s := &specs.Spec{Hostname: "h", Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.CgroupNamespace}}}}
	err := withCRINamespaces(map[string]string{"network": "/run/pod/net", "ipc": "/run/pod/ipc",
		"uts": cri.HostNamespace, "pid": "/run/pod/pid"})(s)
	if err != nil {
		t.Fatal(err)
	}
	got := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		got[n.Type] = n.Path
	}
	want := map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/run/pod/pid", specs.IPCNamespace: "/run/pod/ipc",
		specs.MountNamespace: "", specs.NetworkNamespace: "/run/pod/net", specs.CgroupNamespace: ""}
	if len(got) != len(want) {
		t.Fatalf("namespaces %v, want %v (uts left out: the host's)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if s.Hostname != "" {
		t.Errorf("hostname %q set in the host's UTS namespace", s.Hostname)
	}
}

func TestApplyCRIResources(t *testing.T) {
	defer func(f func() bool) { hugetlbSettable = f }(hugetlbSettable)
	hugetlbSettable = func() bool { return true }
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	applyCRIResources(s, cri.Resources{CPUQuota: 20000, CPUPeriod: 50000, CPUShares: 512, CPUsetCPUs: "0",
		MemoryLimit: 64 << 20, OOMScoreAdj: -1000, HugepageLimits: map[string]uint64{"2MB": 0}})
	r := s.Linux.Resources
	if *r.CPU.Quota != 20000 || *r.CPU.Period != 50000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0" ||
		*r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 || len(r.HugepageLimits) != 1 {
		t.Errorf("resources %+v %+v %+v", r.CPU, r.Memory, r.HugepageLimits)
	}
	// Never below the daemon's own score: root here may not lower it, the runtime would fail.
	if *s.Process.OOMScoreAdj != max(-1000, ownOOMScoreAdj()) {
		t.Errorf("oom_score_adj %d (own %d)", *s.Process.OOMScoreAdj, ownOOMScoreAdj())
	}
	// Without a hugetlb controller the runtime can set, the kubelet's limits are left out
	// (runc would fail the start).
	hugetlbSettable = func() bool { return false }
	s = &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	applyCRIResources(s, cri.Resources{MemoryLimit: 64 << 20, HugepageLimits: map[string]uint64{"2MB": 0, "1GB": 0}})
	if r := s.Linux.Resources; len(r.HugepageLimits) != 0 || *r.Memory.Limit != 64<<20 {
		t.Errorf("without hugetlb: hugepage limits %+v, memory %+v", r.HugepageLimits, r.Memory)
	}
}

func TestReadCgroupStats(t *testing.T) {
	root := t.TempDir()
	write := func(p, data string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(data), 0o644)
	}
	write("cpuacct/isulad/c1/cpuacct.usage", "123456\n")
	write("memory/isulad/c1/memory.usage_in_bytes", "10000\n")
	write("memory/isulad/c1/memory.stat", "total_rss 3000\ntotal_inactive_file 4000\ntotal_pgfault 7\ntotal_pgmajfault 1\n")
	st, err := readCgroupStats(root, cgroups.V1, "/isulad/c1")
	if err != nil || st.CPUUsageNanos != 123456 || st.MemoryUsage != 10000 || st.MemoryWorkingSet != 6000 ||
		st.MemoryRSS != 3000 || st.PageFaults != 7 || st.MajorPageFaults != 1 {
		t.Errorf("v1: %+v, %v", st, err)
	}
	write("isulad/c2/cpu.stat", "usage_usec 5\nuser_usec 3\n")
	write("isulad/c2/memory.current", "9000\n")
	write("isulad/c2/memory.stat", "anon 100\ninactive_file 10000\npgfault 2\n")
	st, err = readCgroupStats(root, cgroups.V2, "/isulad/c2")
	if err != nil || st.CPUUsageNanos != 5000 || st.MemoryWorkingSet != 0 || st.MemoryRSS != 100 {
		t.Errorf("v2: %+v, %v", st, err)
	}
	if _, err := readCgroupStats(root, cgroups.V1, "/isulad/gone"); err == nil {
		t.Error("stats of a missing cgroup: no error")
	}
}

func TestWithSupplementalGroups(t *testing.T) {
	for _, tc := range []struct {
		strict bool
		want   []uint32
	}{
		{false, []uint32{1000, 10, 2000, 3000}}, // Merge: the rootfs' group 10 stays
		{true, []uint32{1000, 2000, 3000}},      // Strict: only the primary and the CRI's
	} {
		s := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}}}
		withSupplementalGroups([]uint32{1000, 2000, 3000}, tc.strict)(s)
		if got := s.Process.User.AdditionalGids; !slices.Equal(got, tc.want) {
			t.Errorf("strict %v: groups %v, want %v", tc.strict, got, tc.want)
		}
	}
}
