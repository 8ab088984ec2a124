package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/testenv"
)

// mountOf returns the mountinfo line of the mount exactly at path, or "".
func mountOf(path string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	line := ""
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			line = s.Text() // the last one is on top
		}
	}
	return line
}

func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestHostChannelManualExample(t *testing.T) {
	// The manual's example verbatim (only the rootfs differs: /root/myrootfs is the user's).
	if _, err := os.Lstat("/testdir"); err == nil {
		testenv.Missing(t, "/testdir exists on this host; the verbatim example needs it absent")
	}
	d := StartDaemon(t)
	rf := Rootfs(t)
	c := d.StartConsole(24, 80, "run", "--rm", "-it", "--host-channel", "/testdir:/testdir:rw:32M", "--system-container", "--external-rootfs", rf, "none", "init")
	c.Send("\n")
	c.Expect("#", 15*time.Second)
	c.Send("dd if=/dev/zero of=/testdir/test.file bs=1024 count=64K\n")
	c.Expect("No space left on device", 20*time.Second)
	c.Expect("32768+0 records out", 5*time.Second)
	if m := mountOf("/testdir"); !strings.Contains(m, "tmpfs") {
		t.Fatalf("/testdir is not a tmpfs on the host while the container runs: %q", m)
	}
	st, err := os.Stat("/testdir/test.file")
	if err != nil || st.Size() != 32768*1024 {
		t.Fatalf("host sees test.file of %v bytes (%v), want %d", st.Size(), err, 32768*1024)
	}
	c.Send("poweroff -f\n")
	c.Wait(30 * time.Second)
	if m := mountOf("/testdir"); m != "" {
		t.Fatalf("--rm left the mount: %s", m)
	}
	if _, err := os.Lstat("/testdir"); err == nil {
		t.Fatalf("--rm left /testdir")
	}
}

