package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/cli/runopts"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/errdefs/grpcerr"
	"github.com/isulad-go/isulad/internal/lightproto"
)

// The light protocol (internal/lightproto) shares the API sockets with gRPC: sniffListener
// looks at each connection's first bytes and hands a light one to lightServer, everything
// else to gRPC with the bytes it read put back. A light connection is one attached run,
// served by the gRPC service's own Attach through lightAttach.

// sniffTimeout bounds the wait for a connection's first bytes: a client that sends nothing
// goes to gRPC after it (which has its own handshake timeout), as before the light protocol.
const sniffTimeout = 5 * time.Second

// helloTimeout bounds the wait for a light client's hello line.
const helloTimeout = 10 * time.Second

type acceptResult struct {
	c   net.Conn
	err error
}

// sniffListener wraps a listener (rootOnly: its check applies to both protocols). Accept
// returns the gRPC connections; light ones go to light. Each connection is looked at in a
// goroutine of its own, so a silent one does not hold up the next.
type sniffListener struct {
	net.Listener
	light   func(net.Conn, *bufio.Reader)
	timeout time.Duration

	start     sync.Once
	conns     chan acceptResult
	done      chan struct{}
	closeOnce sync.Once
}

func newSniffListener(l net.Listener, light func(net.Conn, *bufio.Reader)) *sniffListener {
	return &sniffListener{Listener: l, light: light, timeout: sniffTimeout,
		conns: make(chan acceptResult), done: make(chan struct{})}
}

// Accept starts the accept loop on its first call (connections wait in the backlog until
// the server serves), then returns the next gRPC connection.
func (s *sniffListener) Accept() (net.Conn, error) {
	s.start.Do(func() { go s.loop() })
	select {
	case r := <-s.conns:
		return r.c, r.err
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *sniffListener) loop() {
	delay := 5 * time.Millisecond
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Another error (EMFILE...): gRPC decides what to do with it, and the
			// loop retries after a pause, as gRPC's own accept loop.
			select {
			case s.conns <- acceptResult{err: err}:
			case <-s.done:
				return
			}
			select {
			case <-time.After(delay):
			case <-s.done:
				return
			}
			if delay < time.Second {
				delay *= 2
			}
			continue
		}
		delay = 5 * time.Millisecond
		go s.sniff(c)
	}
}

// sniff reads until the bytes are Magic or cannot be, or nothing came in time.
func (s *sniffListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(s.timeout))
	buf := make([]byte, 0, 64)
	var rerr error
	for len(buf) < len(lightproto.Magic) && bytes.HasPrefix([]byte(lightproto.Magic), buf) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			rerr = err
			break
		}
	}
	c.SetReadDeadline(time.Time{})
	if bytes.HasPrefix(buf, []byte(lightproto.Magic)) {
		rest := buf[len(lightproto.Magic):]
		s.light(c, bufio.NewReader(io.MultiReader(bytes.NewReader(rest), c)))
		return
	}
	var ne net.Error
	if rerr != nil && !(errors.As(rerr, &ne) && ne.Timeout() && len(buf) == 0) {
		// The client went away (or stopped half-way through Magic).
		c.Close()
		return
	}
	select {
	case s.conns <- acceptResult{c: &replayConn{Conn: c, buf: buf}}:
	case <-s.done:
		c.Close()
	}
}

func (s *sniffListener) Close() error {
	err := net.ErrClosed
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.Listener.Close()
	})
	return err
}

