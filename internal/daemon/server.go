package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// Server is the daemon with its API listeners.
type Server struct {
	D    *Daemon
	GRPC *grpc.Server
	lis  []net.Listener
	// light serves the light protocol's connections on the same sockets (light.go).
	light *lightServer
	// stopCRI stops the CRI's streaming server (cri.go).
	stopCRI func()
}

// NewServer takes the state directory's lock (one daemon per --state), loads the daemon
// and opens the API sockets (mode 0600, root only).
func NewServer(d *Daemon) (*Server, error) {
	svc := &service{d: d}
	s := &Server{D: d, GRPC: grpc.NewServer(), light: newLightServer(svc)}
	// Keep registration open: the CRI services can be registered on the same server.
	apiv1.RegisterContainersServer(s.GRPC, svc)
	apiv1.RegisterNetworksServer(s.GRPC, &networkService{d: d})
	apiv1.RegisterOpsServer(s.GRPC, &opsService{d: d})
	apiv1.RegisterImagesServer(s.GRPC, &imageService{d: d})
	// Kubernetes' CRI on the same server and socket (cri.go).
	var err error
	if s.stopCRI, err = registerCRI(s); err != nil {
		return nil, err
	}
	for _, h := range d.cfg.Hosts {
		path, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			s.Close()
			return nil, fmt.Errorf("host %q: only unix:// sockets are supported", h)
		}
		l, err := listenUnix(path)
		if err != nil {
			s.Close()
			return nil, err
		}
		// Root only for both protocols: the light one is sniffed after rootOnly's check.
		s.lis = append(s.lis, newSniffListener(l, s.light.serve))
	}
	return s, nil
}

// LockState takes an exclusive lock on the state directory so two daemons never share one.
func LockState(state string) (*os.File, error) {
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(state, "isulad.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another isulad is running with state directory %s", state)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s is in use by another daemon", path)
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return &rootOnly{UnixListener: l.(*net.UnixListener)}, nil
}

// rootOnly refuses connections from any user but root, whatever the socket's mode.
type rootOnly struct{ *net.UnixListener }

func (r *rootOnly) Accept() (net.Conn, error) {
	for {
		c, err := r.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		raw, err := c.SyscallConn()
		if err == nil {
			var cred *unix.Ucred
			raw.Control(func(fd uintptr) {
				cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
			})
			if err == nil && cred.Uid == 0 {
				return c, nil
			}
		}
		c.Close()
	}
}

// Serve serves the API until ctx is done, then stops without touching containers.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, len(s.lis))
	for _, l := range s.lis {
		go func(l net.Listener) { errc <- s.GRPC.Serve(l) }(l)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.Close()
			return err
		}
	}
	s.Close()
	return nil
}

// Close stops the API; running containers keep running under their shims.
func (s *Server) Close() {
	s.D.EndStreams()
	done := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(done) }()
	grace, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	lightDone := make(chan struct{})
	go func() { s.light.shutdown(grace); close(lightDone) }()
	select {
	case <-done:
	case <-grace.Done():
		s.GRPC.Stop()
	}
	<-lightDone
	cancel()
	for _, l := range s.lis {
		l.Close()
	}
	if s.stopCRI != nil {
		s.stopCRI()
	}
	s.D.Close()
}