func TestHostChannelSharing(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	hp := filepath.Join(base, "parent", "ch")
	d.Must("run", "-d", "--name", "share", "--host-channel", hp+":/data:rw:300M", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	m := mountOf(hp)
	for _, want := range []string{" - tmpfs ", "nosuid", "nodev", "noexec", "size=307200k"} {
		if !strings.Contains(m, want) {
			t.Errorf("host mount of the channel lacks %q: %s", want, m)
		}
	}
	st, _ := os.Stat(hp)
	if st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("channel root mode %v, want 1777", st.Mode())
	}
	// Host -> container: a 200 MiB file is seen as 200M by du inside.
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(hp, "big"), "bs=1M", "count=200").CombinedOutput(); err != nil {
		t.Fatalf("dd on host: %v %s", err, out)
	}
	if out := d.Must("exec", "share", "du", "-m", "/data/big"); !strings.HasPrefix(out, "200") {
		t.Fatalf("du inside: %q", out)
	}
	// Container -> host, live.
	d.Must("exec", "share", "sh", "-c", "echo from-inside > /data/in.txt")
	if b, _ := os.ReadFile(filepath.Join(hp, "in.txt")); string(b) != "from-inside\n" {
		t.Fatalf("host reads %q", b)
	}
	// A non-root host user can write into the channel.
	cmd := exec.Command("sh", "-c", "echo nobody > "+filepath.Join(hp, "nobody.txt"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nobody cannot write into the channel: %v %s", err, out)
	}
	// Nothing in the channel is executable on the host (noexec).
	os.WriteFile(filepath.Join(hp, "x.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
	if err := exec.Command(filepath.Join(hp, "x.sh")).Run(); err == nil {
		t.Fatalf("a script in the channel could be executed on the host")
	}
	// inspect shows the channel live.
	if v := d.Inspect("share", "{{json .HostConfig.HostChannel}}"); !strings.Contains(v, `"PathOnHost":"`+hp+`"`) || !strings.Contains(v, `"Size":314572800`) || !strings.Contains(v, `"Permissions":"rw"`) {
		t.Fatalf("inspect HostChannel: %s", v)
	}
	if v := d.Inspect("share", "{{(index .HostChannels 0).Mounted}} {{(index .HostChannels 0).UsedBytes}}"); !strings.HasPrefix(v, "true ") {
		t.Fatalf("inspect live status: %s", v)
	} else if n, _ := strconv.ParseInt(strings.Fields(v)[1], 10, 64); n < 200<<20 {
		t.Fatalf("UsedBytes %d < 200 MiB", n)
	}
	// Stop/start keeps the data; a daemon SIGKILL keeps it too.
	d.Must("stop", "-t", "1", "share")
	if m := mountOf(hp); m == "" {
		t.Fatalf("stop unmounted the channel")
	}
	d.Must("start", "share")
	d.Kill()
	d.Start()
	if out := d.Must("exec", "share", "cat", "/data/in.txt"); out != "from-inside" {
		t.Fatalf("after restart and daemon kill: %q", out)
	}
	d.Must("rm", "-f", "share")
	if m := mountOf(hp); m != "" {
		t.Fatalf("rm left the mount: %s", m)
	}
	if _, err := os.Lstat(filepath.Dir(hp)); err == nil {
		t.Fatalf("rm left the parent directory it made")
	}
	if _, err := os.Lstat(base); err != nil {
		t.Fatalf("rm removed a directory it did not make: %v", err)
	}
}

func TestHostChannelReadOnly(t *testing.T) {
	d := StartDaemon(t)
	hp := filepath.Join(d.TempDir(), "ro")
	d.Must("run", "-d", "--name", "ro", "--host-channel", hp+":/ro:ro", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	r := d.Isula("exec", "ro", "sh", "-c", "echo x > /ro/f")
	if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "Read-only file system") {
		t.Fatalf("write into a ro channel inside: %s", r)
	}
	if err := os.WriteFile(filepath.Join(hp, "h"), []byte("host"), 0o644); err != nil {
		t.Fatalf("host cannot write into a ro channel: %v", err)
	}
	if out := d.Must("exec", "ro", "cat", "/ro/h"); out != "host" {
		t.Fatalf("inside reads %q", out)
	}
	if v := d.Inspect("ro", "{{(index .HostConfig.HostChannels 0).Size}}"); v != "67108864" {
		t.Fatalf("default size: %s", v)
	}
}

func TestHostChannelSeveral(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	r := d.Isula("run", "-d", "--name", "two", "-m", "64m", "--host-channel", a+":/a:rw:20M", "--host-channel", b+":/b:ro:20M", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	if !strings.Contains(r.Stderr, "WARNING") {
		t.Errorf("no memory warning for 40M of channels with -m 64m: %q", r.Stderr)
	}
	out := d.Must("exec", "two", "sh", "-c", "mount | grep -E ' /(a|b) '")
	if !strings.Contains(out, " /a ") || !strings.Contains(out, " /b ") {
		t.Fatalf("mounts inside: %s", out)
	}
	if v := d.Inspect("two", "{{len .HostConfig.HostChannels}} {{.HostConfig.HostChannel.PathInContainer}}"); v != "2 /a" {
		t.Fatalf("inspect: %s", v)
	}
}

func TestHostChannelRaceAndBadValues(t *testing.T) {
	d := StartDaemon(t)
	hp := filepath.Join(d.TempDir(), "contested")
	var wg sync.WaitGroup
	res := make([]Result, 6)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = d.Isula("create", "--host-channel", hp+":/c", "--external-rootfs", busyboxRoot, "none", "true")
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range res {
		if r.Code == 0 {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d creates of one host path won: %v", wins, res)
	}
	existing := d.TempDir()
	bad := []string{
		"relative/path:/c",
		existing + ":/c",
		hp + "/inner:/c",
		"/proc/foo:/c",
		filepath.Join(d.TempDir(), "x") + ":/proc/x",
		filepath.Join(d.TempDir(), "x") + ":/",
		filepath.Join(d.TempDir(), "x") + ":/c:rx",
		filepath.Join(d.TempDir(), "x") + ":/c:rw:0",
		filepath.Join(d.TempDir(), "x") + ":/c:rw:100",
		filepath.Join(d.TempDir(), "x") + ":/c:rw:1e3",
		filepath.Join(d.TempDir(), "x") + ":/c:rw:-1M",
		filepath.Join(d.TempDir(), "x") + ":/c:rw:99999T",
		filepath.Join(d.TempDir(), "x"),
		filepath.Join(d.TempDir(), "x") + ":/c:rw:1M:extra",
	}
	before := d.Must("ps", "-aq")
	for _, v := range bad {
		r := d.Isula("create", "--host-channel", v, "--external-rootfs", busyboxRoot, "none", "true")
		if r.Code != 125 || !(strings.Contains(r.Stderr, "host channel") || strings.Contains(r.Stderr, "host-channel")) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("--host-channel %q: want one 'host channel' error line and exit 125, got %s", v, r)
		}
	}
	if after := d.Must("ps", "-aq"); after != before {
		t.Fatalf("bad values changed the container list")
	}
	// Two channels of one container on one container path.
	x, y := filepath.Join(d.TempDir(), "x"), filepath.Join(d.TempDir(), "y")
	if r := d.Isula("create", "--host-channel", x+":/same", "--host-channel", y+":/same", "--external-rootfs", busyboxRoot, "none", "true"); r.Code != 125 {
		t.Errorf("duplicate container path accepted: %s", r)
	}
	if _, err := os.Lstat(x); err == nil {
		t.Errorf("a refused create left %s", x)
	}
}

func TestHostChannelSymlinkSwap(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	hp := filepath.Join(base, "ch")
	victim := filepath.Join(base, "victim")
	os.Mkdir(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "keep"), []byte("precious"), 0o644)
	d.Must("create", "--name", "swap", "--host-channel", hp+":/c", "--external-rootfs", busyboxRoot, "none", "sleep", "60")
	if err := os.Remove(hp); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, hp); err != nil {
		t.Fatal(err)
	}
	if r := d.Isula("start", "swap"); r.Code == 0 {
		t.Fatalf("start mounted through a swapped symlink")
	}
	if m := mountOf(victim); m != "" {
		t.Fatalf("a tmpfs was mounted on the symlink's target: %s", m)
	}
	d.Must("rm", "-f", "swap")
	if b, err := os.ReadFile(filepath.Join(victim, "keep")); err != nil || string(b) != "precious" {
		t.Fatalf("the symlink's target was touched: %v %q", err, b)
	}
	if fi, err := os.Lstat(hp); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("rm removed someone else's symlink: %v", err)
	}
	os.Remove(hp)
}