// replayConn reads the sniffed bytes first.
type replayConn struct {
	net.Conn
	buf []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// lightServer runs the light sessions of a Server.
type lightServer struct {
	svc *service

	mu       sync.Mutex
	sessions map[*lightAttach]struct{}
	closed   bool
	wg       sync.WaitGroup
}

func newLightServer(svc *service) *lightServer {
	return &lightServer{svc: svc, sessions: map[*lightAttach]struct{}{}}
}

// serve runs one light connection: the hello, then the Attach of its create.
func (ls *lightServer) serve(conn net.Conn, br *bufio.Reader) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	hello, err := lightproto.ReadHello(br)
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		lightproto.WriteJSON(conn, lightproto.FrameError, lightproto.Error{Message: err.Error(), Kind: errdefs.ErrInvalidArgument.Error()})
		return
	}
	if len(hello.Argv) > 0 {
		// The front's command line: parsed here as the full client would, with the
		// client's environment; what this does not serve goes back to the full client.
		plan, ok := runopts.PlanRun(hello.Argv, envLookup(hello.Env))
		if !ok {
			lightproto.WriteFrame(conn, lightproto.FrameHandover, nil)
			return
		}
		if lightproto.WriteJSON(conn, lightproto.FramePlan, lightproto.Plan{SigProxy: plan.SigProxy, Detach: plan.Detach, Fallback: plan.Fallback}) != nil {
			return
		}
		hello = lightproto.Hello{Create: plan.Create, SigProxy: plan.SigProxy, Detach: plan.Detach}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &lightAttach{ctx: ctx, cancel: cancel, conn: conn,
		first: &apiv1.StreamIn{Msg: &apiv1.StreamIn_Attach{Attach: &apiv1.AttachRequest{Start: true, CreateJson: hello.Create}}}}
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		return
	}
	ls.sessions[a] = struct{}{}
	ls.wg.Add(1)
	ls.mu.Unlock()
	defer func() {
		ls.mu.Lock()
		delete(ls.sessions, a)
		ls.mu.Unlock()
		ls.wg.Done()
	}()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		ls.readClient(a, br, hello.SigProxy && !hello.Detach)
	}()
	if hello.Detach {
		ls.createStart(a, hello.Create)
		return
	}
	if err := ls.svc.Attach(a); err != nil && ctx.Err() == nil {
		a.sendError(err)
	}
	if a.hangup != nil {
		// The front exits once it has read the exit: its end of the connection closes
		// then. A client that stays is not waited for long.
		t := time.NewTimer(hangupWait)
		select {
		case <-readDone:
		case <-t.C:
		}
		t.Stop()
		a.hangup()
	}
}

// envLookup looks a name up in env, a client's environment ("KEY=VALUE" entries; the first
// of a name wins, as in the client's own os.LookupEnv).
func envLookup(env []string) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && k != "" {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// hangupWait bounds the wait for a light client to go once it has its exit.
const hangupWait = 200 * time.Millisecond

// afterHangup: serve calls f once the client has gone (hangupWaiter).
func (a *lightAttach) afterHangup(f func()) { a.hangup = f }

// createStart serves run -d: the gRPC service's Create with start, its answer as Created
// and Exit 0, its error as the Error frame.
func (ls *lightServer) createStart(a *lightAttach, create []byte) {
	resp, err := ls.svc.Create(a.ctx, &apiv1.CreateRequest{ConfigJson: create, Start: true})
	if err != nil {
		if a.ctx.Err() == nil {
			a.sendError(err)
		}
		return
	}
	a.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Created{Created: &apiv1.CreateResponse{Id: resp.Id, Warnings: resp.Warnings}}})
	a.Send(&apiv1.StreamOut{Msg: &apiv1.StreamOut_Exit{Exit: &apiv1.Exit{}}})
}

// readClient reads the client's frames: signals (with sig_proxy) go to the container as the
// Kill call would send them; the end of the connection is the client's cancel.
func (ls *lightServer) readClient(a *lightAttach, br *bufio.Reader, sigProxy bool) {
	defer a.cancel()
	for {
		typ, p, err := lightproto.ReadFrame(br)
		if err != nil {
			return
		}
		if typ != lightproto.FrameSignal || !sigProxy {
			continue
		}
		var sig lightproto.Signal
		if json.Unmarshal(p, &sig) != nil {
			continue
		}
		if id := a.createdID(); id != "" {
			// The full client's proxy ignores the Kill's error too.
			ls.svc.Kill(context.Background(), &apiv1.KillRequest{Id: id, Signal: sig.Name})
		}
	}
}

