package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/cgroups"
)

// testHost is a described host: v1 with name=systemd, the daemon lacking CAP_SYS_RESOURCE.
func testHost(t *testing.T, mode string) Host {
	t.Helper()
	bnd := slices.DeleteFunc(slices.Clone(capNames), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	l := cgroups.Layout{Mode: mode}
	if mode != cgroups.V2 {
		l.SystemdMount = "/sys/fs/cgroup/systemd"
	}
	procSys := t.TempDir()
	for _, d := range []string{"net/ipv4", "kernel/random", "fs/mqueue", "vm", "user"} {
		os.MkdirAll(filepath.Join(procSys, d), 0o755)
	}
	for _, f := range []string{"kernel/shmmax", "kernel/shmall", "kernel/msgmax", "kernel/sem", "kernel/hostname", "kernel/panic", "fs/file-max", "vm/swappiness"} {
		os.WriteFile(filepath.Join(procSys, f), nil, 0o644)
	}
	return Host{Cgroups: l, CapBnd: bnd, ProcSys: procSys, DevRoot: t.TempDir()}
}

func baseOptions() Options {
	return Options{
		ID: "abc", Config: types.Config{Cmd: []string{"/bin/sh"}}, Rootfs: "/nonexistent-rootfs",
		Hostname: "abc123", EngineName: "isulad", CgroupsPath: "/isulad/abc",
	}
}

func gen(t *testing.T, h Host, o Options) *specs.Spec {
	t.Helper()
	s, err := GenerateOn(h, o)
	if err != nil {
		t.Fatalf("GenerateOn: %v", err)
	}
	return s
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func nsTypes(s *specs.Spec) []string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		out = append(out, string(n.Type))
	}
	return out
}

func TestGenerateDefaults(t *testing.T) {
	s := gen(t, testHost(t, cgroups.Hybrid), baseOptions())
	if got := strings.Join(nsTypes(s), ","); got != "pid,ipc,uts,mount,network" {
		t.Errorf("namespaces %s", got)
	}
	if !slices.Equal(s.Process.Capabilities.Bounding, DefaultCaps) {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("no default seccomp profile")
	}
	if s.Process.Rlimits != nil || s.Process.OOMScoreAdj != nil {
		t.Errorf("rlimits or oom_score_adj set")
	}
	if s.Linux.CgroupsPath != "/isulad/abc" || s.Hostname != "abc123" || s.Root.Path != "/nonexistent-rootfs" {
		t.Errorf("cgroups path %q hostname %q root %q", s.Linux.CgroupsPath, s.Hostname, s.Root.Path)
	}
	if want := []string{"PATH=" + DefaultPath, "HOSTNAME=abc123"}; !slices.Equal(s.Process.Env, want) {
		t.Errorf("env %v", s.Process.Env)
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
		if mountAt(s, d) == nil {
			t.Errorf("no mount at %s", d)
		}
	}
	if m := mountAt(s, "/sys/fs/cgroup"); !slices.Contains(m.Options, "ro") {
		t.Errorf("cgroup mount not read-only: %v", m.Options)
	}
	if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") || !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") {
		t.Errorf("masked/readonly paths missing")
	}
	if s.Process.Cwd != "/" || s.Process.Terminal {
		t.Errorf("cwd %q terminal %v", s.Process.Cwd, s.Process.Terminal)
	}
	// v2: a cgroup namespace for everyone, as docker.
	s = gen(t, testHost(t, cgroups.V2), baseOptions())
	if !slices.Contains(nsTypes(s), "cgroup") {
		t.Errorf("v2 without cgroup namespace")
	}
}

func TestGenerateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no cmd", func(o *Options) { o.Config.Cmd = nil }, "no command"},
		{"relative rootfs", func(o *Options) { o.Rootfs = "rootfs" }, "rootfs"},
		{"relative mount", func(o *Options) { o.Mounts = []types.Mount{{Type: "tmpfs", Target: "tmp"}} }, "absolute"},
		{"mount on /", func(o *Options) { o.Mounts = []types.Mount{{Type: "bind", Source: "/x", Target: "/"}} }, "root"},
		{"mount on /.", func(o *Options) { o.Mounts = []types.Mount{{Type: "bind", Source: "/x", Target: "/a/.."}} }, "root"},
		{"extra on /", func(o *Options) { o.ExtraMounts = []specs.Mount{{Type: "bind", Source: "/x", Destination: "/"}} }, "root"},
		{"bad security opt", func(o *Options) { o.HostConfig.SecurityOpt = []string{"apparmor=foo"} }, "--security-opt"},
		{"relative seccomp", func(o *Options) { o.HostConfig.SecurityOpt = []string{"seccomp=p.json"} }, "absolute"},
		{"missing seccomp file", func(o *Options) { o.HostConfig.SecurityOpt = []string{"seccomp=/nonexistent.json"} }, "seccomp"},
		{"unknown cap", func(o *Options) { o.HostConfig.CapAdd = []string{"FLY"} }, "unknown capability"},
		{"cap not held", func(o *Options) { o.HostConfig.CapAdd = []string{"sys_resource"} }, "does not hold"},
		{"swap without memory", func(o *Options) { o.HostConfig.MemorySwap = 1 << 30 }, "--memory-swap"},
		{"swap below memory", func(o *Options) { o.HostConfig.Memory, o.HostConfig.MemorySwap = 1<<30, 1<<29 }, "at least"},
		{"tiny memory", func(o *Options) { o.HostConfig.Memory = 1 << 20 }, "6MB"},
		{"tiny cpus", func(o *Options) { o.HostConfig.NanoCPUs = 1000 }, "--cpus"},
		{"relative workdir", func(o *Options) { o.Config.WorkingDir = "x" }, "--workdir"},
		{"bad ns-change-opt", func(o *Options) {
			o.HostConfig.SystemContainer, o.HostConfig.NsChangeOpt = true, "pid"
		}, "--ns-change-opt"},
		{"unknown user", func(o *Options) { o.Config.User = "alice" }, "alice"},
		{"bad propagation", func(o *Options) {
			o.Mounts = []types.Mount{{Type: "bind", Source: "/x", Target: "/y", Propagation: "weird"}}
		}, "propagation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions()
			tc.mod(&o)
			_, err := GenerateOn(testHost(t, cgroups.Hybrid), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWithEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hostname string
		tty      bool
		env      []string
		want     []string
	}{
		{"defaults", "h", false, nil, []string{"PATH=" + DefaultPath, "HOSTNAME=h"}},
		{"tty", "h", true, nil, []string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=xterm"}},
		{"user PATH and TERM win", "h", true, []string{"PATH=/bin", "TERM=vt100", "A=1"}, []string{"PATH=/bin", "HOSTNAME=h", "TERM=vt100", "A=1"}},
		{"later wins", "", false, []string{"A=1", "A=2", "B"}, []string{"PATH=" + DefaultPath, "A=2", "B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Default()
			if err := WithEnv(tc.hostname, tc.tty, tc.env)(s); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Process.Env, tc.want) {
				t.Errorf("env %q, want %q", s.Process.Env, tc.want)
			}
		})
	}
	if err := WithEnv("", false, []string{"=x"})(Default()); err == nil {
		t.Error("env without a name accepted")
	}
}

