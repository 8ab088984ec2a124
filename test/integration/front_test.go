package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The isula front (cmd/isula) serves an attached run over the light protocol and execs
// isula-full for the rest. frontOnly is a directory with the front and no isula-full: what
// it serves works there, what it hands over fails with the exec's error.
func frontOnly(t *testing.T, d *Daemon) string {
	t.Helper()
	dir := d.TempDir()
	data, err := os.ReadFile(filepath.Join(binDir, "isula"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "isula"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "isula")
}

// The front prints and exits exactly as the full client for what it serves.
func TestFrontRunSameAsFull(t *testing.T) {
	d := StartDaemon(t)
	front, full := frontOnly(t, d), filepath.Join(binDir, "isula-full")
	r := []string{"--external-rootfs", busyboxRoot, "none"}
	chdir := d.TempDir()
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"true", append([]string{"run", "--rm"}, append(r, "true")...), 0},
		{"output and exit", append([]string{"run", "--rm"}, append(r, "sh", "-c", "echo out; echo err >&2; exit 3")...), 3},
		{"env and flags", append([]string{"run", "--rm", "-e", "A=1", "-w", "/tmp", "-h", "box", "--read-only"}, append(r, "sh", "-c", "echo $A $(pwd) $(hostname)")...), 0},
		{"not found", append([]string{"run", "--rm"}, append(r, "/nonexistent")...), 127},
		{"cannot execute", append([]string{"run", "--rm"}, append(r, "/etc/passwd")...), 126},
		{"no such image, never", []string{"run", "--rm", "--pull=never", "nosuch-light:1", "true"}, 125},
		{"warning", append([]string{"run", "--rm", "-m", "16m", "--host-channel", chdir + "/w:/w:rw:64M"}, append(r, "true")...), 0},
		{"name in use", append([]string{"run", "--name", "taken"}, append(r, "true")...), 125},
	}
	d.Must(append([]string{"create", "--name", "taken"}, append(r, "true")...)...)
	for _, tc := range cases {
		a := d.RunClient(front, "", tc.args...)
		b := d.RunClient(full, "", tc.args...)
		if a.Code != tc.code || a != b {
			t.Errorf("%s: front and full differ (want exit %d)\nfront: %s\nfull:  %s", tc.name, tc.code, a, b)
		}
		if tc.code != 0 && tc.code != 3 && a.Stderr == "" {
			t.Errorf("%s: no error line: %s", tc.name, a)
		}
		if tc.name == "warning" && !strings.HasPrefix(a.Stderr, "WARNING: host channels total") {
			t.Errorf("%s: no warning: %s", tc.name, a)
		}
	}
	// --rm is done when the front returns: nothing of the runs above is left.
	if ps := d.Must("ps", "-a", "--format", "{{.Names}}"); ps != "taken" {
		t.Errorf("containers left after run --rm: %q", ps)
	}

	// run -d: the id on stdout (only the name differs between the two runs), the same
	// warnings and errors, a running container.
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"detached", append([]string{"run", "-d", "-it"}, append(r, "sleep", "60")...), 0},
		{"detached warning", append([]string{"run", "-d", "-m", "16m", "--host-channel", chdir + "/d%d:/d:rw:64M"}, append(r, "sleep", "60")...), 0},
		{"detached name in use", append([]string{"run", "-d", "--name", "taken"}, append(r, "true")...), 125},
		{"detached not found", append([]string{"run", "-d"}, append(r, "/nonexistent")...), 125},
		{"detached no image", []string{"run", "-d", "--pull=never", "nosuch-light:1", "true"}, 125},
	} {
		// A host channel's path cannot be shared by the two runs: each its own.
		argsOf := func(n int) []string {
			out := make([]string, len(tc.args))
			for i, a := range tc.args {
				out[i] = strings.ReplaceAll(a, "%d", strconv.Itoa(n))
			}
			return out
		}
		a := d.RunClient(front, "", argsOf(1)...)
		b := d.RunClient(full, "", argsOf(2)...)
		if a.Code != tc.code || b.Code != tc.code || a.Stderr != b.Stderr {
			t.Errorf("%s: front and full differ (want exit %d)\nfront: %s\nfull:  %s", tc.name, tc.code, a, b)
			continue
		}
		if tc.code != 0 {
			if a.Stdout != b.Stdout || a.Stderr == "" {
				t.Errorf("%s: front %s, full %s", tc.name, a, b)
			}
			continue
		}
		id := strings.TrimSpace(a.Stdout)
		if !hexID.MatchString(id) || len(id) != 64 || a.Stdout != id+"\n" {
			t.Errorf("%s: stdout %q is not an id line", tc.name, a.Stdout)
			continue
		}
		if st := d.Must("inspect", "--format", "{{.State.Status}}", id); st != "running" {
			t.Errorf("%s: %s is %s", tc.name, id, st)
		}
		d.Must("rm", "-f", id, strings.TrimSpace(b.Stdout))
	}
}

