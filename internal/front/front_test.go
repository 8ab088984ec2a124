// Package front holds the tests of the isula front, cmd/isula/isula.c: a C program (why:
// docs/ARCHITECTURE.md, "Front and full client"). They build it twice: as
// scripts/build-front.sh builds it (static), and with AddressSanitizer and
// UndefinedBehaviorSanitizer, warnings as errors, which runs every case here; each case runs
// the binary against a fake daemon on a socket of its own, with a stand-in isula-full beside
// it that prints its arguments. test/integration's front tests run it against the real
// daemon and compare it with the full client.
package front

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isulad-go/isulad/internal/lightproto"
	"github.com/isulad-go/isulad/internal/testenv"
)

var (
	binDir    string // the sanitized front, as isula, and the stand-in isula-full
	staticBin string // the front as scripts/build-front.sh builds it
	buildErr  error
)

const fullCode = 42 // the stand-in isula-full's exit code

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "isula-front-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		buildErr = build(dir)
		return m.Run()
	}()
	os.Exit(code)
}

func build(dir string) error {
	cc, err := exec.LookPath("cc")
	if err != nil {
		return fmt.Errorf("no C compiler (cc): %v", err)
	}
	root, _ := filepath.Abs("../..")
	binDir = filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return err
	}
	staticBin = filepath.Join(dir, "isula-static")
	if out, err := exec.Command(filepath.Join(root, "scripts", "build-front.sh"), staticBin).CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/build-front.sh: %v\n%s", err, out)
	}
	san := exec.Command(cc, "-std=gnu11", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
		"-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Wshadow", "-Wformat=2", "-Werror",
		"-o", filepath.Join(binDir, "isula"), filepath.Join(root, "cmd", "isula", "isula.c"))
	if out, err := san.CombinedOutput(); err != nil {
		return fmt.Errorf("cc with sanitizers: %v\n%s", err, out)
	}
	full := "#!/bin/sh\necho FULL \"$@\"\nexit 42\n"
	return os.WriteFile(filepath.Join(binDir, "isula-full"), []byte(full), 0o755)
}

func needBuild(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		testenv.Missing(t, "the front cannot be built: %v", buildErr)
	}
}

// sanEnv keeps the sanitizers' own settings out of the cases' environments, as they are what
// the front sends: leaks at the exit are not errors (the front frees nothing it exits with).
const sanEnv = "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0"

type result struct {
	Code     int
	Signal   syscall.Signal // set when the front was killed
	Stdout   string
	Stderr   string
	Hello    *lightproto.Hello
	Accepted bool
}

// front runs the sanitized front with args and env (sanEnv added), and returns what it did.
func front(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "isula"), args...)
	cmd.Env = append(append([]string{}, env...), sanEnv)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%q: the front did not end in 20 s", args)
	}
	r := result{Stdout: o.String(), Stderr: e.String()}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		r.Signal = ws.Signal()
	} else {
		r.Code = ws.ExitStatus()
	}
	if strings.Contains(r.Stderr, "Sanitizer") || strings.Contains(r.Stderr, "runtime error") {
		t.Fatalf("%q: the sanitizers found an error:\n%s", args, r.Stderr)
	}
	return r
}

// daemon is a fake daemon on a socket of its own: each connection's hello is read, then
// answer writes frames (and may read the front's).
type daemon struct {
	Path  string
	Host  string // unix://Path
	hello chan lightproto.Hello
	conns chan struct{}
}

func fakeDaemon(t *testing.T, answer func(c net.Conn, r *bufio.Reader)) *daemon {
	t.Helper()
	d := &daemon{Path: filepath.Join(t.TempDir(), "d.sock"), hello: make(chan lightproto.Hello, 16), conns: make(chan struct{}, 16)}
	d.Host = "unix://" + d.Path
	l, err := net.Listen("unix", d.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d.conns <- struct{}{}
			go func() {
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
				d.hello <- h
				if answer != nil {
					answer(c, r)
				}
			}()
		}
	}()
	return d
}

