package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeOf lists every path below dir with its type and size (a fingerprint to compare).
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			b.WriteString(p + " ERR " + err.Error() + "\n")
			return nil
		}
		b.WriteString(strings.TrimPrefix(p, dir) + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			b.WriteString(" " + string(rune('0'+fi.Size()%10)))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// noMountsUnder fails if anything is mounted at or below dir.
func noMountsUnder(t *testing.T, dir string) {
	t.Helper()
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && (unescapeMount(f[4]) == dir || strings.HasPrefix(unescapeMount(f[4]), dir+"/")) {
				t.Errorf("mount on the host at %s", l)
			}
		}
	}
}

// TestSocketRefusesNonRootWhateverItsMode: even with the socket opened to everyone (0666),
// a non-root client is refused by the daemon's SO_PEERCRED check.
func TestSocketRefusesNonRootWhateverItsMode(t *testing.T) {
	d := StartDaemon(t)
	os.Chmod(d.Dir, 0o755)
	if err := os.Chmod(d.Sock, 0o666); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(d.Sock, 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, args := range [][]string{{"ps"}, {"version"}, {"create", "--external-rootfs", busyboxRoot, "none", "true"}} {
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "isula"), append([]string{"-H", "unix://" + d.Sock}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("nobody used the API through a 0666 socket (isula %s): %v %s", args[0], err, out)
		}
		if strings.Contains(string(out), "Server") || strings.Contains(string(out), "CONTAINER") {
			t.Fatalf("nobody got an answer from the daemon: %s", out)
		}
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("a refused client created a container: %s", out)
	}
}

