package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// DefaultStreamAddress is where the streaming server listens unless daemon.json says
// otherwise: the node itself, as the kubelet proxies streams by default.
const DefaultStreamAddress = "127.0.0.1"

// streamServer serves exec, attach and port-forward over SPDY and WebSocket, as the stock
// kubelet and crictl speak them (k8s.io/cri-streaming, which containerd and cri-o use).
type streamServer struct {
	lis    net.Listener
	server streaming.Server
}

// newStreamServer listens at once, so a port in use is an error at the daemon's start and the
// URLs handed out name the real port (port 0 picks one).
func newStreamServer(s *Service, addr, port string) (*streamServer, error) {
	if addr == "" {
		addr = DefaultStreamAddress
	}
	if port == "" {
		port = "0"
	}
	if net.ParseIP(addr) == nil {
		return nil, invalidf("stream-server-address %q: want an IP address", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, invalidf("stream-server-port %q: want a port number (0: any free port)", port)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(addr, port))
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = lis.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: cfg.Addr}
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		lis.Close()
		return nil, err
	}
	return &streamServer{lis: lis, server: srv}, nil
}

func (ss *streamServer) addr() string { return ss.lis.Addr().String() }

// serve answers stream requests until ctx ends.
func (ss *streamServer) serve(ctx context.Context) error {
	hs := &http.Server{Handler: ss.server, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	err := hs.Serve(ss.lis)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// close stops listening (for a service that never served).
func (ss *streamServer) close() { ss.lis.Close() }

// streamRuntime runs what the streaming server's requests ask for.
type streamRuntime struct{ s *Service }

func resizes(in <-chan remotecommandserver.TerminalSize) <-chan [2]uint16 {
	if in == nil {
		return nil
	}
	out := make(chan [2]uint16)
	go func() {
		defer close(out)
		for sz := range in {
			out <- [2]uint16{sz.Width, sz.Height}
		}
	}()
	return out
}

// firstResizeWait bounds the wait for a terminal's first size.
const firstResizeWait = 500 * time.Millisecond

// exitError reports a process's exit code the way the streaming server passes it on.
func exitError(code int) error {
	if code == 0 {
		return nil
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("command exited with %d", code), Code: code}
}

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	p := ExecProcess{Args: cmd, Tty: tty}
	if tty && resize != nil {
		// Clients send the terminal's size first thing; the process should start with it (a
		// command that asks at once, like stty size, would see 0x0). A client that sends none
		// delays the start by at most firstResizeWait.
		select {
		case sz, ok := <-resize:
			if ok {
				p.Size = [2]uint16{sz.Width, sz.Height}
			}
		case <-time.After(firstResizeWait):
		case <-ctx.Done():
		}
	}
	p.Streams = Streams{Stdin: in, Resize: resizes(resize)}
	if out != nil {
		p.Streams.Stdout = out
	}
	if errw != nil {
		p.Streams.Stderr = errw
	}
	code, err := r.s.engine.Exec(ctx, id, p)
	if err != nil {
		return err
	}
	return exitError(code)
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	st := Streams{Stdin: in, Resize: resizes(resize)}
	if out != nil {
		st.Stdout = out
	}
	if errw != nil {
		st.Stderr = errw
	}
	return r.s.engine.Attach(ctx, id, st)
}

// PortForward connects the stream to 127.0.0.1:port in the pod's network namespace.
func (r streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := r.s.pods.get(podID)
	if err != nil {
		return err
	}
	if port <= 0 || port > 65535 {
		return invalidf("port-forward: port %d: want 1-65535", port)
	}
	conn, err := dialInNetns(ctx, sb.Namespaces[nsNet], net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("port-forward to port %d of pod %s: %w", port, sb.fullName(), err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// dialInNetns dials addr from the network namespace pinned at netns ("" is the host's). The
// socket is made on a thread moved into the namespace, a thread then thrown away.
func dialInNetns(ctx context.Context, netns, addr string) (net.Conn, error) {
	var d net.Dialer
	if netns == "" {
		return d.DialContext(ctx, "tcp", addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{err: fmt.Errorf("entering the pod's network namespace: %w", err)}
			return
		}
		c, err := d.DialContext(ctx, "tcp4", addr)
		ch <- result{c, err}
	}()
	res := <-ch
	return res.c, res.err
}

// Exec, Attach and PortForward hand out a URL of the streaming server.

func (s *Service) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.runningContainer(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	r.ContainerId = c.ID
	resp, err := s.stream.server.GetExec(r)
	return resp, gerr(err)
}

func (s *Service) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.runningContainer(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	r.ContainerId = c.ID
	resp, err := s.stream.server.GetAttach(r)
	return resp, gerr(err)
}

func (s *Service) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.pods.get(r.PodSandboxId)
	if err != nil {
		return nil, gerr(err)
	}
	if !sb.ready() {
		return nil, gerr(errdefs.Errorf(errdefs.ErrConflict, "pod sandbox %s is not ready", sb.ID))
	}
	r.PodSandboxId = sb.ID
	resp, err := s.stream.server.GetPortForward(r)
	return resp, gerr(err)
}

func (s *Service) runningContainer(id string) (ContainerState, error) {
	c, _, err := s.container(id)
	if err != nil {
		return c, err
	}
	if criState(c.Status) != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return c, errdefs.Errorf(errdefs.ErrConflict, "container %s is not running (%s)", c.ID, c.Status)
	}
	return c, nil
}
