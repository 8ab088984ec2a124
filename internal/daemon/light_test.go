package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/lightproto"
)

type lightConn struct {
	c    net.Conn
	rest string // the line after Magic
}

func sniffed(t *testing.T, timeout time.Duration) (*sniffListener, string, chan lightConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	light := make(chan lightConn, 4)
	s := newSniffListener(l, func(c net.Conn, r *bufio.Reader) {
		line, _ := r.ReadString('\n')
		light <- lightConn{c, line}
	})
	s.timeout = timeout
	t.Cleanup(func() { s.Close() })
	return s, path, light
}

func dial(t *testing.T, path string, parts ...string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, p := range parts {
		if _, err := c.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // separate reads on the other side
	}
	return c
}

func accept(t *testing.T, s *sniffListener, within time.Duration) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := s.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.c
	case <-time.After(within):
		t.Fatalf("no connection accepted within %v", within)
	}
	return nil
}

// A client that sends nothing does not hold up the next one; the bytes read to tell gRPC
// from the light protocol are read again by gRPC; a light connection (even with Magic split
// over reads) goes to the light handler with the bytes after Magic.
func TestSniffListener(t *testing.T) {
	s, path, light := sniffed(t, time.Second)
	dial(t, path) // silent
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	dial(t, path, preface+"more")
	g := accept(t, s, time.Second)
	buf := make([]byte, len(preface)+4)
	if _, err := io.ReadFull(g, buf); err != nil || string(buf) != preface+"more" {
		t.Fatalf("gRPC connection read %q, %v", buf, err)
	}

	dial(t, path, lightproto.Magic+"{\"create\":{}}\n")
	dial(t, path, lightproto.Magic[:3], lightproto.Magic[3:]+"second\n")
	for _, want := range []string{"{\"create\":{}}\n", "second\n"} {
		select {
		case lc := <-light:
			if lc.rest != want {
				t.Fatalf("light connection read %q, want %q", lc.rest, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the light handler got no connection")
		}
	}

	// A prefix of Magic that goes no further is not gRPC's either.
	dial(t, path, "ISULA-")
	// Once the timeout passes, the silent client goes to gRPC (which has its own).
	silent := accept(t, s, 3*time.Second)
	silent.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := silent.Read(make([]byte, 8)); n != 0 || !errors.Is(err, errTimeout(err)) {
		t.Fatalf("silent connection read %d bytes, %v", n, err)
	}
	ch := make(chan net.Conn, 1)
	go func() {
		if c, err := s.Accept(); err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		t.Fatalf("a half Magic went to gRPC (local %v)", c.LocalAddr())
	case <-time.After(1500 * time.Millisecond):
	}

	s.Close()
	if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func errTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errors.New("not a timeout")
}

// lightDaemon serves the light protocol of a fake daemon on a unix socket, as the Server
// does: the sniffing listener, the light sessions on the service's own Attach.
func lightDaemon(t *testing.T) (*fakeDaemon, *lightServer, string) {
	t.Helper()
	f := newFakeDaemon(t)
	ls := newLightServer(&service{d: f.Daemon})
	path := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := newSniffListener(l, ls.serve)
	go func() { // the gRPC side: nothing comes here in these tests
		for {
			c, err := s.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ls.shutdown(ctx)
	})
	return f, ls, path
}

func lightRun(t *testing.T, path string, req types.CreateRequest, sigProxy bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, _ := json.Marshal(req)
	if err := lightproto.WriteHello(c, lightproto.Hello{Create: b, SigProxy: sigProxy}); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func readFrame(t *testing.T, r *bufio.Reader, want byte, v any) []byte {
	t.Helper()
	typ, p, err := lightproto.ReadFrame(r)
	if err != nil || typ != want {
		t.Fatalf("frame %q %s %v, want %q", typ, p, err, want)
	}
	if v != nil {
		if err := json.Unmarshal(p, v); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// A light run goes through the service's Attach: created, ready, the exit after --rm's
// removal; a signal frame is the Kill call; the client going is the stream's cancel; an
// error Attach returns comes as the error frame with its category.
func TestLightRun(t *testing.T) {
	f, _, path := lightDaemon(t)
	req := types.CreateRequest{Name: "light"}
	req.Config.Image = "none"
	req.Config.Cmd = []string{"/bin/sh"}
	req.HostConfig.ExternalRootfs = f.rootfs
	req.HostConfig.AutoRemove = true

	_, r := lightRun(t, path, req, true)
	var cr lightproto.Created
	readFrame(t, r, lightproto.FrameCreated, &cr)
	readFrame(t, r, lightproto.FrameReady, nil)
	if c, err := f.store.Get(cr.ID); err != nil || c.Status() != container.Running {
		t.Fatalf("after ready: %v %v", c, err)
	}
	f.w.Exit(cr.ID, 3)
	var x lightproto.Exit
	readFrame(t, r, lightproto.FrameExit, &x)
	if x.Code != 3 || x.Error != "" || f.store.Known(cr.ID) {
		t.Fatalf("exit %+v, container still known: %v", x, f.store.Known(cr.ID))
	}
	if _, _, err := lightproto.ReadFrame(r); err != io.EOF {
		t.Fatalf("after the exit: %v, want the daemon's close", err)
	}

	// sig-proxy: the signal goes to the container (the fake runtime's kill exits it 128+n).
	req.Name = "sig"
	c, r := lightRun(t, path, req, true)
	readFrame(t, r, lightproto.FrameCreated, &cr)
	readFrame(t, r, lightproto.FrameReady, nil)
	if err := lightproto.WriteJSON(c, lightproto.FrameSignal, lightproto.Signal{Name: "SIGTERM"}); err != nil {
		t.Fatal(err)
	}
	readFrame(t, r, lightproto.FrameExit, &x)
	if x.Code != 128+15 || len(f.w.Calls("kill "+cr.ID)) != 1 {
		t.Fatalf("exit %+v, kills %v", x, f.w.Calls("kill"))
	}

	// Without sig_proxy a signal frame does nothing; the client going cancels the stream:
	// the container keeps running, as when a gRPC client goes.
	req.Name, req.HostConfig.AutoRemove = "gone", false
	c, r = lightRun(t, path, req, false)
	readFrame(t, r, lightproto.FrameCreated, &cr)
	readFrame(t, r, lightproto.FrameReady, nil)
	lightproto.WriteJSON(c, lightproto.FrameSignal, lightproto.Signal{Name: "SIGKILL"})
	c.Close()
	holdsFor(t, func() bool { return len(f.w.Calls("kill "+cr.ID)) == 0 })
	if ct, err := f.store.Get(cr.ID); err != nil || ct.Status() != container.Running {
		t.Fatalf("after the client went: %v %v", ct, err)
	}
	f.w.Exit(cr.ID, 0)

	// Errors: the name is taken (already exists), the image is not here (not found), a bad
	// hello (invalid argument).
	for _, tc := range []struct {
		mod  func(*types.CreateRequest)
		kind error
	}{
		{func(r *types.CreateRequest) { r.Name = "gone" }, errdefs.ErrAlreadyExists},
		{func(r *types.CreateRequest) {
			r.Name, r.Config.Image, r.HostConfig.ExternalRootfs = "img", "nosuch:1", ""
		}, errdefs.ErrNotFound},
	} {
		q := req
		tc.mod(&q)
		_, r := lightRun(t, path, q, true)
		var e lightproto.Error
		readFrame(t, r, lightproto.FrameError, &e)
		if lightproto.KindOf(e.Kind) != tc.kind || e.Message == "" || strings.Contains(e.Message, "rpc error") {
			t.Errorf("%+v, want kind %v", e, tc.kind)
		}
	}
	bad, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.Write([]byte(lightproto.Magic + "{\"create\":null}\n"))
	var e lightproto.Error
	readFrame(t, bufio.NewReader(bad), lightproto.FrameError, &e)
	if lightproto.KindOf(e.Kind) != errdefs.ErrInvalidArgument {
		t.Errorf("bad hello: %+v", e)
	}
}

// lightArgv sends a front's hello: the command line after run and the client's environment.
func lightArgv(t *testing.T, path string, env []string, argv ...string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := lightproto.WriteHello(c, lightproto.Hello{Argv: argv, Env: env}); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// A front's command line is parsed here as the full client would: the plan, then the run as
// for a create request, with a bare -e from the client's environment (not the daemon's);
// what only the client can do goes back to it (handover), and nothing is made.
func TestLightArgv(t *testing.T) {
	f, _, path := lightDaemon(t)
	t.Setenv("LIGHT_DAEMON_ONLY", "daemon")
	_, r := lightArgv(t, path, []string{"FROMCLIENT=client", "FROMCLIENT=second"},
		"--rm", "--name", "argv", "-e", "FROMCLIENT", "-e", "LIGHT_DAEMON_ONLY", "--external-rootfs", f.rootfs, "none", "/bin/sh")
	var plan lightproto.Plan
	readFrame(t, r, lightproto.FramePlan, &plan)
	if !plan.SigProxy || plan.Detach || plan.Fallback {
		t.Fatalf("plan %+v", plan)
	}
	var cr lightproto.Created
	readFrame(t, r, lightproto.FrameCreated, &cr)
	readFrame(t, r, lightproto.FrameReady, nil)
	c, err := f.store.Get(cr.ID)
	if err != nil || c.Name != "argv" || !c.HostConfig.AutoRemove {
		t.Fatalf("created %+v %v", c, err)
	}
	env := strings.Join(c.Config.Env, " ")
	if !strings.Contains(env, "FROMCLIENT=client") || strings.Contains(env, "second") || strings.Contains(env, "LIGHT_DAEMON_ONLY") {
		t.Fatalf("env %q: want the client's first FROMCLIENT, nothing of the daemon's", env)
	}
	f.w.Exit(cr.ID, 4)
	var x lightproto.Exit
	readFrame(t, r, lightproto.FrameExit, &x)
	if x.Code != 4 || f.store.Known(cr.ID) {
		t.Fatalf("exit %+v, still known %v", x, f.store.Known(cr.ID))
	}

	// run -d: the plan says so, then created and exit 0.
	_, r = lightArgv(t, path, nil, "-d", "--name", "argvd", "--external-rootfs", f.rootfs, "none", "/bin/sh")
	readFrame(t, r, lightproto.FramePlan, &plan)
	readFrame(t, r, lightproto.FrameCreated, &cr)
	readFrame(t, r, lightproto.FrameExit, &x)
	if !plan.Detach || x.Code != 0 {
		t.Fatalf("run -d: plan %+v exit %+v", plan, x)
	}
	f.w.Exit(cr.ID, 0)

	before := len(f.store.List())
	for _, argv := range [][]string{
		{"--env-file", "/etc/shadow", "--external-rootfs", f.rootfs, "none", "true"},
		{"--external-rootfs", "relative", "none", "true"},
		{"-H", "/elsewhere.sock", "--external-rootfs", f.rootfs, "none", "true"},
		{"-it", "--external-rootfs", f.rootfs, "none", "true"},
		{"--bogus", "none"},
	} {
		_, r := lightArgv(t, path, nil, argv...)
		readFrame(t, r, lightproto.FrameHandover, nil)
		if _, _, err := lightproto.ReadFrame(r); err != io.EOF {
			t.Fatalf("%q: after the handover: %v, want the daemon's close", argv, err)
		}
	}
	if n := len(f.store.List()); n != before {
		t.Fatalf("%d containers after the handovers, want %d", n, before)
	}
}

// A daemon that stops gives running light sessions the grace time, then cuts them (the
// container keeps running, as with gRPC's Stop); later connections get no session.
func TestLightShutdown(t *testing.T) {
	f, ls, path := lightDaemon(t)
	req := types.CreateRequest{Name: "long"}
	req.Config.Image = "none"
	req.Config.Cmd = []string{"/bin/sh"}
	req.HostConfig.ExternalRootfs = f.rootfs
	_, r := lightRun(t, path, req, true)
	var cr lightproto.Created
	readFrame(t, r, lightproto.FrameCreated, &cr)
	readFrame(t, r, lightproto.FrameReady, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	ls.shutdown(ctx)
	if el := time.Since(start); el < 200*time.Millisecond || el > 2*time.Second {
		t.Fatalf("shutdown took %v, want the grace time and little more", el)
	}
	if _, _, err := lightproto.ReadFrame(r); err == nil {
		t.Fatal("a frame after the cut, want the end of the connection")
	}
	if c, err := f.store.Get(cr.ID); err != nil || c.Status() != container.Running {
		t.Fatalf("after the cut: %v %v", c, err)
	}
	req.Name = "late"
	_, r = lightRun(t, path, req, true)
	if typ, _, err := lightproto.ReadFrame(r); err == nil {
		t.Fatalf("a session after shutdown: frame %q", typ)
	}
	f.w.Exit(cr.ID, 0)
}

// holdsFor watches cond for a moment, failing if cond turns false (a negative assertion).
func holdsFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !cond() {
			t.Fatal("condition broken")
		}
	}
}
