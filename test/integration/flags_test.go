package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// run runs a throw-away container and returns its stdout; it fails the test unless the
// container exits 0.
func (d *Daemon) run(args ...string) string {
	d.t.Helper()
	r := d.Isula(append([]string{"run", "--rm"}, args...)...)
	if r.Code != 0 {
		d.t.Fatalf("run %v: %s", args, r)
	}
	return strings.TrimSpace(r.Stdout)
}

func TestProcessFlags(t *testing.T) {
	d := StartDaemon(t)
	rf := busyboxRoot
	envFile := filepath.Join(d.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\nFROM_FILE=yes\n\nOTHER=2\n"), 0o644)
	out := d.run("-e", "A=1", "--env-file", envFile, "-h", "myhost", "-w", "/tmp", "-u", "1000:1000", "--external-rootfs", rf, "none",
		"sh", "-c", `echo "$A $FROM_FILE $OTHER $(hostname) $(pwd) $(id -u):$(id -g)"`)
	if out != "1 yes 2 myhost /tmp 1000:1000" {
		t.Fatalf("env/hostname/workdir/user: %q", out)
	}
	if out := d.run("-u", "nobody", "--external-rootfs", rf, "none", "id", "-u"); out != "65534" {
		t.Fatalf("-u nobody: %q", out)
	}
	if out := d.run("--external-rootfs", rf, "none", "sh", "-c", "echo $PATH; echo $HOSTNAME"); !strings.HasPrefix(out, "/usr/local/sbin:") {
		t.Fatalf("default PATH: %q", out)
	}
}

func TestMountFlags(t *testing.T) {
	d := StartDaemon(t)
	rf := busyboxRoot
	src := d.TempDir()
	os.WriteFile(filepath.Join(src, "in"), []byte("from-host"), 0o644)
	out := d.run("-v", src+":/mnt/rw", "-v", src+":/mnt/ro:ro", "--external-rootfs", rf, "none",
		"sh", "-c", "cat /mnt/rw/in; echo x > /mnt/rw/out && echo rw-ok; echo y > /mnt/ro/out2 2>/dev/null || echo ro-refused")
	if out != "from-hostrw-ok\nro-refused" {
		t.Fatalf("-v: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "out")); string(b) != "x\n" {
		t.Fatalf("write through -v not seen on the host: %q", b)
	}
	out = d.run("--mount", "type=bind,source="+src+",target=/m,readonly", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m",
		"--tmpfs", "/t:size=2m", "--external-rootfs", rf, "none", "sh", "-c",
		"cat /m/in; touch /m/z 2>/dev/null || echo m-ro; grep -E ' /(scratch|t) ' /proc/mounts | awk '{print $2, $4}'")
	if !strings.Contains(out, "from-host") || !strings.Contains(out, "m-ro") || !strings.Contains(out, "/scratch rw") || !strings.Contains(out, "size=1024k") || !strings.Contains(out, "size=2048k") {
		t.Fatalf("--mount/--tmpfs: %q", out)
	}
	if out := d.run("--read-only", "--external-rootfs", rf, "none", "sh", "-c", "touch /newfile 2>/dev/null || echo rootfs-ro"); out != "rootfs-ro" {
		t.Fatalf("--read-only: %q", out)
	}
	if _, err := os.Stat(filepath.Join(rf, "newfile")); err == nil {
		t.Fatalf("--read-only container wrote into the rootfs")
	}
}

// capEff returns the container's effective capability mask and seccomp mode.
func capsAndSeccomp(d *Daemon, args ...string) (string, string) {
	d.t.Helper()
	out := d.run(append(args, "--external-rootfs", busyboxRoot, "none", "sh", "-c", "grep -E '^(CapEff|Seccomp):' /proc/self/status | awk '{print $2}'")...)
	f := strings.Fields(out)
	if len(f) != 2 {
		d.t.Fatalf("status: %q", out)
	}
	return f[0], f[1]
}

func TestSecurityFlags(t *testing.T) {
	d := StartDaemon(t)
	capDefault, sec := capsAndSeccomp(d)
	if capDefault != "00000000a80425fb" {
		t.Errorf("default capabilities %s, want docker's 00000000a80425fb", capDefault)
	}
	if sec != "2" {
		t.Errorf("seccomp mode %s by default, want 2 (filter)", sec)
	}
	if _, sec := capsAndSeccomp(d, "--security-opt", "seccomp=unconfined"); sec != "0" {
		t.Errorf("seccomp=unconfined: mode %s", sec)
	}
	if c, _ := capsAndSeccomp(d, "--cap-drop", "ALL", "--cap-add", "NET_ADMIN"); c != "0000000000001000" {
		t.Errorf("--cap-drop ALL --cap-add NET_ADMIN: %s", c)
	}
	if c, _ := capsAndSeccomp(d, "--cap-drop", "chown"); c != "00000000a80425fa" {
		t.Errorf("--cap-drop chown: %s", c)
	}
	priv, sec := capsAndSeccomp(d, "--privileged")
	if priv == capDefault || sec != "0" {
		t.Errorf("--privileged: caps %s seccomp %s", priv, sec)
	}
	if out := d.run("--privileged", "--external-rootfs", busyboxRoot, "none", "sh", "-c", "ls /dev | wc -l"); out == "" {
		t.Errorf("--privileged /dev listing empty")
	}
	// Masked paths are masked unless privileged.
	for _, p := range []string{"/proc/keys", "/proc/timer_list"} {
		if _, err := os.Stat(p); err != nil {
			continue // not on this kernel
		}
		if out := d.run("--external-rootfs", busyboxRoot, "none", "sh", "-c", "cat "+p+" | wc -c"); out != "0" {
			t.Errorf("masked %s shows %s bytes", p, out)
		}
		if out := d.run("--privileged", "--external-rootfs", busyboxRoot, "none", "sh", "-c", "cat "+p+" | wc -c"); out == "0" {
			t.Errorf("--privileged: %s is still masked", p)
		}
	}
}

func TestNetworkFlags(t *testing.T) {
	d := StartDaemon(t)
	out := d.run("--external-rootfs", busyboxRoot, "none", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '")
	if strings.TrimSpace(out) != "lo" {
		t.Fatalf("default network: interfaces %q, want lo only", out)
	}
	host, _ := os.ReadDir("/sys/class/net")
	out = d.run("--net", "host", "--external-rootfs", busyboxRoot, "none", "sh", "-c", "ls /sys/class/net | wc -l")
	if out != strconv.Itoa(len(host)) {
		t.Fatalf("--net host: %s interfaces, host has %d", out, len(host))
	}
}

func TestExecFlags(t *testing.T) {
	d := StartDaemon(t)
	d.Must("run", "-d", "--name", "ex", "-e", "FROM_RUN=1", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	out := d.Must("exec", "-e", "X=y", "-u", "nobody", "-w", "/tmp", "ex", "sh", "-c", `echo "$X $FROM_RUN $(id -u) $(pwd)"`)
	if out != "y 1 65534 /tmp" {
		t.Fatalf("exec -e -u -w: %q", out)
	}
	if r := d.Isula("exec", "-d", "ex", "sh", "-c", "sleep 0.5; touch /tmp/detached"); r.Code != 0 {
		t.Fatalf("exec -d: %s", r)
	}
	WaitFor(t, "the detached exec to run", 10*time.Second, func() bool {
		return d.Isula("exec", "ex", "test", "-f", "/tmp/detached").Code == 0
	})
	if r := d.Isula("exec", "-u", "nosuchuser", "ex", "true"); r.Code == 0 {
		t.Fatalf("exec as a missing user succeeded")
	}
}
