package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mkTree(t *testing.T, root string, files map[string]string, links map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIsSystemdInit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		links map[string]string
		cmd   string
		want  bool
	}{
		{"debian usrmerge", map[string]string{"usr/lib/systemd/systemd": "ELF"},
			map[string]string{"sbin": "usr/sbin", "lib": "usr/lib", "usr/sbin/init": "../lib/systemd/systemd"}, "/sbin/init", true},
		{"absolute link", map[string]string{"lib/systemd/systemd": "ELF"}, map[string]string{"sbin/init": "/lib/systemd/systemd"}, "/sbin/init", true},
		{"escaping relative link stays inside", map[string]string{"usr/lib/systemd/systemd": "ELF"},
			map[string]string{"sbin/init": "../../../../usr/lib/systemd/systemd"}, "/sbin/init", true},
		{"by PATH", map[string]string{"lib/systemd/systemd": "ELF"}, map[string]string{"sbin/init": "/lib/systemd/systemd"}, "init", true},
		{"systemd directly", map[string]string{"lib/systemd/systemd": "ELF"}, nil, "/lib/systemd/systemd", true},
		{"busybox init", map[string]string{"bin/busybox": "ELF"}, map[string]string{"sbin/init": "../bin/busybox"}, "/sbin/init", false},
		{"busybox by PATH", map[string]string{"bin/busybox": "ELF"}, map[string]string{"sbin/init": "/bin/busybox"}, "init", false},
		{"named systemd elsewhere", map[string]string{"opt/systemd": "ELF"}, nil, "/opt/systemd", false},
		{"dangling", nil, map[string]string{"sbin/init": "/lib/systemd/systemd"}, "/sbin/init", false},
		{"missing", nil, nil, "/sbin/init", false},
		{"loop", nil, map[string]string{"sbin/init": "init2", "sbin/init2": "init"}, "/sbin/init", false},
		{"directory", map[string]string{"lib/systemd/systemd/": ""}, nil, "/lib/systemd/systemd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mkTree(t, root, tc.files, tc.links)
			if got := IsSystemdInit(root, tc.cmd); got != tc.want {
				t.Errorf("IsSystemdInit(%s) = %v, want %v", tc.cmd, got, tc.want)
			}
		})
	}
	// A link that escapes must not find the host's systemd.
	outside := t.TempDir()
	mkTree(t, outside, map[string]string{"lib/systemd/systemd": "ELF"}, nil)
	root := filepath.Join(outside, "rootfs")
	mkTree(t, root, nil, map[string]string{"sbin/init": "../../lib/systemd/systemd"})
	if IsSystemdInit(root, "/sbin/init") {
		t.Error("followed a symlink out of the rootfs")
	}
}

func resolveIn(t *testing.T, rootfs, p string, clamp bool) (string, error) {
	t.Helper()
	r, err := openRoot(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	return r.resolve(p, clamp)
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, map[string]string{"etc/x": ""}, map[string]string{"abs": "/etc", "rel": "etc", "up": "../../etc", "bad": "../.."})
	for _, tc := range []struct {
		p     string
		clamp bool
		want  string
		err   bool
	}{
		{"/abs/x", false, "/etc/x", false},
		{"/rel/x", false, "/etc/x", false},
		{"/up/x", true, "/etc/x", false},
		{"/up/x", false, "", true},
		{"/bad", false, "", true},
		{"/../etc", false, "", true},
		{"/new/dir/file", false, "/new/dir/file", false},
		{"/etc/x/y", false, "/etc/x/y", false},
		{"/new/../../x", true, "", true},
	} {
		got, err := resolveIn(t, root, tc.p, tc.clamp)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("resolveInRoot(%s, clamp=%v) = %q, %v; want %q (err %v)", tc.p, tc.clamp, got, err, tc.want, tc.err)
		}
		if tc.err && tc.p != "/new/../../x" && !errors.Is(err, ErrEscape) {
			t.Errorf("%s: error %v is not ErrEscape", tc.p, err)
		}
	}
}

func TestWriteEnvTargetFile(t *testing.T) {
	root := t.TempDir()
	env := []string{"PATH=/bin", "A=b c", "container=isulad"}
	if err := WriteEnvTargetFile(root, "/etc/profile.d/env.sh", env); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "etc/profile.d/env.sh")
	b, _ := os.ReadFile(p)
	if string(b) != "PATH=/bin\nA=b c\ncontainer=isulad\n" {
		t.Errorf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Rewriting truncates.
	if err := WriteEnvTargetFile(root, "/etc/profile.d/env.sh", []string{"X=1"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "X=1\n" {
		t.Errorf("rewritten content %q", b)
	}
	// A symlink inside the rootfs with an absolute target is followed inside it.
	mkTree(t, root, map[string]string{"data/": ""}, map[string]string{"envdir": "/data"})
	if err := WriteEnvTargetFile(root, "/envdir/e", []string{"Y=2"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "data/e")); string(b) != "Y=2\n" {
		t.Errorf("through inside link: %q", b)
	}
}

func TestWriteEnvTargetFileEscapes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		links map[string]string
	}{
		{"relative", "etc/env", nil},
		{"dot dot", "/../host/victim", nil},
		{"dot dot inside", "/etc/../../host/victim", nil},
		{"root", "/", nil},
		{"dir link up", "/d/victim", map[string]string{"d": "../host"}},
		{"file link up", "/env", map[string]string{"env": "../../../host/victim"}},
		{"absolute host path", "/env", map[string]string{"env": "%HOST%/victim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			host := filepath.Join(base, "host")
			root := filepath.Join(base, "rootfs")
			mkTree(t, host, map[string]string{"victim": "keep"}, nil)
			os.MkdirAll(root, 0o755)
			for l, target := range tc.links {
				mkTree(t, root, nil, map[string]string{l: strings.ReplaceAll(target, "%HOST%", host)})
			}
			err := WriteEnvTargetFile(root, tc.path, []string{"A=1"})
			if b, _ := os.ReadFile(filepath.Join(host, "victim")); string(b) != "keep" {
				t.Errorf("host file changed to %q", b)
			}
			if tc.name == "absolute host path" {
				// An absolute target is taken inside the rootfs: it is written there, not on the host.
				if err != nil {
					t.Fatalf("absolute target inside the rootfs: %v", err)
				}
				if b, _ := os.ReadFile(filepath.Join(root, host, "victim")); string(b) != "A=1\n" {
					t.Errorf("not written inside the rootfs: %q", b)
				}
				return
			}
			if err == nil {
				t.Errorf("escape %q not refused", tc.path)
			}
		})
	}
}