// A command line the front does not serve goes to isula-full with the same argv and
// environment; a bad one too, so its error is the full client's.
func TestFrontHandsOver(t *testing.T) {
	d := StartDaemon(t)
	front, full := filepath.Join(binDir, "isula"), filepath.Join(binDir, "isula-full")
	alone := frontOnly(t, d)
	r := []string{"--external-rootfs", busyboxRoot, "none"}
	for _, args := range [][]string{
		{"version"},
		{"ps", "-a"},
		{"run", "--rm", "--memory", "bogus", busyboxRoot, "true"},
		{"run", "--bogus-flag", "x"},
		{"run"},
		{"run", "--help"},
		{"--help"},
		append([]string{"run", "--rm", "-i"}, append(r, "cat")...),
	} {
		a := d.RunClient(front, "in\n", args...)
		b := d.RunClient(full, "in\n", args...)
		if args[0] == "version" {
			// The daemon's part is the same; the client's own lines too (one client).
			a.Stdout, b.Stdout = firstLines(a.Stdout, 3), firstLines(b.Stdout, 3)
		}
		if a != b {
			t.Errorf("%q: front and full differ\nfront: %s\nfull:  %s", args, a, b)
		}
		if strings.Contains(strings.Join(args, " "), "bogus") && (a.Code != 125 || strings.Count(a.Stderr, "\n") != 1) {
			t.Errorf("%q: want one error line and exit 125: %s", args, a)
		}
		c := d.RunClient(alone, "", args...)
		want := "Error: cannot run the full client " + filepath.Join(filepath.Dir(alone), "isula-full") + ": no such file or directory\n"
		if c.Code != 125 || c.Stderr != want || c.Stdout != "" {
			t.Errorf("%q without isula-full: %s\nwant stderr %q", args, c, want)
		}
	}
	// The host from the environment, as the full client's.
	cmd := exec.Command(front, append([]string{"run", "--rm"}, append(r, "echo", "env")...)...)
	cmd.Env = append(os.Environ(), "ISULAD_HOST=unix://"+d.Sock)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "env\n" {
		t.Errorf("ISULAD_HOST: %v %q", err, out)
	}
}

func firstLines(s string, n int) string {
	l := strings.SplitN(s, "\n", n+1)
	if len(l) > n {
		l = l[:n]
	}
	return strings.Join(l, "\n")
}

