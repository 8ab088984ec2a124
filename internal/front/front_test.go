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

	"github.com/isulad-go/isulad/internal/lightproto"
)

func noEnv(string) string { return "" }

// The front reads the command line up to run, finds the socket, and sends the rest with
// the environment; what it cannot send goes to the full client at once.
func TestPrepare(t *testing.T) {
	env := []string{"A=1"}
	for _, tc := range []struct {
		args []string
		path string // "" when not sent
		argv string
	}{
		{[]string{"run", "--rm", "busybox", "true"}, "/var/run/isulad.sock", "--rm busybox true"},
		{[]string{"-H", "unix:///a.sock", "run", "x"}, "/a.sock", "x"},
		{[]string{"-H=unix:/b.sock", "run", "x"}, "/b.sock", "x"},
		{[]string{"--host", "/c.sock", "run", "x"}, "/c.sock", "x"},
		{[]string{"--host=/d.sock", "-H", "/e.sock", "run", "-H", "/g.sock", "x"}, "/e.sock", "-H /g.sock x"},
		{[]string{"-H", "run", "run", "busybox"}, "", ""}, // -H's value is "run": not a path
		{[]string{}, "", ""}, {[]string{"run"}, "", ""}, {[]string{"version"}, "", ""},
		{[]string{"ps", "run"}, "", ""}, {[]string{"--help", "run", "busybox"}, "", ""},
		{[]string{"-D", "run", "busybox"}, "", ""}, {[]string{"-H"}, "", ""}, {[]string{"-H", "/a.sock"}, "", ""},
		{[]string{"--", "run", "busybox"}, "", ""}, {[]string{"-H/a.sock", "run", "busybox"}, "", ""},
		{[]string{"-H", "relative.sock", "run", "busybox"}, "", ""}, {[]string{"-H", "tcp://1.2.3.4:5", "run", "x"}, "", ""},
		{[]string{"-H", "/" + strings.Repeat("x", 120), "run", "busybox"}, "", ""}, {[]string{"create", "busybox"}, "", ""},
	} {
		p := Prepare(tc.args, noEnv, env)
		if tc.path == "" {
			if p.Serve {
				t.Errorf("%q: sent", tc.args)
			}
			continue
		}
		if !p.Serve || p.Path != tc.path || strings.Join(p.Hello.Argv, " ") != tc.argv ||
			len(p.Hello.Env) != 1 || p.Hello.Env[0] != "A=1" || len(p.Hello.Create) != 0 {
			t.Errorf("%q: %+v, want %q sent to %s", tc.args, p, tc.argv, tc.path)
		}
	}
	// The host's env var, and -H over it.
	getenv := func(k string) string {
		if k == "ISULAD_HOST" {
			return "unix:///env.sock"
		}
		return ""
	}
	if p := Prepare([]string{"run", "x"}, getenv, nil); p.Path != "/env.sock" {
		t.Errorf("ISULAD_HOST: %+v", p)
	}
	if p := Prepare([]string{"-H", "/flag.sock", "run", "x"}, getenv, nil); p.Path != "/flag.sock" {
		t.Errorf("-H over ISULAD_HOST: %+v", p)
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
	// Each case twice: with a hello that holds the create request, and with the command
	// line, which the daemon answers with its plan first.
	for _, argv := range []bool{false, true} {
		for _, tc := range cases {
			path, hello := fakeDaemon(t, func(w io.Writer) {
				if argv {
					lightproto.WriteJSON(w, lightproto.FramePlan, lightproto.Plan{SigProxy: true, Fallback: tc.fallback})
				}
				for _, f := range tc.frames {
					f(w)
				}
			})
			p := Plan{Serve: true, Host: "H", Path: path, Fallback: tc.fallback,
				Hello: lightproto.Hello{Create: json.RawMessage(`{"Config":{"Image":"x"}}`), SigProxy: true}}
			if argv {
				p = Plan{Serve: true, Host: "H", Path: path, Hello: lightproto.Hello{Argv: []string{"x"}, Env: []string{"A=1"}}}
			}
			var o, e bytes.Buffer
			code, full := Run(p, &o, &e)
			if code != tc.code || full != tc.full || o.String() != tc.stdout || e.String() != tc.stderr {
				t.Errorf("%s (argv %v): code %d full %v stdout %q stderr %q", tc.name, argv, code, full, o.String(), e.String())
			}
			h := <-hello
			if (!argv && (string(h.Create) != string(p.Hello.Create) || !h.SigProxy)) ||
				(argv && (len(h.Create) != 0 || strings.Join(h.Argv, " ") != "x" || strings.Join(h.Env, " ") != "A=1")) {
				t.Errorf("%s (argv %v): the daemon got %+v", tc.name, argv, h)
			}
		}
	}
	// A command line the daemon does not serve, or does not understand (an older daemon's
	// error, or its silence), goes to the full client, whatever follows.
	for name, answer := range map[string]func(io.Writer){
		"handover": func(w io.Writer) { lightproto.WriteFrame(w, lightproto.FrameHandover, nil) },
		"error": func(w io.Writer) {
			lightproto.WriteJSON(w, lightproto.FrameError, lightproto.Error{Message: "light protocol: the hello has no create request", Kind: "invalid argument"})
		},
		"exit first": exit(0, ""),
		"silence":    func(io.Writer) {},
	} {
		path, _ := fakeDaemon(t, answer)
		var o, e bytes.Buffer
		code, full := Run(Plan{Serve: true, Host: "H", Path: path, Hello: lightproto.Hello{Argv: []string{"x"}}}, &o, &e)
		if !full || code != 0 || o.Len() != 0 || e.Len() != 0 {
			t.Errorf("%s: code %d full %v stdout %q stderr %q, want the full client", name, code, full, o.String(), e.String())
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
