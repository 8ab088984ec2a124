package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// Console is an isula client running on a pseudo-terminal, as a user at a terminal would.
type Console struct {
	t    testing.TB
	cmd  *exec.Cmd
	f    *os.File
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	code int
}

// StartConsole runs isula args on a new pseudo-terminal of rows x cols.
func (d *Daemon) StartConsole(rows, cols uint16, args ...string) *Console {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "isula"), append([]string{"-H", "unix://" + d.Sock}, args...)...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		d.t.Fatal(err)
	}
	c := &Console{t: d.t, cmd: cmd, f: f, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				break
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			c.code = ee.ExitCode()
		} else if err != nil {
			c.code = -1
		}
		close(c.done)
	}()
	d.t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
		f.Close()
	})
	return c
}

// Output is everything printed so far.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// Expect waits until the output contains s.
func (c *Console) Expect(s string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(c.Output(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("console did not show %q within %s; output:\n%s", s, timeout, c.Output())
}

// Send types s.
func (c *Console) Send(s string) {
	if _, err := c.f.Write([]byte(s)); err != nil {
		c.t.Fatalf("console write: %v", err)
	}
}

// Resize changes the terminal's size (the client gets SIGWINCH).
func (c *Console) Resize(rows, cols uint16) {
	pty.Setsize(c.f, &pty.Winsize{Rows: rows, Cols: cols})
}

// Wait waits for the client to exit and returns its exit code.
func (c *Console) Wait(timeout time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(timeout):
		c.t.Fatalf("client did not exit within %s; output:\n%s", timeout, c.Output())
	}
	return -1
}

func TestRunInteractiveTTY(t *testing.T) {
	d := StartDaemon(t)
	c := d.StartConsole(24, 80, "run", "--rm", "-it", "--name", "tty", "--external-rootfs", busyboxRoot, "none", "sh")
	c.Expect("# ", 10*time.Second)
	c.Send("tty; stty size\n")
	c.Expect("/dev/pts/", 10*time.Second)
	c.Expect("24 80", 5*time.Second)
	c.Resize(40, 132)
	time.Sleep(300 * time.Millisecond)
	c.Send("stty size\n")
	c.Expect("40 132", 5*time.Second)
	c.Send("exit 7\n")
	if code := c.Wait(15 * time.Second); code != 7 {
		t.Fatalf("exit code %d, want 7; output:\n%s", code, c.Output())
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("--rm -it left %q", out)
	}
}

func TestExecInteractiveTTY(t *testing.T) {
	d := StartDaemon(t)
	d.Must("run", "-d", "--name", "host", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	c := d.StartConsole(30, 100, "exec", "-it", "host", "sh")
	c.Expect("# ", 10*time.Second)
	c.Send("stty size; echo marker$((1+1))\n")
	c.Expect("30 100", 10*time.Second)
	c.Expect("marker2", 5*time.Second)
	c.Send("exit 4\n")
	if code := c.Wait(10 * time.Second); code != 4 {
		t.Fatalf("exec -it exit %d; output:\n%s", code, c.Output())
	}
}

func TestAttach(t *testing.T) {
	d := StartDaemon(t)
	d.Must("run", "-d", "-it", "--name", "att", "--external-rootfs", busyboxRoot, "none", "sh")
	c := d.StartConsole(24, 80, "attach", "att")
	time.Sleep(300 * time.Millisecond)
	c.Send("echo attached$((2*3))\n")
	c.Expect("attached6", 10*time.Second)
	c.Send("exit 3\n")
	if code := c.Wait(10 * time.Second); code != 3 {
		t.Fatalf("attach exit %d; output:\n%s", code, c.Output())
	}
	if st := d.Inspect("att", "{{.State.Status}} {{.State.ExitCode}}"); st != "exited 3" {
		t.Fatalf("after exit: %s", st)
	}
}

func TestTTYInitialSize(t *testing.T) {
	d := StartDaemon(t)
	c := d.StartConsole(33, 111, "run", "--rm", "-it", "--external-rootfs", busyboxRoot, "none", "stty", "size")
	c.Expect("33 111", 10*time.Second)
	if code := c.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	d.Must("run", "-d", "--name", "sz", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	e := d.StartConsole(44, 122, "exec", "-it", "sz", "stty", "size")
	e.Expect("44 122", 10*time.Second)
	if code := e.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exec exit %d", code)
	}
}