// run runs the front against d with args, and adds the hello d got (if any).
func (d *daemon) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := front(t, env, args...)
	select {
	case <-d.conns:
		r.Accepted = true
	default:
	}
	select {
	case h := <-d.hello:
		r.Hello = &h
	case <-time.After(100 * time.Millisecond):
	}
	return r
}

func fullOutput(args ...string) string {
	return strings.TrimSpace("FULL "+strings.Join(args, " ")) + "\n"
}

func frames(fs ...func(io.Writer)) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, _ *bufio.Reader) {
		for _, f := range fs {
			f(c)
		}
	}
}

func plan(p lightproto.Plan) func(io.Writer) {
	return func(w io.Writer) { lightproto.WriteJSON(w, lightproto.FramePlan, p) }
}
func raw(typ byte, s string) func(io.Writer) {
	return func(w io.Writer) { lightproto.WriteFrame(w, typ, []byte(s)) }
}

// The front reads the command line up to run, finds the socket, and sends the rest with its
// environment; what it cannot send goes to the full client at once, with the same argv.
func TestCommandLines(t *testing.T) {
	needBuild(t)
	handover := frames(raw(lightproto.FrameHandover, ""))
	d := fakeDaemon(t, handover)
	other := fakeDaemon(t, handover)
	env := []string{"A=1"}
	for _, tc := range []struct {
		args []string
		env  string // ISULAD_HOST
		argv string // "": not sent to d
	}{
		{[]string{"-H", d.Host, "run", "x"}, "", "x"},
		{[]string{"-H=unix:" + d.Path, "run", "x"}, "", "x"},
		{[]string{"--host", d.Path, "run", "x"}, "", "x"},
		{[]string{"--host=" + other.Path, "-H", d.Path, "run", "-H", "/g.sock", "x"}, "", "-H /g.sock x"},
		{[]string{"run", "--rm", "busybox", "true"}, d.Host, "--rm busybox true"},
		{[]string{"-H", d.Path, "run", "x"}, other.Host, "x"},
		{[]string{"-H", "run", "run", "busybox"}, d.Host, ""}, // -H's value is "run": not a path
		{[]string{}, d.Host, ""}, {[]string{"run"}, d.Host, ""}, {[]string{"version"}, d.Host, ""},
		{[]string{"ps", "run"}, d.Host, ""}, {[]string{"--help", "run", "busybox"}, d.Host, ""},
		{[]string{"-D", "run", "busybox"}, d.Host, ""}, {[]string{"-H"}, d.Host, ""}, {[]string{"-H", d.Path}, d.Host, ""},
		{[]string{"--", "run", "busybox"}, d.Host, ""}, {[]string{"-H" + d.Path, "run", "busybox"}, d.Host, ""},
		{[]string{"-H", "relative.sock", "run", "busybox"}, d.Host, ""}, {[]string{"-H", "tcp://1.2.3.4:5", "run", "x"}, d.Host, ""},
		{[]string{"-H", "/" + strings.Repeat("x", 120), "run", "busybox"}, d.Host, ""}, {[]string{"create", "busybox"}, d.Host, ""},
	} {
		e := env
		if tc.env != "" {
			e = append([]string{"ISULAD_HOST=" + tc.env}, env...)
		}
		r := d.run(t, e, tc.args...)
		if r.Code != fullCode || r.Stdout != fullOutput(tc.args...) || r.Stderr != "" {
			t.Errorf("%q: %+v, want the full client with the same arguments", tc.args, r)
		}
		if tc.argv == "" {
			if r.Accepted {
				t.Errorf("%q: sent to the daemon", tc.args)
			}
			continue
		}
		if r.Hello == nil || strings.Join(r.Hello.Argv, " ") != tc.argv || len(r.Hello.Create) != 0 ||
			strings.Join(r.Hello.Env, " ") != strings.Join(append(e, sanEnv), " ") {
			t.Errorf("%q: the daemon got %+v, want argv %q", tc.args, r.Hello, tc.argv)
		}
	}
	select {
	case <-other.conns:
		t.Error("a front dialled the daemon that neither -H nor ISULAD_HOST named last")
	default:
	}
}

