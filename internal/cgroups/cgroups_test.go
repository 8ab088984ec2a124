package cgroups

import (
	"os"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ parent, id, want string }{
		{"", "abc", "/isulad/abc"},
		{"/isulad", "abc", "/isulad/abc"},
		{"custom/", "abc", "/custom/abc"},
		{"/a/b/", "abc", "/a/b/abc"},
		{"/", "abc", "/abc"},
	} {
		if got := Path(tc.parent, tc.id); got != tc.want {
			t.Errorf("Path(%q, %q) = %q, want %q", tc.parent, tc.id, got, tc.want)
		}
	}
}

func TestModeAt(t *testing.T) {
	if got := ModeAt(t.TempDir()); got != V1 {
		t.Errorf("plain directory: %s, want v1 (no cgroup2 anywhere)", got)
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err == nil {
		m := Mode()
		if m != V1 && m != Hybrid && m != V2 {
			t.Errorf("Mode() = %q", m)
		}
		t.Logf("this host: %s", m)
	}
}

const sampleMountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/sys\040temd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
`

func TestSystemdMount(t *testing.T) {
	if got := systemdMount(strings.NewReader(sampleMountinfo)); got != "/sys/fs/cgroup/sys temd" {
		t.Errorf("systemdMount = %q", got)
	}
	// A bind of a sub-cgroup (root not /) is not the hierarchy's mount point.
	sub := "40 31 0:28 /isulad/x /mnt/x rw - cgroup cgroup rw,name=systemd\n"
	if got := systemdMount(strings.NewReader(sub)); got != "" {
		t.Errorf("bind of a sub-cgroup taken: %q", got)
	}
	if got := systemdMount(strings.NewReader("garbage\n")); got != "" {
		t.Errorf("garbage: %q", got)
	}
}

func TestLayoutSystemdPath(t *testing.T) {
	l := Layout{Mode: Hybrid, SystemdMount: "/sys/fs/cgroup/systemd"}
	if got := l.SystemdPath("/isulad/abc"); got != "/sys/fs/cgroup/systemd/isulad/abc" {
		t.Errorf("SystemdPath = %q", got)
	}
	if got := (Layout{Mode: V2}).SystemdPath("/isulad/abc"); got != "" {
		t.Errorf("v2 SystemdPath = %q", got)
	}
	if d := Detect(); d.Mode != V2 && d.SystemdMount == "" {
		t.Logf("this v1 host has no name=systemd hierarchy")
	}
}

func TestV1Mounted(t *testing.T) {
	if !v1Mounted(strings.NewReader(sampleMountinfo), "memory") {
		t.Error("memory is on a v1 hierarchy in the sample")
	}
	// hugetlb is on the cgroup2 mount (a hybrid host's default), not on a v1 hierarchy.
	if v1Mounted(strings.NewReader(sampleMountinfo), "hugetlb") {
		t.Error("hugetlb found on v1 in the sample, where no v1 hierarchy has it")
	}
	moved := sampleMountinfo + "40 31 0:40 / /sys/fs/cgroup/hugetlb rw,relatime - cgroup cgroup rw,hugetlb\n"
	if !v1Mounted(strings.NewReader(moved), "hugetlb") {
		t.Error("hugetlb on its own v1 hierarchy not found")
	}
	// "name=systemd" is a named hierarchy, not a controller called systemd.
	if v1Mounted(strings.NewReader(sampleMountinfo), "systemd") {
		t.Error("name=systemd taken for a controller")
	}
	if v1Mounted(strings.NewReader("garbage\n"), "memory") {
		t.Error("garbage")
	}
	t.Logf("this host: hugetlb settable: %v", HasController("hugetlb"))
}
