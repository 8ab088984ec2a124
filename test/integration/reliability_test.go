package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var tickRe = regexp.MustCompile(`tick (\d+)`)

// ticksContiguous checks that the ticks in a log are 0, 1, 2, ... without a gap and returns
// how many there are.
func ticksContiguous(log string) (int, error) {
	m := tickRe.FindAllStringSubmatch(log, -1)
	for i, s := range m {
		if n, _ := strconv.Atoi(s[1]); n != i {
			return i, fmt.Errorf("tick %d where %d was expected", n, i)
		}
	}
	return len(m), nil
}

// parallel runs f(i) for i in [0, n) with at most width at a time.
func parallel(n, width int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}(i)
	}
	wg.Wait()
}

const tickLoop = `i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done`

// TestDaemonKillWith20Containers: SIGKILL of the daemon with 20 running containers (plain,
// with host channels, with a terminal); after the restart every one is listed running with
// its pid, exec, attach, stop and rm work, and no output was lost meanwhile.
func TestDaemonKillWith20Containers(t *testing.T) {
	d := StartDaemon(t)
	base := d.TempDir()
	type ctr struct {
		name, kind, ch string
		pid            string
	}
	var cs []*ctr
	for i := 0; i < 20; i++ {
		c := &ctr{name: fmt.Sprintf("k%02d", i)}
		switch {
		case i < 7:
			c.kind = "plain"
		case i < 14:
			c.kind = "channel"
			c.ch = filepath.Join(base, c.name)
		default:
			c.kind = "tty"
		}
		cs = append(cs, c)
	}
	parallel(len(cs), 4, func(i int) {
		c := cs[i]
		args := []string{"run", "-d", "--name", c.name}
		cmd := []string{"sh", "-c", tickLoop}
		switch c.kind {
		case "channel":
			args = append(args, "--host-channel", c.ch+":/c:rw:2M")
			cmd = []string{"sh", "-c", `i=0; while true; do echo tick $i; echo $i > /c/last; i=$((i+1)); sleep 0.1; done`}
		case "tty":
			args = append(args, "-it")
			cmd = []string{"sh", "-c", "(" + tickLoop + ") & exec sh"}
		}
		args = append(args, "--external-rootfs", busyboxRoot, "none")
		if r := d.Isula(append(args, cmd...)...); r.Code != 0 {
			t.Errorf("run %s: %s", c.name, r)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for _, c := range cs {
		c.pid = d.Inspect(c.name, "{{.State.Pid}}")
	}
	time.Sleep(500 * time.Millisecond)
	d.Kill()
	time.Sleep(1500 * time.Millisecond) // the containers keep writing while the daemon is down
	d.Start()
	ps := d.Must("ps", "--format", "{{.Names}} {{.Status}}")
	for _, c := range cs {
		if st := d.Inspect(c.name, "{{.State.Status}} {{.State.Pid}}"); st != "running "+c.pid {
			t.Errorf("%s after the daemon kill: %q, want running %s", c.name, st, c.pid)
		}
		if !strings.Contains(ps, c.name+" Up") {
			t.Errorf("ps does not list %s as up:\n%s", c.name, ps)
		}
	}
	parallel(len(cs), 4, func(i int) {
		c := cs[i]
		if out := d.Isula("exec", c.name, "echo", "exec-"+c.name); out.Code != 0 || strings.TrimSpace(out.Stdout) != "exec-"+c.name {
			t.Errorf("exec in %s after recovery: %s", c.name, out)
		}
		if c.kind == "channel" {
			if b, err := os.ReadFile(filepath.Join(c.ch, "last")); err != nil || strings.TrimSpace(string(b)) == "" {
				t.Errorf("channel of %s on the host: %q %v", c.name, b, err)
			}
		}
	})
	// Attach to a terminal container and to a plain one.
	con := d.StartConsole(24, 80, "attach", "k19")
	time.Sleep(300 * time.Millisecond)
	con.Send("echo attached$((2*3))\n")
	con.Expect("attached6", 10*time.Second)
	con.Send("exit 3\n")
	if code := con.Wait(15 * time.Second); code != 3 {
		t.Errorf("attach k19: exit %d; output:\n%s", code, con.Output())
	}
	r := make(chan Result, 1)
	go func() { r <- d.Isula("attach", "k00") }()
	time.Sleep(500 * time.Millisecond)
	// Logs: every tick there, none lost while the daemon was down.
	time.Sleep(300 * time.Millisecond)
	parallel(len(cs), 4, func(i int) {
		c := cs[i]
		if c.kind != "tty" {
			if r := d.Isula("stop", "-t", "1", c.name); r.Code != 0 {
				t.Errorf("stop %s: %s", c.name, r)
			}
		}
		logs := d.Isula("logs", c.name)
		n, err := ticksContiguous(logs.Stdout)
		if err != nil || n < 20 {
			t.Errorf("logs of %s: %d contiguous ticks, %v", c.name, n, err)
		}
	})
	if res := <-r; !strings.Contains(res.Stdout, "tick ") {
		t.Errorf("attach k00 saw no output before the stop: %s", res)
	}
	for _, c := range cs {
		want := "exited"
		if c.kind == "tty" && c.name != "k19" {
			want = "running"
		}
		if st := d.Inspect(c.name, "{{.State.Status}}"); st != want {
			t.Errorf("%s: %s, want %s", c.name, st, want)
		}
	}
	names := []string{"rm", "-f"}
	for _, c := range cs {
		names = append(names, c.name)
	}
	d.Must(names...)
	for _, c := range cs {
		if left := channelTraces(c.ch, ""); c.ch != "" && left != nil {
			t.Errorf("%s: %s", c.name, strings.Join(left, "; "))
		}
	}
	if left := engineClean(d); left != nil {
		t.Errorf("left after rm -f of all: %s", strings.Join(left, "\n"))
	}
}

// TestShimKilledCleanup: a SIGKILLed shim makes its container exit (137, its processes
// killed, not left running unsupervised), and rm -f leaves nothing.
func TestShimKilledCleanup(t *testing.T) {
	d := StartDaemon(t)
	hp := filepath.Join(d.TempDir(), "made", "ch")
	for _, tty := range []bool{false, true} {
		args := []string{"run", "-d", "--host-channel", hp + ":/c:rw:2M"}
		if tty {
			args = append(args, "-it")
		}
		id := d.Must(append(args, "--external-rootfs", busyboxRoot, "none", "sh", "-c", "sleep 600 & wait")...)
		pid, _ := strconv.Atoi(d.Inspect(id, "{{.State.Pid}}"))
		data, err := os.ReadFile(filepath.Join(d.State, "containers", id, "shim.pid"))
		if err != nil {
			t.Fatalf("shim.pid: %v", err)
		}
		spid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if spid <= 0 || pid <= 0 {
			t.Fatalf("bad pids: shim %q init %d", data, pid)
		}
		syscall.Kill(spid, syscall.SIGKILL)
		WaitFor(t, "the container to be reported exited", 15*time.Second, func() bool {
			return d.Inspect(id, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
		})
		WaitFor(t, "the container's init to be gone", 10*time.Second, func() bool {
			return syscall.Kill(pid, 0) != nil
		})
		if out := d.Must("ps", "-q"); out != "" {
			t.Errorf("ps lists a running container after its shim died: %s", out)
		}
		d.Must("rm", "-f", id)
		if left := traces(d, id); left != nil {
			t.Errorf("rm -f after the shim was killed left: %s", strings.Join(left, "; "))
		}
		if left := channelTraces(hp, filepath.Dir(hp)); left != nil {
			t.Errorf("channel: %s", strings.Join(left, "; "))
		}
	}
	if left := engineClean(d); left != nil {
		t.Errorf("left: %s", strings.Join(left, "\n"))
	}
}
