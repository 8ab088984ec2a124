package front

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/lightproto"
)

func noEnv(string) string { return "" }

func TestDecide(t *testing.T) {
	rootfs := t.TempDir()
	r := []string{"--external-rootfs", rootfs, "none", "true"}
	cat := func(a ...[]string) []string {
		var out []string
		for _, x := range a {
			out = append(out, x...)
		}
		return out
	}
	served := []struct {
		args     []string
		path     string
		fallback bool
	}{
		{cat([]string{"run", "--rm"}, r), "/var/run/isulad.sock", false},
		{cat([]string{"-H", "unix:///a.sock", "run"}, r), "/a.sock", false},
		{cat([]string{"-H=unix:/b.sock", "run"}, r), "/b.sock", false},
		{cat([]string{"--host", "/c.sock", "run"}, r), "/c.sock", false},
		{cat([]string{"--host=/d.sock", "-H", "/e.sock", "run"}, r), "/e.sock", false},
		{cat([]string{"-H", "/f.sock", "run", "-H", "/g.sock"}, r), "/g.sock", false},
		{[]string{"-H", "run", "run", "busybox"}, "", false}, // -H's value is "run": not a path
		{[]string{"run", "busybox", "sh", "-d", "-it"}, "/var/run/isulad.sock", true},
		{[]string{"run", "--pull=never", "busybox"}, "/var/run/isulad.sock", false},
		{[]string{"run", "--sig-proxy=false", "-e", "X", "busybox"}, "/var/run/isulad.sock", true},
		{[]string{"run", "-d", "busybox"}, "/var/run/isulad.sock", true},
		{[]string{"run", "--detach=true", "-it", "--pull=never", "busybox"}, "/var/run/isulad.sock", false},
	}
	for _, tc := range served {
		p := Decide(tc.args, noEnv, nil)
		if tc.path == "" {
			if p.Serve {
				t.Errorf("%q: served", tc.args)
			}
			continue
		}
		if !p.Serve || p.Path != tc.path || p.Fallback != tc.fallback {
			t.Errorf("%q: %+v, want served on %s, fallback %v", tc.args, p, tc.path, tc.fallback)
		}
	}
	for _, args := range [][]string{
		{}, {"run"}, {"version"}, {"ps", "run"}, {"--help", "run", "busybox"}, {"-D", "run", "busybox"},
		{"-H"}, {"-H", "/a.sock"}, {"--", "run", "busybox"}, {"-H/a.sock", "run", "busybox"},
		{"run", "-i", "busybox"}, {"run", "-t", "busybox"}, {"run", "-it", "busybox"},
		{"run", "--help", "busybox"}, {"run", "-d", "--help", "busybox"}, {"run", "--pull", "always", "busybox"},
		{"run", "--pull=sometimes", "busybox"}, {"run", "--bogus", "busybox"}, {"run", "--memory", "lots", "busybox"},
		{"run", "-H", "tcp://1.2.3.4:5", "busybox"}, {"-H", "relative.sock", "run", "busybox"},
		{"run", "-H", "/" + strings.Repeat("x", 120), "busybox"}, {"run", "--name"}, {"create", "busybox"},
	} {
		if p := Decide(args, noEnv, nil); p.Serve {
			t.Errorf("%q: served", args)
		}
	}
	// The host's env var, and -H over it.
	env := func(k string) string {
		if k == "ISULAD_HOST" {
			return "unix:///env.sock"
		}
		return ""
	}
	if p := Decide(cat([]string{"run"}, r), env, nil); p.Path != "/env.sock" {
		t.Errorf("ISULAD_HOST: %+v", p)
	}
	if p := Decide(cat([]string{"-H", "/flag.sock", "run"}, r), env, nil); p.Path != "/flag.sock" {
		t.Errorf("-H over ISULAD_HOST: %+v", p)
	}
	// The request: the command after the image, flags stop there, sig-proxy passed on.
	p := Decide([]string{"run", "--rm", "--sig-proxy=false", "busybox", "sh", "-c", "x", "--rm"}, noEnv, nil)
	var req types.CreateRequest
	if err := json.Unmarshal(p.Hello.Create, &req); err != nil || p.Hello.SigProxy ||
		req.Config.Image != "busybox" || strings.Join(req.Config.Cmd, " ") != "sh -c x --rm" ||
		!req.HostConfig.AutoRemove || !req.Config.AttachStdout || req.Config.AttachStdin {
		t.Fatalf("%+v %v", req, err)
	}
}