func TestCapabilities(t *testing.T) {
	bnd := slices.DeleteFunc(slices.Clone(capNames), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	for _, tc := range []struct {
		name       string
		add, drop  []string
		privileged bool
		has, lacks []string
		n          int
	}{
		{name: "default", n: len(DefaultCaps), has: DefaultCaps},
		{name: "add mixed case", add: []string{"sys_admin", "Cap_Net_Admin"}, n: len(DefaultCaps) + 2, has: []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
		{name: "drop", drop: []string{"chown", "CAP_KILL"}, n: len(DefaultCaps) - 2, lacks: []string{"CAP_CHOWN", "CAP_KILL"}},
		{name: "drop all add one", drop: []string{"ALL"}, add: []string{"kill"}, n: 1, has: []string{"CAP_KILL"}},
		{name: "add all", add: []string{"all"}, n: len(bnd), lacks: []string{"CAP_SYS_RESOURCE"}},
		{name: "add all drop one", add: []string{"ALL"}, drop: []string{"sys_admin"}, n: len(bnd) - 1, lacks: []string{"CAP_SYS_ADMIN"}},
		{name: "privileged = bounding set", privileged: true, n: len(bnd), has: []string{"CAP_SYS_ADMIN"}, lacks: []string{"CAP_SYS_RESOURCE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps, err := Capabilities(bnd, tc.add, tc.drop, tc.privileged)
			if err != nil {
				t.Fatal(err)
			}
			if len(caps) != tc.n {
				t.Errorf("%d caps %v, want %d", len(caps), caps, tc.n)
			}
			for _, c := range tc.has {
				if !slices.Contains(caps, c) {
					t.Errorf("missing %s", c)
				}
			}
			for _, c := range tc.lacks {
				if slices.Contains(caps, c) {
					t.Errorf("has %s", c)
				}
			}
		})
	}
	if _, err := Capabilities(bnd, []string{"SYS_RESOURCE"}, nil, false); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("cap outside the bounding set: %v", err)
	}
	mask := capMask(capsFromMask(0x1fffeffffff))
	if mask != 0x1fffeffffff {
		t.Errorf("capsFromMask round trip: %x", mask)
	}
}

func TestWithResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name  string
		hc    types.HostConfig
		check func(*testing.T, *specs.LinuxResources)
	}{
		{"none", types.HostConfig{}, func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory != nil || r.CPU != nil || r.Pids != nil {
				t.Errorf("limits set: %+v", r)
			}
		}},
		{"memory, swap 2x", types.HostConfig{Memory: 100 << 20}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 100<<20 || *r.Memory.Swap != 200<<20 {
				t.Errorf("memory %d swap %d", *r.Memory.Limit, *r.Memory.Swap)
			}
		}},
		{"swap unlimited", types.HostConfig{Memory: 100 << 20, MemorySwap: -1}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != -1 {
				t.Errorf("swap %d", *r.Memory.Swap)
			}
		}},
		{"swap given", types.HostConfig{Memory: 100 << 20, MemorySwap: 300 << 20}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != 300<<20 {
				t.Errorf("swap %d", *r.Memory.Swap)
			}
		}},
		{"cpus and shares", types.HostConfig{NanoCPUs: 2500000000, CPUShares: 512}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Quota != 250000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 {
				t.Errorf("cpu %+v", r.CPU)
			}
		}},
		{"pids", types.HostConfig{PidsLimit: i64(50)}, func(t *testing.T, r *specs.LinuxResources) {
			if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 50 {
				t.Errorf("pids %+v", r.Pids)
			}
		}},
		{"pids unlimited", types.HostConfig{PidsLimit: i64(-1)}, func(t *testing.T, r *specs.LinuxResources) {
			if r.Pids != nil {
				t.Errorf("pids %+v", r.Pids)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Default()
			if err := WithResources(tc.hc)(s); err != nil {
				t.Fatal(err)
			}
			tc.check(t, s.Linux.Resources)
		})
	}
}