// shutdown refuses new sessions and waits for the running ones until ctx ends, then
// cancels them (as gRPC's Stop) and waits for them a little more.
func (ls *lightServer) shutdown(ctx context.Context) {
	ls.mu.Lock()
	ls.closed = true
	ls.mu.Unlock()
	done := make(chan struct{})
	go func() { ls.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	ls.mu.Lock()
	for a := range ls.sessions {
		a.cancel()
		a.conn.Close()
	}
	ls.mu.Unlock()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// lightAttach is a light connection as the Attach handler's stream: Recv gives the attach
// request of the hello, then blocks until the client is gone; Send writes frames.
type lightAttach struct {
	ctx    context.Context
	cancel context.CancelFunc
	conn   net.Conn

	recvMu sync.Mutex
	first  *apiv1.StreamIn

	mu      sync.Mutex // serialises writes
	created string

	hangup func() // set by Attach (afterHangup), called by serve once the client went
}

var _ apiv1.Containers_AttachServer = (*lightAttach)(nil)

func (a *lightAttach) Context() context.Context { return a.ctx }

func (a *lightAttach) Recv() (*apiv1.StreamIn, error) {
	a.recvMu.Lock()
	m := a.first
	a.first = nil
	a.recvMu.Unlock()
	if m != nil {
		return m, nil
	}
	// A light client sends no input: the stream ends when the client goes, as a
	// cancelled gRPC stream's Recv.
	<-a.ctx.Done()
	return nil, status.Error(codes.Canceled, context.Canceled.Error())
}

func (a *lightAttach) Send(m *apiv1.StreamOut) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.ctx.Err(); err != nil {
		return status.Error(codes.Canceled, err.Error())
	}
	var err error
	switch x := m.Msg.(type) {
	case *apiv1.StreamOut_Created:
		a.created = x.Created.Id
		err = lightproto.WriteJSON(a.conn, lightproto.FrameCreated, lightproto.Created{ID: x.Created.Id, Warnings: x.Created.Warnings})
	case *apiv1.StreamOut_Ready:
		err = lightproto.WriteFrame(a.conn, lightproto.FrameReady, nil)
	case *apiv1.StreamOut_Stdout:
		err = lightproto.WriteFrame(a.conn, lightproto.FrameStdout, x.Stdout)
	case *apiv1.StreamOut_Stderr:
		err = lightproto.WriteFrame(a.conn, lightproto.FrameStderr, x.Stderr)
	case *apiv1.StreamOut_Exit:
		err = lightproto.WriteJSON(a.conn, lightproto.FrameExit, lightproto.Exit{Code: int(x.Exit.Code), Error: x.Exit.Error})
	default:
		return status.Errorf(codes.Internal, "light protocol: no frame for %T", m.Msg)
	}
	if err != nil {
		a.cancel()
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// sendError sends an error Attach returned, with the message and category the gRPC status
// would carry.
func (a *lightAttach) sendError(err error) {
	g := grpcerr.ToGRPC(err)
	msg := g.Error()
	if s, ok := status.FromError(g); ok {
		msg = s.Message()
	}
	kind := grpcerr.Kind(g)
	if kind == nil {
		kind = errdefs.ErrUnknown
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lightproto.WriteJSON(a.conn, lightproto.FrameError, lightproto.Error{Message: msg, Kind: kind.Error()})
}

func (a *lightAttach) createdID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.created
}

// The rest of grpc.ServerStream: no headers or trailers in the light protocol.

func (a *lightAttach) SetHeader(metadata.MD) error  { return nil }
func (a *lightAttach) SendHeader(metadata.MD) error { return nil }
func (a *lightAttach) SetTrailer(metadata.MD)       {}

func (a *lightAttach) SendMsg(m any) error {
	out, ok := m.(*apiv1.StreamOut)
	if !ok {
		return fmt.Errorf("light protocol: cannot send %T", m)
	}
	return a.Send(out)
}

func (a *lightAttach) RecvMsg(m any) error {
	in, ok := m.(*apiv1.StreamIn)
	if !ok {
		return fmt.Errorf("light protocol: cannot receive into %T", m)
	}
	got, err := a.Recv()
	if err != nil {
		return err
	}
	in.Msg = got.Msg
	return nil
}