func TestHostChannelKilledCreate(t *testing.T) {
	d := StartDaemon(t, "ISULAD_FAULTS=create-after-mkdir=kill")
	hp := filepath.Join(d.TempDir(), "half", "ch")
	r := d.Isula("create", "--host-channel", hp+":/c", "--external-rootfs", busyboxRoot, "none", "true")
	if r.Code == 0 {
		t.Fatalf("create succeeded although the daemon was killed in it")
	}
	<-d.exited
	if _, err := os.Lstat(hp); err != nil {
		t.Fatalf("fault point did not fire after the directory was made: %v", err)
	}
	d.extraEnv = nil
	d.Start()
	if _, err := os.Lstat(filepath.Dir(hp)); err == nil {
		t.Fatalf("the restarted daemon left the orphan channel directory")
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("half-created container listed: %q", out)
	}
}

func TestHostChannelMemoryLimit(t *testing.T) {
	d := StartDaemon(t)
	hp := filepath.Join(d.TempDir(), "mem")
	r := d.Isula("run", "--rm", "-m", "16m", "--memory-swap", "16m", "--host-channel", hp+":/c:rw:64M", "--external-rootfs", busyboxRoot, "none",
		"sh", "-c", "dd if=/dev/zero of=/c/fill bs=1M count=60 2>&1; echo dd-done")
	if !strings.Contains(r.Stderr, "WARNING") {
		t.Errorf("no warning for a 64M channel with -m 16m: %q", r.Stderr)
	}
	if r.Code == 0 && strings.Contains(r.Stdout, "60+0 records out") {
		t.Fatalf("a container limited to 16m filled 60M of its channel: %s", r)
	}
}

func TestHostChannelStartFailureUnmounts(t *testing.T) {
	d := StartDaemon(t)
	hp := filepath.Join(d.TempDir(), "failing")
	r := d.Isula("run", "--name", "nostart", "--host-channel", hp+":/c", "--external-rootfs", busyboxRoot, "none", "/no/such/binary")
	if r.Code != 127 {
		t.Fatalf("want 127: %s", r)
	}
	if m := mountOf(hp); m != "" {
		t.Fatalf("a failed start left its channel mounted: %s", m)
	}
	if _, err := os.Lstat(hp); err != nil {
		t.Fatalf("the channel directory of an existing container went away: %v", err)
	}
	d.Must("rm", "nostart")
	if _, err := os.Lstat(hp); err == nil {
		t.Fatalf("rm left the channel directory")
	}
}

func TestShmringAcrossContainer(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	ring := filepath.Join(binDir, "isula-ring")
	if _, err := os.Stat(ring); err != nil {
		t.Fatalf("isula-ring not built by TestMain: %v", err)
	}
	if out, err := exec.Command("cp", ring, filepath.Join(rf, "bin", "isula-ring")).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	hp := filepath.Join(d.TempDir(), "ringch")
	d.Must("run", "-d", "--name", "ring", "--host-channel", hp+":/ch:rw:16M", "--external-rootfs", rf, "none", "sleep", "600")
	host := filepath.Join(hp, "events.ring")
	if out, err := exec.Command(ring, "create", "--size", "1M", host).CombinedOutput(); err != nil {
		t.Fatalf("create ring: %v %s", err, out)
	}
	recv := make(chan Result, 1)
	go func() { recv <- d.Isula("exec", "ring", "isula-ring", "recv", "--count", "3", "/ch/events.ring") }()
	send := exec.Command(ring, "send", host)
	send.Stdin = strings.NewReader("one\ntwo\nthree\n")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("send: %v %s", err, out)
	}
	select {
	case r := <-recv:
		if r.Code != 0 || r.Stdout != "one\ntwo\nthree\n" {
			t.Fatalf("recv inside: %s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("recv inside did not finish")
	}
}