func TestWithMounts(t *testing.T) {
	s := Default()
	err := WithMounts([]types.Mount{
		{Type: "bind", Source: "/data/", Target: "/data", ReadOnly: true},
		{Type: "bind", Source: "/src", Target: "/mnt/x/", Propagation: "rslave"},
		{Type: "tmpfs", Target: "/dev/shm", TmpfsSize: 1 << 20, TmpfsMode: 0o1777},
		{Type: "bind", Source: "/tree", Target: "/rro", ReadOnly: true, RecursiveReadOnly: true},
	})(s)
	if err != nil {
		t.Fatal(err)
	}
	if m := mountAt(s, "/data"); m == nil || m.Source != "/data" || !slices.Equal(m.Options, []string{"rbind", "ro", "rprivate"}) {
		t.Errorf("/data: %+v", m)
	}
	if m := mountAt(s, "/mnt/x"); m == nil || !slices.Equal(m.Options, []string{"rbind", "rw", "rslave"}) {
		t.Errorf("/mnt/x: %+v", m)
	}
	if m := mountAt(s, "/rro"); m == nil || !slices.Equal(m.Options, []string{"rbind", "ro", "rprivate", "rro"}) {
		t.Errorf("/rro: %+v", m)
	}
	if s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("rootfs propagation %q", s.Linux.RootfsPropagation)
	}
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" {
			n++
			if !slices.Equal(m.Options, []string{"noexec", "nosuid", "nodev", "rw", "size=1048576", "mode=1777"}) {
				t.Errorf("/dev/shm options %v", m.Options)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d mounts at /dev/shm, want the user's only", n)
	}
	if err := WithMounts([]types.Mount{{Type: "tmpfs", Target: "/a"}, {Type: "tmpfs", Target: "/a/"}})(Default()); err == nil {
		t.Error("duplicate destination accepted")
	}
	if err := WithMounts([]types.Mount{{Type: "volume", Target: "/a"}})(Default()); err == nil {
		t.Error("volume type accepted")
	}
	if err := WithMounts([]types.Mount{{Type: "bind", Source: "rel", Target: "/a"}})(Default()); err == nil {
		t.Error("relative bind source accepted")
	}
	for _, m := range []types.Mount{
		{Type: "bind", Source: "/t", Target: "/a", RecursiveReadOnly: true},
		{Type: "bind", Source: "/t", Target: "/a", ReadOnly: true, RecursiveReadOnly: true, Propagation: "rslave"},
	} {
		if err := WithMounts([]types.Mount{m})(Default()); err == nil {
			t.Errorf("recursive read-only %+v accepted", m)
		}
	}
}

func TestWithHostChannelMountsWinsAndSorts(t *testing.T) {
	o := baseOptions()
	o.HostConfig.SystemContainer = true
	o.Mounts = []types.Mount{{Type: "tmpfs", Target: "/tmp/inner"}}
	o.ExtraMounts = []specs.Mount{{Destination: "/tmp", Type: "bind", Source: "/hc", Options: []string{"rbind", "rw"}}}
	s := gen(t, testHost(t, cgroups.Hybrid), o)
	m := mountAt(s, "/tmp")
	if m == nil || m.Type != "bind" || m.Source != "/hc" {
		t.Fatalf("/tmp: %+v", m)
	}
	idx := func(d string) int {
		return slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == d })
	}
	if idx("/tmp") > idx("/tmp/inner") || idx("/sys/fs/cgroup") > idx("/sys/fs/cgroup/systemd") || idx("/dev") > idx("/dev/pts") {
		t.Errorf("mount order wrong: %v", s.Mounts)
	}
}

func TestSecurityOpts(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	for _, tc := range []struct {
		name    string
		opts    []string
		priv    bool
		seccomp string // "default", "none", "file"
		nnp     bool
	}{
		{"default", nil, false, "default", false},
		{"unconfined", []string{"seccomp=unconfined"}, false, "none", false},
		{"file", []string{"seccomp=" + profile}, false, "file", false},
		{"old colon form", []string{"seccomp:" + profile}, false, "file", false},
		{"nnp", []string{"no-new-privileges"}, false, "default", true},
		{"nnp=false", []string{"no-new-privileges=false"}, false, "default", false},
		{"nnp:true", []string{"no-new-privileges:true"}, false, "default", true},
		{"privileged", nil, true, "none", false},
		{"privileged with a profile", []string{"seccomp=" + profile}, true, "file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions()
			o.HostConfig.SecurityOpt, o.HostConfig.Privileged = tc.opts, tc.priv
			s := gen(t, testHost(t, cgroups.Hybrid), o)
			got := "none"
			if sc := s.Linux.Seccomp; sc != nil {
				got = "default"
				if sc.DefaultAction == specs.ActAllow {
					got = "file"
				}
			}
			if got != tc.seccomp {
				t.Errorf("seccomp %s, want %s", got, tc.seccomp)
			}
			if s.Process.NoNewPrivileges != tc.nnp {
				t.Errorf("no_new_privs %v", s.Process.NoNewPrivileges)
			}
		})
	}
}

