package shim

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/fs/cgroup/cpu":      "/sys/fs/cgroup/cpu",
		`/mnt/a\040b`:             "/mnt/a b",
		`/mnt/tab\011x\134y`:      "/mnt/tab\tx\\y",
		`/mnt/bad\04`:             `/mnt/bad\04`,
		`/mnt/notoct\089`:         `/mnt/notoct\089`,
		`/mnt/end\`:               `/mnt/end\`,
		`\040\040`:                "  ",
		"/sys/fs/cgroup/cpu,cpua": "/sys/fs/cgroup/cpu,cpua",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
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