// TestHostChannelParentSymlink: a host path whose parent is a symlink is refused, and
// nothing is made where the symlink points.
func TestHostChannelParentSymlink(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink(real, link)
	os.Symlink(filepath.Join(base, "nowhere"), filepath.Join(base, "dangling"))
	for _, hp := range []string{
		filepath.Join(link, "ch"),
		filepath.Join(link, "sub", "ch"),
		filepath.Join(base, "dangling", "ch"),
		filepath.Join(base, "link", "..", "link", "ch"),
	} {
		r := d.Isula("create", "--host-channel", hp+":/c", "--external-rootfs", busyboxRoot, "none", "true")
		if r.Code != 125 {
			t.Errorf("--host-channel %s under a symlinked parent: %s", hp, r)
		}
	}
	if ents := dirNames(real); len(ents) != 0 {
		t.Errorf("made under the symlink's target: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(base, "nowhere")); err == nil {
		t.Errorf("made the dangling symlink's target")
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Errorf("containers made: %s", out)
	}
}

// TestHostChannelParentSwapped: a parent the engine made, swapped for a symlink to another
// place holding a directory of the same name before start, makes the engine neither mount
// nor delete there.
func TestHostChannelParentSwapped(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	hp := filepath.Join(base, "p", "ch")
	victim := filepath.Join(base, "victim")
	os.MkdirAll(filepath.Join(victim, "ch"), 0o755)
	os.WriteFile(filepath.Join(victim, "ch", "keep"), []byte("precious"), 0o644)
	d.Must("create", "--name", "swap", "--host-channel", hp+":/c", "--external-rootfs", busyboxRoot, "none", "sleep", "60")
	if err := os.Rename(filepath.Join(base, "p"), filepath.Join(base, "moved")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(victim, filepath.Join(base, "p"))
	r := d.Isula("start", "swap")
	noMountsUnder(t, victim)
	if r.Code == 0 {
		// Only acceptable if the tmpfs went onto the directory the engine made.
		if m := mountOf(filepath.Join(base, "moved", "ch")); m == "" {
			t.Errorf("start through a swapped parent succeeded, mount not on the engine's directory")
		}
	}
	d.Isula("rm", "-f", "swap")
	noMountsUnder(t, victim)
	if b, err := os.ReadFile(filepath.Join(victim, "ch", "keep")); err != nil || string(b) != "precious" {
		t.Fatalf("the symlink's target was touched: %v %q", err, b)
	}
	if fi, err := os.Lstat(filepath.Join(base, "p")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("rm removed someone else's symlink: %v", err)
	}
	noMountsUnder(t, filepath.Join(base, "moved"))
	os.Remove(filepath.Join(base, "p"))
}

// TestRmKeepsExternalThings: rm (plain, -f, --rm) never deletes the external rootfs, a bind
// mount's source, or anything else outside the engine's own directories.
func TestRmKeepsExternalThings(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	os.WriteFile(filepath.Join(rf, "marker"), []byte("mine"), 0o644)
	src := d.TempDir()
	os.WriteFile(filepath.Join(src, "data"), []byte("keep"), 0o644)
	before := treeOf(t, src)
	hp := filepath.Join(d.TempDir(), "ch")
	// A system container (the engine writes /etc files into the rootfs), a bind mount the
	// container writes into, a channel, a tmpfs.
	d.Must("run", "-d", "--name", "sys", "--system-container", "-v", src+":/src", "--host-channel", hp+":/c", "--tmpfs", "/scratch",
		"--external-rootfs", rf, "none", "sh", "-c", "echo x > /src/fromc; rm -f /src/fromc; echo y > /scratch/z; sleep 600")
	d.Must("rm", "-f", "sys")
	d.Must("run", "--rm", "-v", src+":/src:ro", "--external-rootfs", rf, "none", "ls", "/src")
	d.Must("create", "--name", "plain", "-v", src+":/src", "--external-rootfs", rf, "none", "true")
	d.Must("rm", "plain")
	if b, err := os.ReadFile(filepath.Join(rf, "marker")); err != nil || string(b) != "mine" {
		t.Fatalf("rootfs marker: %v %q", err, b)
	}
	for _, p := range []string{"bin/busybox", "bin/sh", "etc/passwd"} {
		if _, err := os.Lstat(filepath.Join(rf, p)); err != nil {
			t.Errorf("rm touched the external rootfs: %s: %v", p, err)
		}
	}
	if after := treeOf(t, src); after != before {
		t.Errorf("bind source changed:\n%s\n->\n%s", before, after)
	}
	noMountsUnder(t, rf)
	noMountsUnder(t, src)
}

// TestContainerPathsStayInRootfs: ".." in mount destinations, and symlinks inside the rootfs
// pointing at host paths (absolute and relative), never make a mount or a file on the host.
func TestContainerPathsStayInRootfs(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	victim := d.TempDir() // a host directory the container's symlinks point at
	os.WriteFile(filepath.Join(victim, "keep"), []byte("precious"), 0o644)
	before := treeOf(t, victim)
	src := d.TempDir()
	os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644)
	os.MkdirAll(filepath.Join(rf, "mnt"), 0o755)
	os.Symlink(victim, filepath.Join(rf, "mnt", "abs"))
	os.Symlink(strings.Repeat("../", 12)+strings.TrimPrefix(victim, "/"), filepath.Join(rf, "mnt", "rel"))
	dotdot := strings.Repeat("/..", 8) + victim
	cases := [][]string{
		{"-v", src + ":" + dotdot + "/v"},
		{"-v", src + ":/mnt/abs/v"},
		{"-v", src + ":/mnt/rel/v"},
		{"--mount", "type=bind,source=" + src + ",target=/mnt/abs/m"},
		{"--tmpfs", "/mnt/abs/t"},
		{"--tmpfs", "/mnt/rel/t"},
		{"--host-channel", filepath.Join(d.TempDir(), "ch1") + ":/mnt/abs/hc"},
		{"--host-channel", filepath.Join(d.TempDir(), "ch2") + ":/mnt/rel/hc"},
		{"-v", src + ":/mnt/abs"},
	}
	accepted := 0
	for _, c := range cases {
		args := append([]string{"run", "--rm"}, c...)
		r := d.Isula(append(args, "--external-rootfs", rf, "none", "sh", "-c", "ls /mnt/abs/ /mnt/rel/ >/dev/null 2>&1; touch /mnt/abs/v/w /mnt/abs/t/w /mnt/abs/hc/w 2>/dev/null; true")...)
		if r.Code == 0 {
			accepted++
		}
		noMountsUnder(t, victim)
		if after := treeOf(t, victim); after != before {
			t.Fatalf("%v: the host directory changed:\n%s\n->\n%s", c, before, after)
		}
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Errorf("left: %s", out)
	}
	t.Logf("%d of %d escaping destinations accepted (resolved inside the rootfs), the host untouched", accepted, len(cases))
}

// TestRootfsFilesStayInRootfs: --env-target-file and a system container's /etc files never
// write through a symlink of the rootfs pointing out of it.
func TestRootfsFilesStayInRootfs(t *testing.T) {
	d := StartDaemon(t)
	victim := d.TempDir()
	before := treeOf(t, victim)
	type tc struct {
		name   string
		setup  func(rf string)
		args   []string
		within string // where an accepted write must land, inside the rootfs
	}
	rel := strings.Repeat("../", 12) + strings.TrimPrefix(victim, "/")
	cases := []tc{
		{"env file abs link", func(rf string) { os.Symlink(filepath.Join(victim, "env"), filepath.Join(rf, "etc", "envlink")) }, []string{"--env-target-file", "/etc/envlink"}, victim + "/env"},
		{"env file rel link", func(rf string) { os.Symlink(rel+"/env", filepath.Join(rf, "etc", "envlink")) }, []string{"--env-target-file", "/etc/envlink"}, ""},
		{"env file dir link", func(rf string) { os.Symlink(victim, filepath.Join(rf, "envdir")) }, []string{"--env-target-file", "/envdir/sub/env"}, victim + "/sub/env"},
		{"env file dotdot", func(rf string) {}, []string{"--env-target-file", strings.Repeat("/..", 8) + victim + "/env"}, ""},
		{"hostname link", func(rf string) {
			os.Remove(filepath.Join(rf, "etc", "hostname"))
			os.Symlink(filepath.Join(victim, "hostname"), filepath.Join(rf, "etc", "hostname"))
		}, []string{"--system-container"}, ""},
		{"etc link", func(rf string) {
			os.RemoveAll(filepath.Join(rf, "etc"))
			os.Symlink(victim, filepath.Join(rf, "etc"))
		}, []string{"--system-container"}, ""},
	}
	for _, c := range cases {
		rf := Rootfs(t)
		c.setup(rf)
		args := append([]string{"create", "--name", "f"}, c.args...)
		r := d.Isula(append(args, "--external-rootfs", rf, "none", "true")...)
		if r.Code == 0 {
			r = d.Isula("start", "-a", "f")
			d.Isula("rm", "-f", "f")
		}
		if after := treeOf(t, victim); after != before {
			t.Fatalf("%s: written on the host:\n%s\n->\n%s", c.name, before, after)
		}
		// An absolute symlink means the same inside the container as a chroot would: it may
		// be followed, but then within the rootfs (RESOLVE_IN_ROOT), never on the host.
		if c.within != "" && r.Code == 0 {
			if _, err := os.Stat(filepath.Join(rf, c.within)); err != nil {
				t.Errorf("%s: accepted, but the file is not inside the rootfs at %s: %v", c.name, c.within, err)
			}
		} else if strings.HasPrefix(c.name, "env file") && r.Code == 0 {
			t.Errorf("%s: --env-target-file escaping the rootfs was not refused: %s", c.name, r)
		}
		t.Logf("%s: exit %d %s", c.name, r.Code, strings.TrimSpace(r.Stderr))
	}
}