func TestPrivileged(t *testing.T) {
	o := baseOptions()
	o.HostConfig.Privileged = true
	h := testHost(t, cgroups.Hybrid)
	s := gen(t, h, o)
	if len(s.Process.Capabilities.Bounding) != len(h.CapBnd) || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("privileged: caps %d masked %v readonly %v", len(s.Process.Capabilities.Bounding), s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" {
		t.Errorf("device rules %+v", r)
	}
	if m := mountAt(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("/sys read-only when privileged")
	}
	if os.Geteuid() == 0 {
		devs, err := HostDevices("/dev")
		if err != nil || !slices.ContainsFunc(devs, func(d specs.LinuxDevice) bool {
			return d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3
		}) {
			t.Errorf("HostDevices(/dev): %v, no /dev/null in %d devices", err, len(devs))
		}
	}
}

func TestSystemContainerV1(t *testing.T) {
	o := baseOptions()
	o.Config.Env = []string{"A=1"}
	o.HostConfig.SystemContainer = true
	o.HostConfig.Memory = 256 << 20
	s := gen(t, testHost(t, cgroups.Hybrid), o)
	if !slices.Contains(nsTypes(s), "cgroup") {
		t.Error("no cgroup namespace")
	}
	if !slices.Contains(s.Process.Env, "container=isulad") || !slices.Contains(s.Process.Env, "A=1") {
		t.Errorf("env %v", s.Process.Env)
	}
	if !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_BOOT") || slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	for dst, want := range map[string][]string{
		"/run":                   {"nosuid", "nodev", "mode=755", "size=134217728"},
		"/run/lock":              {"nosuid", "nodev", "noexec", "mode=755", "size=134217728"},
		"/tmp":                   {"nosuid", "nodev", "mode=1777", "size=134217728"},
		"/dev/shm":               {"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"},
		"/sys/fs/cgroup":         {"nosuid", "noexec", "nodev", "relatime", "ro"},
		"/sys/fs/cgroup/systemd": {"rbind", "rw", "nosuid", "noexec", "nodev", "rprivate"},
		"/sys/fs/cgroup/unified": {"rbind", "rw", "nosuid", "noexec", "nodev", "rprivate"},
	} {
		m := mountAt(s, dst)
		if m == nil || !slices.Equal(m.Options, want) {
			t.Errorf("%s: %+v, want options %v", dst, m, want)
		}
	}
	if m := mountAt(s, "/sys/fs/cgroup/systemd"); m.Source != "/sys/fs/cgroup/systemd/isulad/abc" || m.Type != "bind" {
		t.Errorf("systemd bind %+v", m)
	}
	// Hybrid: the container's own cgroup2 directory, so systemd gets cgroup-empty events.
	if m := mountAt(s, "/sys/fs/cgroup/unified"); m.Source != "/sys/fs/cgroup/unified/isulad/abc" || m.Type != "bind" {
		t.Errorf("unified bind %+v", m)
	}
	if m := mountAt(gen(t, testHost(t, cgroups.V1), o), "/sys/fs/cgroup/unified"); m != nil {
		t.Errorf("unified bind on a v1 host without cgroup2: %+v", m)
	}
	// The extra seccomp rule.
	sc := s.Linux.Seccomp
	last := sc.Syscalls[len(sc.Syscalls)-1]
	if !slices.Equal(last.Names, SystemContainerSyscalls) || last.Action != specs.ActAllow {
		t.Errorf("last seccomp rule %+v", last)
	}
	// reboot is allowed by the default profile's CAP_SYS_BOOT rule too.
	// Without -m, no size on /run.
	o.HostConfig.Memory = 0
	s = gen(t, testHost(t, cgroups.Hybrid), o)
	if m := mountAt(s, "/run"); slices.ContainsFunc(m.Options, func(o string) bool { return strings.HasPrefix(o, "size=") }) {
		t.Errorf("/run sized without -m: %v", m.Options)
	}
	// cap-drop SYS_BOOT is honoured.
	o.HostConfig.CapDrop = []string{"sys_boot"}
	s = gen(t, testHost(t, cgroups.Hybrid), o)
	if slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_BOOT") {
		t.Error("--cap-drop SYS_BOOT ignored")
	}
	// No name=systemd hierarchy: a clear error.
	h := testHost(t, cgroups.V1)
	h.Cgroups.SystemdMount = ""
	if _, err := GenerateOn(h, o); err == nil || !strings.Contains(err.Error(), "name=systemd") {
		t.Errorf("no name=systemd: %v", err)
	}
}