// The hello carries every byte of the arguments and the environment: JSON's escapes, and
// invalid UTF-8 as Go's encoder would have sent it (U+FFFD).
func TestHelloBytes(t *testing.T) {
	needBuild(t)
	d := fakeDaemon(t, frames(raw(lightproto.FrameHandover, "")))
	odd := "q\"b\\c/\x01\x1f\x7f\t\nwé<&>\U0001F600 \u2028"
	r := d.run(t, []string{"ODD=" + odd, "EMPTY="}, "-H", d.Host, "run", odd, "", "bad\xffutf8")
	if r.Hello == nil {
		t.Fatalf("no hello: %+v", r)
	}
	if want := []string{odd, "", "bad\ufffdutf8"}; strings.Join(r.Hello.Argv, "|") != strings.Join(want, "|") {
		t.Errorf("argv %q, want %q", r.Hello.Argv, want)
	}
	if want := []string{"ODD=" + odd, "EMPTY=", sanEnv}; strings.Join(r.Hello.Env, "|") != strings.Join(want, "|") {
		t.Errorf("env %q, want %q", r.Hello.Env, want)
	}
	if r.Hello.SigProxy || r.Hello.Detach {
		t.Errorf("hello %+v: sig_proxy and detach are the daemon's to say", r.Hello)
	}
}

