package integration

// Files the engine reads or writes inside an external rootfs are hostile input: a FIFO there
// (which root inside a system container can plant before a reboot) must make the operation
// fail at once with one line, never hang the daemon or the container's lock.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// isulaWithin runs the client with a deadline; past it the test fails and unblock is called,
// so that a daemon stuck on a FIFO (the bug) can finish and the cleanup can run.
func isulaWithin(t *testing.T, d *Daemon, timeout time.Duration, unblock func(), args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "isula"), append([]string{"-H", "unix://" + d.Sock}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		unblock()
		t.Fatalf("isula %s: no answer within %s (the daemon blocks on a file of the rootfs)", strings.Join(args, " "), timeout)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("isula %s: %v", strings.Join(args, " "), err)
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// plantFIFO replaces name in the rootfs rf by a FIFO and returns what releases a process
// blocked opening it: a reader and a writer opening the other end.
func plantFIFO(t *testing.T, rf, name string) func() {
	t.Helper()
	p := filepath.Join(rf, name)
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer f.Close()
		}
		if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}
}

// wantOneLine checks a refusal: a non-zero exit and one line on stderr holding each of want.
func wantOneLine(t *testing.T, r Result, want ...string) {
	t.Helper()
	msg := strings.TrimSpace(r.Stderr)
	if r.Code == 0 || msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("want a failure with one line on stderr, got %s", r)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("error %q does not name %q", msg, w)
		}
	}
}

// wantGone checks that the daemon keeps nothing of the container name.
func wantGone(t *testing.T, d *Daemon, name string) {
	t.Helper()
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("containers left after rm -f %s: %s", name, out)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "containers")); len(ents) != 0 {
		t.Fatalf("container directories left: %d", len(ents))
	}
}

func wantFIFO(t *testing.T, p string) {
	t.Helper()
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("%s is no longer the FIFO planted there: %v %v", p, fi, err)
	}
}

const fastEnough = 20 * time.Second

// A FIFO at /etc/hostname, /etc/hosts or behind /etc/resolv.conf: the engine never opens it.
// Those three files are generated in the container's own directory and bind-mounted over the
// rootfs's (docs/network.md), so the run succeeds at once, the container reads the generated
// file, and the FIFO is left as it was. A FIFO at --env-target-file, which the engine writes
// into the rootfs, fails the start with one line naming it; rm -f works and nothing is left.
func TestRootfsFilesHostnameFIFO(t *testing.T) {
	d := StartDaemon(t)
	for _, tc := range []struct {
		fifo, inside string
		symlink      string // /etc/resolv.conf -> this, when set
	}{
		{"etc/hostname", "/etc/hostname", ""},
		{"etc/hosts", "/etc/hosts", ""},
		{"etc/resolv.target", "/etc/resolv.conf", "resolv.target"},
	} {
		rf := Rootfs(t)
		unblock := plantFIFO(t, rf, tc.fifo)
		if tc.symlink != "" {
			os.Remove(filepath.Join(rf, "etc/resolv.conf"))
			os.Symlink(tc.symlink, filepath.Join(rf, "etc/resolv.conf"))
		}
		start := time.Now()
		r := isulaWithin(t, d, fastEnough, unblock, "run", "--rm", "--name", "fifo", "-h", "fifohost", "--system-container",
			"--external-rootfs", rf, "none", "sh", "-c", "test -f "+tc.inside+" && cat /etc/hostname")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "fifohost" {
			t.Fatalf("FIFO at %s: run: %s", tc.fifo, r)
		}
		t.Logf("FIFO at %s: run done in %s", tc.fifo, time.Since(start).Round(time.Millisecond))
		wantGone(t, d, "fifo")
		wantFIFO(t, filepath.Join(rf, tc.fifo))
	}
	rf := Rootfs(t)
	unblock := plantFIFO(t, rf, "etc/env")
	r := isulaWithin(t, d, fastEnough, unblock, "run", "-d", "--name", "fifo2", "--system-container",
		"--env-target-file", "/etc/env", "--external-rootfs", rf, "none", "init")
	wantOneLine(t, r, "--env-target-file /etc/env", "FIFO")
	if r := isulaWithin(t, d, fastEnough, unblock, "rm", "-f", "fifo2"); r.Code != 0 {
		t.Fatalf("rm -f: %s", r)
	}
	wantGone(t, d, "fifo2")
	wantFIFO(t, filepath.Join(rf, "etc/env"))
}

// A FIFO at /etc/passwd: run -u someuser is refused at create (nothing is made); exec -u into
// a running container whose /etc/passwd became a FIFO is refused, and rm -f works.
func TestRootfsFilesPasswdFIFO(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	unblock := plantFIFO(t, rf, "etc/passwd")
	r := isulaWithin(t, d, fastEnough, unblock, "run", "-d", "--name", "pw", "-u", "someuser", "--external-rootfs", rf, "none", "sleep", "100")
	wantOneLine(t, r, "--user", "/etc/passwd", "FIFO", "want a regular file")
	if r.Code != 125 {
		t.Errorf("create refused with exit %d, want 125", r.Code)
	}
	wantGone(t, d, "pw")
	wantFIFO(t, filepath.Join(rf, "etc/passwd"))

	// exec -u: the container runs; then its /etc/passwd is replaced by a FIFO.
	rf = Rootfs(t)
	d.Must("run", "-d", "--name", "pw2", "--external-rootfs", rf, "none", "sleep", "100")
	unblock = plantFIFO(t, rf, "etc/passwd")
	r = isulaWithin(t, d, fastEnough, unblock, "exec", "-u", "someuser", "pw2", "id")
	wantOneLine(t, r, "--user", "/etc/passwd", "FIFO")
	if r := isulaWithin(t, d, fastEnough, unblock, "rm", "-f", "pw2"); r.Code != 0 {
		t.Fatalf("rm -f: %s", r)
	}
	wantGone(t, d, "pw2")
}