func TestSystemContainerV2(t *testing.T) {
	o := baseOptions()
	o.HostConfig.SystemContainer = true
	s := gen(t, testHost(t, cgroups.V2), o)
	m := mountAt(s, "/sys/fs/cgroup")
	if m == nil || m.Type != "cgroup" || slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rw") {
		t.Errorf("v2 cgroup mount %+v", m)
	}
	if mountAt(s, "/sys/fs/cgroup/systemd") != nil {
		t.Error("v1 systemd bind on v2")
	}
	if !slices.Contains(nsTypes(s), "cgroup") {
		t.Error("no cgroup namespace")
	}
	// With --user-remap the delegation files of the container's cgroup go to the mapped root.
	o.UserRemap = &IDMap{UID: 1000, GID: 2000, Size: 100}
	s = gen(t, testHost(t, cgroups.V2), o)
	if s.Hooks == nil || len(s.Hooks.CreateRuntime) != 1 {
		t.Fatalf("hooks %+v", s.Hooks)
	}
	args := s.Hooks.CreateRuntime[0].Args
	want := []string{"chown", "1000:2000", "/sys/fs/cgroup/isulad/abc", "/sys/fs/cgroup/isulad/abc/cgroup.procs", "/sys/fs/cgroup/isulad/abc/cgroup.subtree_control", "/sys/fs/cgroup/isulad/abc/cgroup.threads"}
	if !slices.Equal(args, want) {
		t.Errorf("chown hook %v", args)
	}
}

func TestUserRemapV1(t *testing.T) {
	o := baseOptions()
	o.HostConfig.SystemContainer = true
	o.UserRemap = &IDMap{UID: 100000, GID: 100000, Size: 5}
	o.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	s := gen(t, testHost(t, cgroups.Hybrid), o)
	if !slices.Contains(nsTypes(s), "user") {
		t.Error("no user namespace")
	}
	if want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 5}}; !slices.Equal(s.Linux.UIDMappings, want) || !slices.Equal(s.Linux.GIDMappings, want) {
		t.Errorf("mappings %v %v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	if m := mountAt(s, "/dev/pts"); slices.Contains(m.Options, "gid=5") {
		t.Error("devpts gid=5 with gid 5 unmapped")
	}
	if args := s.Hooks.CreateRuntime[0].Args; !slices.Equal(args, []string{"chown", "-R", "100000:100000", "/sys/fs/cgroup/systemd/isulad/abc", "/sys/fs/cgroup/unified/isulad/abc"}) {
		t.Errorf("chown hook %v", args)
	}
	if len(s.Hooks.Poststop) != 1 {
		t.Errorf("user hooks lost: %+v", s.Hooks)
	}
	// Without a network namespace sysfs cannot be mounted in a user namespace: /sys is bound.
	sp := Default()
	WithNamespaces("host", false)(sp)
	WithUserRemap(IDMap{UID: 1, GID: 1, Size: 10})(sp)
	if m := mountAt(sp, "/sys"); m.Type != "bind" || m.Source != "/sys" {
		t.Errorf("/sys under userns without netns: %+v", m)
	}
	if err := WithUserRemap(IDMap{UID: 1, GID: 1})(Default()); err == nil {
		t.Error("size 0 accepted")
	}
}