// fakeDaemon answers one light connection with frames; it returns the hello it got.
func fakeDaemon(t *testing.T, frames func(w io.Writer)) (string, chan lightproto.Hello) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan lightproto.Hello, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		m := make([]byte, len(lightproto.Magic))
		if _, err := io.ReadFull(r, m); err != nil || string(m) != lightproto.Magic {
			return
		}
		h, err := lightproto.ReadHello(r)
		if err != nil {
			return
		}
		got <- h
		frames(c)
	}()
	return path, got
}

// The front prints what the full client prints for the same answers (internal/cli
// TestRunExitCodes), and leaves to the full client what it must not serve.
func TestRun(t *testing.T) {
	created := func(w io.Writer) {
		lightproto.WriteJSON(w, lightproto.FrameCreated, lightproto.Created{ID: "abc", Warnings: []string{"careful"}})
	}
	ready := func(w io.Writer) { lightproto.WriteFrame(w, lightproto.FrameReady, nil) }
	exit := func(code int, msg string) func(io.Writer) {
		return func(w io.Writer) {
			lightproto.WriteJSON(w, lightproto.FrameExit, lightproto.Exit{Code: code, Error: msg})
		}
	}
	fail := func(kind, msg string) func(io.Writer) {
		return func(w io.Writer) {
			lightproto.WriteJSON(w, lightproto.FrameError, lightproto.Error{Message: msg, Kind: kind})
		}
	}
	out := func(typ byte, s string) func(io.Writer) {
		return func(w io.Writer) { lightproto.WriteFrame(w, typ, []byte(s)) }
	}
	cases := []struct {
		name     string
		frames   []func(io.Writer)
		fallback bool
		code     int
		full     bool
		stdout   string
		stderr   string
	}{
		{"output", []func(io.Writer){created, ready, out(lightproto.FrameStdout, "hi\n"), out(lightproto.FrameStderr, "oops\n"), exit(3, "")}, false,
			3, false, "hi\n", "WARNING: careful\noops\n"},
		{"not found", []func(io.Writer){created, exit(127, "exec: \"x\": executable file not found in $PATH\n")}, false,
			127, false, "", "WARNING: careful\nError response from daemon: exec: \"x\": executable file not found in $PATH\n"},
		{"engine", []func(io.Writer){exit(0, "runtime  failed")}, false, 125, false, "", "Error response from daemon: runtime failed\n"},
		{"create refused", []func(io.Writer){fail("already exists", `container name "web" is already in use`)}, true,
			125, false, "", "Error response from daemon: container name \"web\" is already in use\n"},
		{"conn-like", []func(io.Writer){fail("unavailable", "dial unix /s: connect: refused")}, false,
			125, false, "", "Cannot connect to the isulad daemon at H. Is the daemon running?\n"},
		{"no image, pull", []func(io.Writer){fail("not found", "image x: not found on this host")}, true, 0, true, "", ""},
		{"no image, never", []func(io.Writer){fail("not found", "image x: not found on this host")}, false,
			125, false, "", "Error response from daemon: image x: not found on this host\n"},
		{"not found after create", []func(io.Writer){created, fail("not found", "gone")}, true,
			125, false, "", "WARNING: careful\nError response from daemon: gone\n"},
		{"silent close", nil, true, 0, true, "", ""},
		{"cut short", []func(io.Writer){created, ready}, false, 125, false, "", "WARNING: careful\nError: the daemon at H ended the stream before the container's exit: connection closed\n"},
	}
	for _, tc := range cases {
		path, hello := fakeDaemon(t, func(w io.Writer) {
			for _, f := range tc.frames {
				f(w)
			}
		})
		p := Plan{Serve: true, Host: "H", Path: path, Fallback: tc.fallback,
			Hello: lightproto.Hello{Create: json.RawMessage(`{"Config":{"Image":"x"}}`), SigProxy: true}}
		var o, e bytes.Buffer
		code, full := Run(p, &o, &e)
		if code != tc.code || full != tc.full || o.String() != tc.stdout || e.String() != tc.stderr {
			t.Errorf("%s: code %d full %v stdout %q stderr %q", tc.name, code, full, o.String(), e.String())
		}
		if h := <-hello; string(h.Create) != string(p.Hello.Create) || !h.SigProxy {
			t.Errorf("%s: the daemon got %+v", tc.name, h)
		}
	}
	// No daemon: the full client says so.
	if _, full := Run(Plan{Serve: true, Path: filepath.Join(t.TempDir(), "none.sock")}, io.Discard, io.Discard); !full {
		t.Error("no daemon: not left to the full client")
	}
}