// The front prints what the full client prints for the same answers (internal/cli
// TestRunExitCodes), and leaves to the full client what it must not serve.
func TestRun(t *testing.T) {
	needBuild(t)
	created := func(w io.Writer) {
		lightproto.WriteJSON(w, lightproto.FrameCreated, lightproto.Created{ID: "abc", Warnings: []string{"careful"}})
	}
	ready := raw(lightproto.FrameReady, "")
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
	big := func(w io.Writer) { w.Write([]byte{'O', 1, 0, 0, 1}) } // 16 MiB + 1
	cases := []struct {
		name   string
		plan   lightproto.Plan
		frames []func(io.Writer)
		code   int
		full   bool
		stdout string
		stderr string // %H: the host
	}{
		{"output", lightproto.Plan{SigProxy: true}, []func(io.Writer){created, ready, raw('O', "hi\n"), raw('E', "oops\n"), exit(3, "")},
			3, false, "hi\n", "WARNING: careful\noops\n"},
		{"not found", lightproto.Plan{}, []func(io.Writer){created, exit(127, "exec: \"x\": executable file not found in $PATH\n")},
			127, false, "", "WARNING: careful\nError response from daemon: exec: \"x\": executable file not found in $PATH\n"},
		{"engine", lightproto.Plan{}, []func(io.Writer){exit(0, " runtime \n failed\t")}, 125, false, "", "Error response from daemon: runtime failed\n"},
		{"create refused", lightproto.Plan{Fallback: true}, []func(io.Writer){fail("already exists", `container name "web" is already in use`)},
			125, false, "", "Error response from daemon: container name \"web\" is already in use\n"},
		{"conn-like", lightproto.Plan{}, []func(io.Writer){fail("unavailable", "dial unix /s: connect: refused")},
			125, false, "", "Cannot connect to the isulad daemon at %H. Is the daemon running?\n"},
		{"conn-like, root only", lightproto.Plan{}, []func(io.Writer){fail("unavailable", "dial unix /s: connect: permission denied")},
			125, false, "", "Cannot connect to the isulad daemon at %H: permission denied (the socket is for root only).\n"},
		{"unavailable, not the connection", lightproto.Plan{}, []func(io.Writer){fail("unavailable", "shutting down")},
			125, false, "", "Error response from daemon: shutting down\n"},
		{"canceled", lightproto.Plan{}, []func(io.Writer){fail("canceled", "context canceled")}, 125, false, "", "Error: canceled\n"},
		{"lines", lightproto.Plan{}, []func(io.Writer){fail("internal error", "  line one \n\n  line  two\u00a0 \r\n")},
			125, false, "", "Error response from daemon: line one; line two\n"},
		{"repeated keys", lightproto.Plan{}, []func(io.Writer){raw('!', `{"kind":"canceled","message":"first","kind":"","message":""}`)},
			125, false, "", "Error response from daemon: unknown error\n"},
		{"no message", lightproto.Plan{}, []func(io.Writer){fail("no such kind", "")}, 125, false, "", "Error response from daemon: unknown error\n"},
		{"no image, pull", lightproto.Plan{Fallback: true}, []func(io.Writer){fail("not found", "image x: not found on this host")}, fullCode, true, "", ""},
		{"no image, never", lightproto.Plan{}, []func(io.Writer){fail("not found", "image x: not found on this host")},
			125, false, "", "Error response from daemon: image x: not found on this host\n"},
		{"not found after create", lightproto.Plan{Fallback: true}, []func(io.Writer){created, fail("not found", "gone")},
			125, false, "", "WARNING: careful\nError response from daemon: gone\n"},
		{"silent close", lightproto.Plan{}, nil, fullCode, true, "", ""},
		{"cut short", lightproto.Plan{}, []func(io.Writer){created, ready}, 125, false, "",
			"WARNING: careful\nError: the daemon at %H ended the stream before the container's exit: connection closed\n"},
		{"cut in a frame", lightproto.Plan{}, []func(io.Writer){created, func(w io.Writer) { w.Write([]byte{'O', 0, 0, 0, 9, 'a'}) }}, 125, false, "",
			"WARNING: careful\nError: the daemon at %H ended the stream before the container's exit: connection closed\n"},
		{"frame too big", lightproto.Plan{}, []func(io.Writer){created, big}, 125, false, "",
			"WARNING: careful\nError: the daemon at %H ended the stream before the container's exit: light protocol: a frame of 16777217 bytes is over 16777216\n"},
		{"unknown frame", lightproto.Plan{}, []func(io.Writer){raw('Z', "{}"), created, exit(0, "")}, 0, false, "", "WARNING: careful\n"},
		{"detach", lightproto.Plan{Detach: true}, []func(io.Writer){created, exit(0, "")}, 0, false, "abc\n", "WARNING: careful\n"},
		{"detach, failed", lightproto.Plan{Detach: true}, []func(io.Writer){created, exit(0, "boom")}, 125, false, "", "WARNING: careful\nError response from daemon: boom\n"},
		{"escapes", lightproto.Plan{}, []func(io.Writer){
			raw('C', `{"extra":{"a":[1,-2.5e3,{"b":null}],"t":true},"id":"i\u0064","warnings":["caf\u00e9 \ud83d\ude00 lone \ud800 x","b\"q\\\/\u00e9"]}`),
			raw('X', ` { "code" : 5 , "error" : null } `)}, 5, false, "", "WARNING: café 😀 lone \ufffd x\nWARNING: b\"q\\/é\n"},
		{"too deep", lightproto.Plan{}, []func(io.Writer){raw('C', `{"extra":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`,"id":"x","warnings":["w"]}`),
			raw('C', `{"extra":`+strings.Repeat("[", 60)+strings.Repeat("]", 60)+`,"id":"y","warnings":["deep enough"]}`), exit(0, "")}, 0, false, "", "WARNING: deep enough\n"},
		{"warnings null", lightproto.Plan{Detach: true}, []func(io.Writer){raw('C', `{"id":"x1","warnings":null}`), exit(0, "")}, 0, false, "x1\n", ""},
		{"bad exit", lightproto.Plan{}, []func(io.Writer){raw('X', `{"code":1.5}`)}, 125, false, "", "Error: bad exit message from the daemon: {\"code\":1.5}\n"},
		{"bad exit, huge", lightproto.Plan{}, []func(io.Writer){raw('X', `{"code":99999999999}`)}, 125, false, "", "Error: bad exit message from the daemon: {\"code\":99999999999}\n"},
		{"bad error", lightproto.Plan{}, []func(io.Writer){raw('!', `{"message":"x"`)}, 125, false, "", "Error: bad error message from the daemon: {\"message\":\"x\"\n"},
		{"negative exit", lightproto.Plan{}, []func(io.Writer){exit(-1, "")}, 255, false, "", ""},
	}
	for _, tc := range cases {
		d := fakeDaemon(t, frames(append([]func(io.Writer){plan(tc.plan)}, tc.frames...)...))
		args := []string{"-H", d.Host, "run", "x"}
		r := d.run(t, nil, args...)
		stdout := tc.stdout
		if tc.full {
			stdout = fullOutput(args...)
		}
		stderr := strings.ReplaceAll(tc.stderr, "%H", d.Host)
		if r.Signal != 0 || r.Code != tc.code || r.Stdout != stdout || r.Stderr != stderr {
			t.Errorf("%s: %+v\nwant code %d stdout %q stderr %q", tc.name, r, tc.code, stdout, stderr)
		}
	}
	// A command line the daemon does not serve, or does not understand (an older daemon's
	// error, or its silence), goes to the full client, whatever follows.
	for name, answer := range map[string]func(io.Writer){
		"handover":   raw(lightproto.FrameHandover, ""),
		"error":      fail("invalid argument", "light protocol: the hello has no create request"),
		"exit first": exit(0, ""),
		"silence":    func(io.Writer) {},
		"bad plan":   raw(lightproto.FramePlan, `{"sig_proxy":1}`),
	} {
		d := fakeDaemon(t, frames(answer, exit(0, "")))
		args := []string{"-H", d.Host, "run", "x"}
		if r := d.run(t, nil, args...); r.Code != fullCode || r.Stdout != fullOutput(args...) || r.Stderr != "" {
			t.Errorf("%s: %+v, want the full client", name, r)
		}
	}
	// No daemon: the full client says so.
	args := []string{"-H", filepath.Join(t.TempDir(), "none.sock"), "run", "x"}
	if r := front(t, nil, args...); r.Code != fullCode || r.Stdout != fullOutput(args...) {
		t.Errorf("no daemon: %+v, want the full client", r)
	}
}

// Without isula-full beside it, what the front hands over fails with one line, exit 125.
func TestNoFullClient(t *testing.T) {
	needBuild(t)
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(binDir, "isula"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "isula"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "isula"), "version")
	cmd.Env = []string{sanEnv}
	out, err := cmd.CombinedOutput()
	want := "Error: cannot run the full client " + dir + "/isula-full: no such file or directory\n"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 || string(out) != want {
		t.Fatalf("%v %q, want exit 125 and %q", err, out, want)
	}
}

// The signal proxy is set up at the plan (when it says sig_proxy, and not for -d) but proxies
// only from the container's start (FrameReady): a SIGTERM before it ends the front by SIGTERM,
// as with no proxy; one after it reaches the daemon as a signal frame, and the front goes on to
// the container's exit. Without the proxy, SIGTERM ends the front.
func TestSigProxyArmedAtReady(t *testing.T) {
	needBuild(t)
	for _, tc := range []struct {
		name       string
		proxy      bool
		afterReady bool
	}{{"before the start", true, false}, {"after the start", true, true}, {"no proxy", false, true}} {
		created := make(chan struct{})
		gotSignal := make(chan string, 1)
		d := fakeDaemon(t, func(c net.Conn, r *bufio.Reader) {
			lightproto.WriteJSON(c, lightproto.FramePlan, lightproto.Plan{SigProxy: tc.proxy})
			lightproto.WriteJSON(c, lightproto.FrameCreated, lightproto.Created{ID: "abc"})
			if !tc.afterReady {
				lightproto.WriteFrame(c, lightproto.FrameStderr, []byte("created\n"))
				close(created)
				io.Copy(io.Discard, r) // until the front is gone
				return
			}
			lightproto.WriteFrame(c, lightproto.FrameReady, nil)
			lightproto.WriteFrame(c, lightproto.FrameStdout, []byte("started\n"))
			typ, payload, err := lightproto.ReadFrame(r)
			if err != nil || typ != lightproto.FrameSignal {
				gotSignal <- fmt.Sprintf("no signal frame: %q %v", typ, err)
				return
			}
			var s lightproto.Signal
			json.Unmarshal(payload, &s)
			gotSignal <- s.Name
			lightproto.WriteJSON(c, lightproto.FrameExit, lightproto.Exit{Code: 7})
		})
		cmd := exec.Command(filepath.Join(binDir, "isula"), "-H", d.Host, "run", "x")
		cmd.Env = []string{sanEnv}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The front printed what came after the created (or the ready): it has taken the
		// plan (and the ready).
		pipe, want := stdout, "started\n"
		if !tc.afterReady {
			pipe, want = stderr, "created\n"
		}
		line, err := bufio.NewReader(pipe).ReadString('\n')
		if err != nil || line != want {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: front's output %q %v", tc.name, line, err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		go io.Copy(io.Discard, stdout)
		go io.Copy(io.Discard, stderr)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err = <-waited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-waited
			t.Fatalf("%s: the front did not end 10 s after SIGTERM", tc.name)
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !tc.proxy || !tc.afterReady {
			if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("%s: the front ended with %v, want killed by SIGTERM", tc.name, err)
			}
			continue
		}
		if name := <-gotSignal; name != "SIGTERM" {
			t.Errorf("%s: the daemon got %s, want a SIGTERM frame", tc.name, name)
		}
		if ws.Signaled() || ws.ExitStatus() != 7 {
			t.Errorf("%s: the front ended with %v, want the container's exit 7", tc.name, err)
		}
	}
}

// Whatever the daemon's frames hold, the front ends with an exit code, never by a signal or a
// sanitizer's report: random payloads in every frame type, JSON-like and not.
func TestFramesFuzz(t *testing.T) {
	needBuild(t)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	seed := rng.Int63()
	t.Logf("seed %d", seed)
	rng = rand.New(rand.NewSource(seed))
	pieces := []string{"{", "}", "[", "]", ",", ":", `"`, `\`, `\u`, `\ud800`, "d83d", "true", "null", "-", "1e9", "0",
		`"id"`, `"warnings"`, `"code"`, `"error"`, `"message"`, `"kind"`, `"not found"`, " ", "\n", "\x00", "\xff", "é"}
	n := 150
	if testing.Short() {
		n = 40
	}
	for i := 0; i < n; i++ {
		var b bytes.Buffer
		lightproto.WriteJSON(&b, lightproto.FramePlan, lightproto.Plan{SigProxy: rng.Intn(2) == 0, Detach: rng.Intn(2) == 0, Fallback: rng.Intn(2) == 0})
		for f := rng.Intn(4); f >= 0; f-- {
			var p strings.Builder
			if rng.Intn(3) == 0 {
				pl := make([]byte, rng.Intn(64))
				rng.Read(pl)
				p.Write(pl)
			} else {
				for k := rng.Intn(24); k >= 0; k-- {
					p.WriteString(pieces[rng.Intn(len(pieces))])
				}
			}
			typ := "CRXO!EZP"[rng.Intn(8)]
			hdr := make([]byte, 5)
			hdr[0] = typ
			binary.BigEndian.PutUint32(hdr[1:], uint32(p.Len()))
			b.Write(hdr)
			b.WriteString(p.String())
		}
		if rng.Intn(2) == 0 {
			lightproto.WriteJSON(&b, lightproto.FrameExit, lightproto.Exit{Code: 3})
		}
		payload := b.Bytes()
		d := fakeDaemon(t, func(c net.Conn, _ *bufio.Reader) { c.Write(payload) })
		r := d.run(t, nil, "-H", d.Host, "run", "x")
		if r.Signal != 0 {
			t.Fatalf("frames %q: the front was killed by %v: %+v", payload, r.Signal, r)
		}
	}
}

// The front as built for use is static: its start maps no dynamic loader or library.
func TestStatic(t *testing.T) {
	needBuild(t)
	f, err := elf.Open(staticBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the front has a %v program header: not static", p.Type)
		}
	}
	// And it serves a run like the sanitized build does.
	d := fakeDaemon(t, frames(plan(lightproto.Plan{}), raw('O', "hi\n"), raw('X', `{"code":4}`)))
	cmd := exec.Command(staticBin, "-H", d.Host, "run", "x")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 || string(out) != "hi\n" {
		t.Errorf("static front: %v %q, want exit 4 and hi", err, out)
	}
}
