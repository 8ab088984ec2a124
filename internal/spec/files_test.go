package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
)

func TestParseUserRemap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *IDMap
	}{
		{"100000:100000:65535", &IDMap{100000, 100000, 65535}},
		{"0:0:1", &IDMap{0, 0, 1}},
		{"1000:2000:10", &IDMap{1000, 2000, 10}},
		{"4294901760:1:65534", &IDMap{4294901760, 1, 65534}},
		{"4294901760:1:65535", &IDMap{4294901760, 1, 65535}}, // last id 2^32-2
		{"4294901761:1:65535", nil},                          // last id would be 2^32-1 (-1)
		{"1:2:0", nil},
		{"1:2:65536", nil},
		{"-1:2:3", nil},
		{"+1:2:3", nil},
		{"1:2", nil},
		{"1:2:3:4", nil},
		{"a:2:3", nil},
		{"1::3", nil},
		{"", nil},
		{" 1:2:3", nil},
		{"0x10:2:3", nil},
		{"1_0:2:3", nil},
		{"4294967296:1:1", nil},
	} {
		got, err := ParseUserRemap(tc.in)
		if tc.want == nil {
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--user-remap") {
				t.Errorf("ParseUserRemap(%q) = %+v, %v; want an invalid-argument error", tc.in, got, err)
			}
			continue
		}
		if err != nil || *got != *tc.want {
			t.Errorf("ParseUserRemap(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseUserRemap(f *testing.F) {
	for _, s := range []string{"100000:100000:65535", "0:0:1", "1:2", "-1:0:1", "4294967295:0:1", "1:1:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseUserRemap(s)
		if err != nil {
			if m != nil {
				t.Fatal("map with error")
			}
			return
		}
		if m.Size < 1 || m.Size > 65535 {
			t.Fatalf("%q: size %d", s, m.Size)
		}
		if uint64(m.UID)+uint64(m.Size) > 1<<32-1 || uint64(m.GID)+uint64(m.Size) > 1<<32-1 {
			t.Fatalf("%q: range overflows", s)
		}
		if strings.Count(s, ":") != 2 {
			t.Fatalf("%q accepted", s)
		}
	})
}

func TestParseHookSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	good := write("good.json", `{"prestart":[{"path":"/bin/true","args":["true"]}],"poststart":[{"path":"/bin/echo","timeout":5}],"poststop":[{"path":"/bin/true","env":["A=1"]}]}`)
	h, err := ParseHookSpec(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.CreateRuntime) != 1 || h.CreateRuntime[0].Path != "/bin/true" || len(h.Poststart) != 1 || *h.Poststart[0].Timeout != 5 || h.Poststop[0].Env[0] != "A=1" {
		t.Errorf("hooks %+v", h)
	}
	// prestart hooks come first among the createRuntime hooks, as the runtimes run them, and
	// the spec built never holds the deprecated prestart list.
	both := write("both.json", `{"createRuntime":[{"path":"/b"}],"prestart":[{"path":"/a1"},{"path":"/a2"}]}`)
	h, err = ParseHookSpec(both)
	if err != nil {
		t.Fatal(err)
	}
	s := Default()
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/engine"}}}
	if err := WithHooks(h)(s); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, hk := range s.Hooks.CreateRuntime {
		paths = append(paths, hk.Path)
	}
	js, _ := json.Marshal(s.Hooks)
	if strings.Join(paths, " ") != "/engine /a1 /a2 /b" || strings.Contains(string(js), "prestart") {
		t.Errorf("createRuntime hooks %v, spec hooks %s; want /engine /a1 /a2 /b and no prestart", paths, js)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"relative", "hooks.json", "absolute"},
		{"fifo", fifo, "is a FIFO: want a regular file"},
		{"missing", filepath.Join(dir, "nope.json"), "no such file"},
		{"directory", dir, "is a directory: want a regular file"},
		{"bad json", write("bad.json", `{"prestart":[`), "invalid JSON"},
		{"unknown key", write("unknown.json", `{"prestrat":[]}`), "unknown field"},
		{"relative hook path", write("rel.json", `{"poststop":[{"path":"true"}]}`), "must be absolute"},
		{"zero timeout", write("timeout.json", `{"poststop":[{"path":"/bin/true","timeout":0}]}`), "timeout"},
		{"trailing", write("trailing.json", `{} {}`), "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHookSpec(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("err = %v, want one naming %s and %q", err, tc.path, tc.want)
			}
		})
	}
}

func TestValidateSystemOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   types.HostConfig
		want string // "" = accepted
	}{
		{"plain", types.HostConfig{}, ""},
		{"system all", types.HostConfig{SystemContainer: true, ExternalRootfs: "/r", NsChangeOpt: "net,ipc", UserRemap: "1000:1000:100", EnvTargetFile: "/etc/env", HookSpec: "/h.json"}, ""},
		{"ns-change-opt alone", types.HostConfig{NsChangeOpt: "net"}, "--ns-change-opt net: only with --system-container"},
		{"ns-change-opt bad", types.HostConfig{SystemContainer: true, NsChangeOpt: "net,pid"}, `invalid value "pid"`},
		{"ns-change-opt empty item", types.HostConfig{SystemContainer: true, NsChangeOpt: "net,"}, `invalid value ""`},
		{"ns-change-opt net with host net", types.HostConfig{SystemContainer: true, NsChangeOpt: "net", NetworkMode: "host"}, "--net host"},
		{"ns-change-opt ipc with host net", types.HostConfig{SystemContainer: true, NsChangeOpt: "ipc", NetworkMode: "host"}, ""},
		{"ns-change-opt privileged", types.HostConfig{SystemContainer: true, NsChangeOpt: "ipc", Privileged: true}, "--privileged"},
		{"user-remap alone", types.HostConfig{UserRemap: "1:1:1", ExternalRootfs: "/r"}, "--user-remap 1:1:1: only with --system-container"},
		{"user-remap no rootfs", types.HostConfig{SystemContainer: true, UserRemap: "1:1:1"}, "--external-rootfs"},
		{"user-remap bad", types.HostConfig{SystemContainer: true, ExternalRootfs: "/r", UserRemap: "1:1"}, "uid:gid:offset"},
		{"user-remap privileged", types.HostConfig{SystemContainer: true, ExternalRootfs: "/r", UserRemap: "1:1:1", Privileged: true}, "--privileged"},
		{"user-remap host net", types.HostConfig{SystemContainer: true, ExternalRootfs: "/r", UserRemap: "1:1:1", NetworkMode: "host"}, "--net host"},
		{"env-target-file relative", types.HostConfig{ExternalRootfs: "/r", EnvTargetFile: "env"}, "absolute"},
		{"env-target-file dotdot", types.HostConfig{ExternalRootfs: "/r", EnvTargetFile: "/a/../../b"}, ".."},
		{"env-target-file no rootfs", types.HostConfig{EnvTargetFile: "/env"}, "--external-rootfs"},
		{"hook-spec relative", types.HostConfig{HookSpec: "h.json"}, "--hook-spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSystemOptions(types.Config{}, tc.hc)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an invalid-argument error containing %q", err, tc.want)
			}
		})
	}
}