// TestHelperFront is not a test: TestSigProxyArmedAtReady runs the test binary as a front
// with it (FRONT_HELPER_SOCK set), so that signals can be sent to a front of its own.
func TestHelperFront(t *testing.T) {
	sock := os.Getenv("FRONT_HELPER_SOCK")
	if sock == "" {
		t.Skip("a helper process of TestSigProxyArmedAtReady, not a test of its own")
	}
	p := Plan{Serve: true, Host: "H", Path: sock,
		Hello: lightproto.Hello{Create: json.RawMessage(`{"Config":{"Image":"x"}}`), SigProxy: true}}
	code, _ := Run(p, os.Stdout, os.Stderr)
	os.Exit(code)
}

// The signal proxy is set up from the hello on but proxies only from the container's start
// (FrameReady): a SIGTERM before it ends the front by SIGTERM, as with no proxy; one after
// it reaches the daemon as a signal frame, and the front goes on to the container's exit.
func TestSigProxyArmedAtReady(t *testing.T) {
	for _, afterReady := range []bool{false, true} {
		created := make(chan struct{})
		gotSignal := make(chan string, 1)
		path, _ := fakeDaemon(t, func(w io.Writer) {
			lightproto.WriteJSON(w, lightproto.FrameCreated, lightproto.Created{ID: "abc"})
			if !afterReady {
				close(created)
				io.Copy(io.Discard, w.(io.Reader)) // until the front is gone
				return
			}
			lightproto.WriteFrame(w, lightproto.FrameReady, nil)
			lightproto.WriteFrame(w, lightproto.FrameStdout, []byte("started\n"))
			typ, payload, err := lightproto.ReadFrame(bufio.NewReader(w.(io.Reader)))
			if err != nil || typ != lightproto.FrameSignal {
				gotSignal <- fmt.Sprintf("no signal frame: %q %v", typ, err)
				return
			}
			var s lightproto.Signal
			json.Unmarshal(payload, &s)
			gotSignal <- s.Name
			lightproto.WriteJSON(w, lightproto.FrameExit, lightproto.Exit{Code: 7})
		})
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFront$")
		cmd.Env = append(os.Environ(), "FRONT_HELPER_SOCK="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if afterReady {
			// The front printed what came after the ready: it has taken the ready.
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || line != "started\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("front's output %q %v", line, err)
			}
		} else {
			<-created
		}
		cmd.Process.Signal(syscall.SIGTERM)
		go io.Copy(io.Discard, stdout)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err = <-waited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-waited
			t.Fatalf("after ready %v: the front did not end 10 s after SIGTERM", afterReady)
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !afterReady {
			if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("SIGTERM before the start: the front ended with %v, want killed by SIGTERM", err)
			}
			continue
		}
		if name := <-gotSignal; name != "SIGTERM" {
			t.Errorf("SIGTERM after the start: the daemon got %s, want a SIGTERM frame", name)
		}
		if ws.Signaled() || ws.ExitStatus() != 7 {
			t.Errorf("SIGTERM after the start: the front ended with %v, want the container's exit 7", err)
		}
	}
}
