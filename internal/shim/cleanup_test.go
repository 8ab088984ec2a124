package shim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// The mount points of the cgroup hierarchies come from mountinfo with its
// octal escapes undone; a hierarchy mounted from below its root stops the fast
// path.
func TestHierarchyRoots(t *testing.T) {
	cases := map[string]string{
		"/sys/fs/cgroup/cpu":      "/sys/fs/cgroup/cpu",
		`/mnt/a\040b`:             "/mnt/a b",
		`/mnt/tab\011x\134y`:      "/mnt/tab\tx\\y",
		`/mnt/bad\04`:             `/mnt/bad\04`,
		`/mnt/notoct\089`:         `/mnt/notoct\089`,
		`/mnt/end\`:               `/mnt/end\`,
		`\040\040`:                "  ",
		"/sys/fs/cgroup/cpu,cpua": "/sys/fs/cgroup/cpu,cpua",
	}
	for in, want := range cases {
		line := "36 31 0:31 / " + in + " rw,nosuid shared:15 - cgroup cgroup rw,cpu\n"
		ms, err := mountinfo.GetMountsFromReader(strings.NewReader(line), mountinfo.FSTypeFilter("cgroup", "cgroup2"))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got, err := hierarchyRoots(ms)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("mount point %q = %q, %v; want %q", in, got, err, want)
		}
	}
	sub := "40 31 0:28 /isulad/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	ms, err := mountinfo.GetMountsFromReader(strings.NewReader(sub), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hierarchyRoots(ms); !errors.Is(err, errNoFastDelete) {
		t.Errorf("hierarchy mounted from a sub-cgroup: %v, want errNoFastDelete", err)
	}
}

func TestReadBundleInfo(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"linux":{"cgroupsPath":"/isulad/x","namespaces":[{"type":"mount"},{"type":"pid"}]}}`)
	if bi := readBundleInfo(dir); !bi.ok || !bi.ownPidNS || bi.hooks || bi.cgroupsPath != "/isulad/x" {
		t.Errorf("plain: %+v", bi)
	}
	write(`{"linux":{"cgroupsPath":"/isulad/x","namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}]}}`)
	if bi := readBundleInfo(dir); bi.ownPidNS {
		t.Errorf("joined pid ns counted as own: %+v", bi)
	}
	write(`{"hooks":{"poststop":[{"path":"/bin/true"}]},"linux":{"cgroupsPath":"/isulad/x","namespaces":[{"type":"pid"}]}}`)
	if bi := readBundleInfo(dir); !bi.hooks {
		t.Errorf("poststop hook missed: %+v", bi)
	}
	write(`not json`)
	if bi := readBundleInfo(dir); bi.ok {
		t.Errorf("bad spec read as ok: %+v", bi)
	}
}

func TestFastDeleteRefusals(t *testing.T) {
	r := &runtime{root: t.TempDir()}
	ok := bundleInfo{ok: true, ownPidNS: true, cgroupsPath: "/isulad-test/x"}
	for name, tc := range map[string]struct {
		id string
		bi bundleInfo
	}{
		"unread spec":     {"x", bundleInfo{}},
		"shared pid ns":   {"x", bundleInfo{ok: true, cgroupsPath: "/a/b"}},
		"poststop hooks":  {"x", bundleInfo{ok: true, ownPidNS: true, hooks: true, cgroupsPath: "/a/b"}},
		"systemd path":    {"x", bundleInfo{ok: true, ownPidNS: true, cgroupsPath: "system.slice:isulad:x"}},
		"root cgroup":     {"x", bundleInfo{ok: true, ownPidNS: true, cgroupsPath: "/"}},
		"id with a slash": {"../x", ok},
		"empty id":        {"", ok},
	} {
		if err := r.fastDelete(tc.id, tc.bi); err == nil {
			t.Errorf("%s: fast delete accepted", name)
		}
	}
	if err := (&runtime{}).fastDelete("x", ok); err == nil {
		t.Error("no runtime root: fast delete accepted")
	}
	// A container the runtime does not know: an error (the runtime's delete decides).
	if err := r.fastDelete("missing", ok); err == nil {
		t.Error("unknown container: fast delete accepted")
	}
}