// An image that is not here: the daemon creates nothing, and the front hands the command
// line to the full client, which pulls (--pull=missing) and runs: the same output. The
// registry is a closed local port, so no network is needed.
func TestFrontMissingImageFallsBack(t *testing.T) {
	d := StartDaemon(t)
	front, full, alone := filepath.Join(binDir, "isula"), filepath.Join(binDir, "isula-full"), frontOnly(t, d)
	args := []string{"run", "--rm", "127.0.0.1:1/nosuch/light:1", "true"}
	a := d.RunClient(front, "", args...)
	b := d.RunClient(full, "", args...)
	if a != b || a.Code != 125 || !strings.Contains(a.Stderr, "127.0.0.1:1") {
		t.Errorf("front and full differ\nfront: %s\nfull:  %s", a, b)
	}
	// It is the full client that answered: without it, the front says it cannot run it.
	if c := d.RunClient(alone, "", args...); c.Code != 125 || !strings.Contains(c.Stderr, "cannot run the full client") {
		t.Errorf("without isula-full: %s", c)
	}
	if ps := d.Must("ps", "-aq"); ps != "" {
		t.Errorf("a container was left: %s", ps)
	}
}

// SIGTERM to the client reaches the container (sig-proxy), through the front and through
// the full client alike; with --sig-proxy=false it does not.
func TestFrontSigProxy(t *testing.T) {
	d := StartDaemon(t)
	for _, bin := range []string{frontOnly(t, d), filepath.Join(binDir, "isula-full")} {
		name := "sig-" + filepath.Base(filepath.Dir(bin))
		cmd := exec.Command(bin, "-H", "unix://"+d.Sock, "run", "--rm", "--name", name, "--external-rootfs", busyboxRoot, "none",
			"sh", "-c", `trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done`)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: %q %v %s", bin, line, err, errb.String())
		}
		// The trap is set (it printed after it); the client has had the ready (the daemon
		// marks the container running before it sends it).
		WaitFor(t, "running", 10*time.Second, func() bool { return d.Inspect(name, "{{.State.Running}}") == "true" })
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s: no exit 20 s after SIGTERM", bin)
		}
		if code := cmd.ProcessState.ExitCode(); code != 7 {
			t.Errorf("%s: exit %d (%v), want 7 (the container's trap): %s", bin, code, err, errb.String())
		}
	}
}

// gRPC clients and light ones share the socket: many of each at once.
func TestFrontAndGRPCTogether(t *testing.T) {
	d := StartDaemon(t)
	r := []string{"--external-rootfs", busyboxRoot, "none"}
	errs := make(chan string, 16)
	for i := 0; i < 8; i++ {
		go func(i int) {
			var res Result
			if i%2 == 0 {
				res = d.Isula(append([]string{"run", "--rm"}, append(r, "echo", "light")...)...)
				if res.Code != 0 || res.Stdout != "light\n" {
					errs <- "run: " + res.String()
					return
				}
			} else {
				res = d.Isula("ps", "-a")
				if res.Code != 0 {
					errs <- "ps: " + res.String()
					return
				}
			}
			errs <- ""
		}(i)
	}
	for i := 0; i < 8; i++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// The light protocol is root only too (the socket's SO_PEERCRED check comes first): with the
// socket opened to everyone, nobody's front gets no answer, creates nothing, and hands over.
func TestFrontRootOnly(t *testing.T) {
	d := StartDaemon(t)
	alone := frontOnly(t, d)
	if err := os.Chmod(d.Sock, 0o666); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(d.Sock, 0o600)
	os.Chmod(d.Dir, 0o755)
	cmd := exec.Command(alone, "-H", "unix://"+d.Sock, "run", "--rm", "--external-rootfs", busyboxRoot, "none", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 || !strings.Contains(string(out), "cannot run the full client") {
		t.Fatalf("nobody's light run: %v %s", err, out)
	}
	if ps := d.Must("ps", "-aq"); ps != "" {
		t.Fatalf("nobody's light run made a container: %s", ps)
	}
	// Root's, on the same socket, works.
	if r := d.RunClient(alone, "", "run", "--rm", "--external-rootfs", busyboxRoot, "none", "echo", "root"); r.Code != 0 || r.Stdout != "root\n" {
		t.Fatalf("root's light run: %s", r)
	}
}