func TestNsChangeOpt(t *testing.T) {
	h := testHost(t, cgroups.Hybrid)
	for _, tc := range []struct {
		opt          string
		writable, ro []string
	}{
		{"net", []string{"/proc/sys/net"}, []string{"/proc/sys/kernel", "/proc/sys/fs", "/proc/sys/vm", "/proc/sys/user"}},
		{"ipc", []string{"/proc/sys/net", "/proc/sys/kernel/shmmax", "/proc/sys/kernel/shmall", "/proc/sys/kernel/msgmax", "/proc/sys/kernel/sem", "/proc/sys/fs/mqueue"},
			[]string{"/proc/sys/kernel/hostname", "/proc/sys/kernel/panic", "/proc/sys/kernel/random", "/proc/sys/fs/file-max", "/proc/sys/vm"}},
		{"net,ipc", []string{"/proc/sys/net", "/proc/sys/kernel/sem", "/proc/sys/fs/mqueue"}, []string{"/proc/sys/kernel/hostname", "/proc/sys/fs/file-max", "/proc/sys/user"}},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			o := baseOptions()
			o.HostConfig.SystemContainer, o.HostConfig.NsChangeOpt = true, tc.opt
			s := gen(t, h, o)
			rp := s.Linux.ReadonlyPaths
			if slices.Contains(rp, "/proc/sys") {
				t.Fatal("/proc/sys still read-only as a whole")
			}
			for _, p := range tc.writable {
				if p == "/proc/sys/net" && tc.opt == "ipc" {
					if !slices.Contains(rp, p) {
						t.Errorf("%s not read-only with ipc only", p)
					}
					continue
				}
				if slices.Contains(rp, p) {
					t.Errorf("%s read-only", p)
				}
			}
			for _, p := range tc.ro {
				if !slices.Contains(rp, p) {
					t.Errorf("%s not read-only: %v", p, rp)
				}
			}
			for _, p := range []string{"/proc/bus", "/proc/sysrq-trigger"} {
				if !slices.Contains(rp, p) {
					t.Errorf("%s lost", p)
				}
			}
		})
	}
}

func TestDefaultStopSignal(t *testing.T) {
	for _, tc := range []struct {
		stop    string
		sys     bool
		systemd bool
		want    string
	}{
		{"", true, true, "SIGRTMIN+3"},
		{"SIGUSR1", true, true, "SIGUSR1"},
		{"", true, false, "SIGTERM"},
		{"", false, true, "SIGTERM"},
		{"SIGINT", false, false, "SIGINT"},
	} {
		o := Options{Config: types.Config{StopSignal: tc.stop}, HostConfig: types.HostConfig{SystemContainer: tc.sys}}
		if got := DefaultStopSignal(o, tc.systemd); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc, got, tc.want)
		}
	}
}

func TestWithUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\nstaff:x:50:\n"), 0o644)
	for _, tc := range []struct {
		user string
		want specs.User
		err  bool
	}{
		{"", specs.User{}, false},
		{"alice", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}, false},
		{"1000", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}, false},
		{"alice:staff", specs.User{UID: 1000, GID: 50}, false},
		{"2000:3000", specs.User{UID: 2000, GID: 3000}, false},
		{"2000", specs.User{UID: 2000}, false},
		{"bob", specs.User{}, true},
		{"alice:nogroup", specs.User{}, true},
		{"alice:", specs.User{}, true},
	} {
		s := Default()
		err := WithUser(root, tc.user)(s)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.user, err)
			continue
		}
		if err == nil && (s.Process.User.UID != tc.want.UID || s.Process.User.GID != tc.want.GID || !slices.Equal(s.Process.User.AdditionalGids, tc.want.AdditionalGids)) {
			t.Errorf("%q: %+v, want %+v", tc.user, s.Process.User, tc.want)
		}
	}
}

func TestGenerateUsesHost(t *testing.T) {
	// Generate on this machine: the daemon's bounding set is read, the layout detected.
	o := baseOptions()
	o.Config.Tty = true
	s, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Process.Env, "TERM=xterm") || !s.Process.Terminal {
		t.Errorf("tty: env %v", s.Process.Env)
	}
}
