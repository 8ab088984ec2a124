package integration

// Regression tests for the host-channel defects of issue 10 (items 1, 5, 9, 10 and 16), run
// as the attacks and mistakes that found them.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nobody = 65534

// mountsBelow returns the mountinfo lines of mounts at or below any of dirs.
func mountsBelow(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				out = append(out, s.Text())
			}
		}
	}
	return out
}

// swapScript runs as nobody: it waits until the channel is mounted at $1/etc (the tmpfs root
// is sticky, the directory the engine made is not), then renames $1 away and puts a symlink
// to $2 in its place, before the runtime binds the channel into the container.
const swapScript = `D="$1"; i=0
while [ ! -k "$D/etc" ]; do i=$((i+1)); [ $i -lt 2000000 ] || exit 3; done
mv "$D" "$D.old" && ln -s "$2" "$D" && echo swapped`

// Issue 10, item 1: a user who owns an ancestor of the host path swaps it for a symlink
// between the engine's mount and the runtime's bind. The container must get the channel's
// tmpfs, never the symlink's target, and nothing may stay mounted after rm.
func TestHostChannelSwapAttack(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	victim := filepath.Join(base, "victim")
	if err := os.MkdirAll(filepath.Join(victim, "etc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "etc", "secret"), []byte("TOPSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	swapped := 0
	const tries = 6
	for i := range tries {
		mode := []string{"ro", "rw"}[i%2]
		att := filepath.Join(base, fmt.Sprintf("att%d", i))
		if err := os.Mkdir(att, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(att, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(att, "d")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		attacker := exec.CommandContext(ctx, "/bin/sh", "-c", swapScript, "sh", dir, victim)
		attacker.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var aout strings.Builder
		attacker.Stdout, attacker.Stderr = &aout, &aout
		if err := attacker.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		r := d.Isula("run", "--rm", "--host-channel", dir+"/etc:/ch:"+mode+":8M", "--external-rootfs", busyboxRoot, "none",
			"sh", "-c", "echo pwned > /ch/pwned 2>/dev/null; cat /ch/secret 2>&1; ls -a /ch; echo listed")
		werr := attacker.Wait()
		cancel()
		t.Logf("try %d (%s): attacker %v %q; container exit %d: %q %q", i, mode, werr, aout.String(), r.Code, r.Stdout, r.Stderr)
		if strings.Contains(aout.String(), "swapped") {
			swapped++
		}
		if strings.Contains(r.Stdout, "TOPSECRET") {
			t.Errorf("try %d (%s): the container saw the symlink target's files: %q", i, mode, r.Stdout)
		}
		if _, err := os.Lstat(filepath.Join(victim, "etc", "pwned")); err == nil {
			t.Errorf("try %d (%s): the container wrote into the symlink's target", i, mode)
			os.Remove(filepath.Join(victim, "etc", "pwned"))
		}
		if r.Code == 0 && !strings.Contains(r.Stdout, "listed") {
			t.Errorf("try %d: the container did not run its command: %s", i, r)
		}
		if left := mountsBelow(base, d.State); len(left) > 0 {
			t.Errorf("try %d: mounts left after run --rm:\n%s", i, strings.Join(left, "\n"))
		}
	}
	if b, err := os.ReadFile(filepath.Join(victim, "etc", "secret")); err != nil || string(b) != "TOPSECRET\n" {
		t.Errorf("the victim's file was touched: %q %v", b, err)
	}
	// The attack must have happened for the test to mean anything.
	if swapped < tries/2 {
		t.Fatalf("the attacker swapped the path in only %d of %d tries", swapped, tries)
	}
}

// Issue 10, item 9: a parent of the host path renamed while the container runs; rm must
// unmount the channel where it is now (or refuse), never report it removed while it stays
// mounted with its data.
func TestHostChannelRemoveAfterParentRenamed(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	hp := filepath.Join(base, "p1", "sub", "ch")
	d.Must("run", "-d", "--name", "moved", "--host-channel", hp+":/c:rw:1M", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	if err := os.WriteFile(filepath.Join(hp, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(base, "p1", "sub.moved")
	if err := os.Rename(filepath.Join(base, "p1", "sub"), moved); err != nil {
		t.Fatal(err)
	}
	r := d.Isula("rm", "-f", "moved")
	left := mountsBelow(base, d.State)
	switch {
	case r.Code == 0 && len(left) > 0:
		t.Fatalf("rm -f succeeded but the channel stays mounted:\n%s", strings.Join(left, "\n"))
	case r.Code != 0 && !strings.Contains(d.Must("ps", "-a", "--format", "{{.Names}}"), "moved"):
		t.Fatalf("rm -f failed (%s) and the container is gone: its channel is lost", r)
	case r.Code != 0:
		t.Fatalf("rm -f refused: %s", r)
	}
	if _, err := os.Lstat(filepath.Join(moved, "ch", "data")); err == nil {
		t.Error("the channel's data is still visible at the renamed path")
	}
}

// Issue 10, item 5: the daemon refuses to start on state directories that another user can
// write (a non-root user could forge records there), with one line naming the directory.
func TestDaemonRefusesWritableStateDirs(t *testing.T) {
	for _, sub := range []string{"graph", "graph/hostchannels", "graph/containers", "state", "state/hostchannels"} {
		t.Run(strings.ReplaceAll(sub, "/", "-"), func(t *testing.T) {
			dir, err := os.MkdirTemp("", "isulad-dirs-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			bad := filepath.Join(dir, sub)
			if err := os.MkdirAll(bad, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(bad, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "isulad"), "--graph", filepath.Join(dir, "graph"),
				"--state", filepath.Join(dir, "state"), "-H", "unix://"+filepath.Join(dir, "sock"),
				"--config-file", filepath.Join(dir, "daemon.json"))
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("isulad started on a world-writable %s (killed after 20 s):\n%s", bad, out)
			}
			if err == nil {
				t.Fatalf("isulad exited 0 on a world-writable %s", bad)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, strconv.Quote(bad)) || !strings.Contains(last, "writable by group or others") {
				t.Fatalf("isulad's error does not name %s and the problem:\n%s", bad, out)
			}
		})
	}
}

// Issue 10, item 10: the channel's size bounds its inodes too, and the sizes of a
// container's channels may not add up past half of the host's memory.
func TestHostChannelMemoryBounds(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	hp := filepath.Join(base, "tiny")
	r := d.Isula("run", "--rm", "--host-channel", hp+":/c:rw:4K", "--external-rootfs", busyboxRoot, "none",
		"sh", "-c", "i=0; while [ $i -lt 5000 ] && mkdir /c/$i 2>/dev/null; do i=$((i+1)); done; echo made=$i")
	made := -1
	if _, err := fmt.Sscanf(strings.TrimSpace(r.Stdout), "made=%d", &made); err != nil || made < 0 {
		t.Fatalf("no count from the container: %s", r)
	}
	t.Logf("a 4K channel took %d empty directories", made)
	if made >= 2048 {
		t.Errorf("a 4K channel took %d empty directories; want its inodes bounded", made)
	}
	total, avail := memInfo(t)
	const n = 4
	each := total/2/n + 1<<20
	if each > avail {
		t.Skipf("the host has %d bytes available, less than one channel of %d bytes of the sum check", avail, each)
	}
	args := []string{"create"}
	for i := range n {
		args = append(args, "--host-channel", fmt.Sprintf("%s/sum%d:/s%d:rw:%d", base, i, i, each))
	}
	r = d.Isula(append(args, "--external-rootfs", busyboxRoot, "none", "true")...)
	if r.Code == 0 || !strings.Contains(r.Stderr, "add up to") || !strings.Contains(r.Stderr, "half of total memory") ||
		strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
		t.Fatalf("%d channels of %d bytes (host total %d): want one refusal line: %s", n, each, total, r)
	}
	if _, err := os.Lstat(filepath.Join(base, "sum0")); err == nil {
		t.Error("a refused create left a channel directory")
	}
}

func memInfo(t *testing.T) (total, avail int64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "MemTotal:":
				total = n * 1024
			case "MemAvailable:":
				avail = n * 1024
			}
		}
	}
	return total, avail
}

// Issue 10, item 16: what create must refuse before anything is made, and the warning's
// prefix.
func TestHostChannelRefusedAtCreate(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	other := Rootfs(t)
	d.Must("create", "--name", "other", "--external-rootfs", other, "none", "true")
	long := filepath.Join(base, strings.Repeat("d/", 2100)+"ch")
	for _, c := range []struct{ flag, want, left string }{
		{long + ":/c", "bytes long (want at most 4095", filepath.Join(base, "d")},
		{base + "/a:/etc/passwd", `container path "/etc/passwd" is a regular file in the rootfs`, base + "/a"},
		{base + "/b:/bin/sh/x", "lies below something in the rootfs that is not a directory", base + "/b"},
		{other + "/mnt/ch:/c", "lies inside the rootfs of another container", other + "/mnt/ch"},
		{d.Graph + "/x:/c", "lies inside the engine's graph directory", d.Graph + "/x"},
	} {
		r := d.Isula("create", "--host-channel", c.flag, "--external-rootfs", busyboxRoot, "none", "true")
		if r.Code == 0 || !strings.Contains(r.Stderr, c.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
			t.Errorf("--host-channel %.80s...: want one refusal line containing %q: %s", c.flag, c.want, r)
		}
		if _, err := os.Lstat(c.left); err == nil {
			t.Errorf("a refused create left %s", c.left)
		}
	}
	// The other way round: a new container's rootfs around an existing channel.
	around := filepath.Join(base, "around")
	if err := os.Mkdir(around, 0o755); err != nil {
		t.Fatal(err)
	}
	d.Must("create", "--host-channel", around+"/ch:/c", "--external-rootfs", busyboxRoot, "none", "true")
	if r := d.Isula("create", "--external-rootfs", around, "none", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "lie inside one another") {
		t.Errorf("a rootfs containing another container's channel: want a refusal: %s", r)
	}
	r := d.Isula("create", "-m", "16m", "--host-channel", base+"/w:/w:rw:64M", "--external-rootfs", busyboxRoot, "none", "true")
	if r.Code != 0 || !strings.Contains(r.Stderr, "WARNING: host channels total") || strings.Contains(r.Stderr, "WARNING: WARNING") {
		t.Errorf("want one WARNING: prefix on the memory warning: %s", r)
	}
}
