package daemon

import (
	"slices"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// The cached cgroup mount points are the mount table's, and a cached list that names a
// directory that is no longer a cgroup file system is read again.
func TestCgroupMountpointsCache(t *testing.T) {
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Skip("no cgroup file system is mounted here")
	}
	var want []string
	for _, m := range ms {
		want = append(want, m.Mountpoint)
	}
	got, err := cgroupMountpoints()
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("cgroupMountpoints() = %v, %v; want %v", got, err, want)
	}
	// A stale entry (as after an unmount) is noticed.
	cgroupMounts.Lock()
	cgroupMounts.points = append(slices.Clone(cgroupMounts.points), t.TempDir())
	cgroupMounts.Unlock()
	if got, err := cgroupMountpoints(); err != nil || !slices.Equal(got, want) {
		t.Fatalf("after a stale entry: %v, %v; want %v", got, err, want)
	}
	// A changed /proc/cgroups (a controller moved) is noticed.
	cgroupMounts.Lock()
	cgroupMounts.key = "changed"
	cgroupMounts.points = want[:1] // still cgroup file systems: only the key tells
	cgroupMounts.Unlock()
	if got, err := cgroupMountpoints(); err != nil || (len(want) > 1 && !slices.Equal(got, want)) {
		t.Fatalf("after /proc/cgroups changed: %v, %v; want %v", got, err, want)
	}
}
