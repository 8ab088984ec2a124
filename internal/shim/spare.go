package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/procwait"
)

// A spare shim is an isulad-shim started ahead of need (--spare): it has paid its fork,
// exec and Go start, and waits on fd 3, one end of a socket pair whose other end the
// daemon holds, for the Config of the container it is to serve. It then goes on exactly
// as a shim launched for that container (Launch). Fd 3 reaching EOF before a Config (the
// daemon closed it, or died: the kernel closes it then) makes the spare exit, so a spare
// never outlives its daemon and leaves nothing behind: it has no socket, no state
// directory and no child until it is adopted.

// Spares launches shims, handing each a spare started ahead when there is one, and
// starts the next spare in the background. It keeps two: an isulad-shim, and for detached
// starts (Config.Detached) an isulad-shim-lite when that program is beside the shim
// (cmd/isulad-shim-lite: the C start of a shim, which execs the Go shim at the first thing
// it does not serve). The zero value is not usable: NewSpares.
type Spares struct {
	bin string

	mu     sync.Mutex
	pools  [2]pool // goPool, litePool
	closed bool
}

const (
	goPool = iota
	litePool
)

// pool is the spare of one program.
type pool struct {
	bin     string // "": none (no light shim installed)
	spare   *spare
	filling bool
	filled  chan struct{} // closed when the fill under way ends
}

type spare struct {
	cmd    *exec.Cmd
	conn   *os.File // the daemon's end of the socket pair
	exited chan struct{}
}

// LiteShim is the light shim's file name, beside the shim's.
const LiteShim = "isulad-shim-lite"

// NewSpares returns a launcher of shimBinary (and of the light shim beside it, if it is
// there). No spare runs until the first Launch.
func NewSpares(shimBinary string) *Spares {
	s := &Spares{bin: shimBinary}
	s.pools[goPool].bin = shimBinary
	lite := filepath.Join(filepath.Dir(shimBinary), LiteShim)
	if fi, err := os.Stat(lite); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		s.pools[litePool].bin = lite
	}
	return s
}

// Launch starts a shim for cfg (as the package's Launch does), through a spare if one is
// ready: the light one for a detached start. The next spare is started by Refill, which the
// caller calls once the container's start is done: a spare's fork, exec and start would
// otherwise compete with that start.
func (s *Spares) Launch(ctx context.Context, cfg Config) (*Client, error) {
	k := goPool
	if cfg.Detached && s.pools[litePool].bin != "" {
		k = litePool
	}
	s.mu.Lock()
	p := &s.pools[k]
	if p.spare == nil && p.filling {
		// A spare on its way is nearer than a new shim: its fork and exec are under way.
		filled := p.filled
		s.mu.Unlock()
		select {
		case <-filled:
		case <-ctx.Done():
		}
		s.mu.Lock()
	}
	sp := p.spare
	p.spare = nil
	s.mu.Unlock()
	if sp == nil && k == litePool {
		// No light spare (a burst of starts takes them faster than they come): a new one,
		// adopted at once. Its fork and exec are a C program's, not a Go shim's start.
		sp, _ = startSpare(p.bin)
	}
	if sp != nil {
		c, err := sp.adopt(ctx, cfg)
		if !errors.Is(err, errSpareGone) {
			return c, err
		}
	}
	return Launch(ctx, s.bin, cfg)
}

// Close ends the spares (they exit at the EOF); Launch then starts no more.
func (s *Spares) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for k := range s.pools {
		if p := &s.pools[k]; p.spare != nil {
			p.spare.conn.Close()
			p.spare = nil
		}
	}
}

// Refill starts, in the background, each spare that is neither there nor on its way.
func (s *Spares) Refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.pools {
		s.refill(k)
	}
}

func (s *Spares) refill(k int) {
	p := &s.pools[k]
	if p.bin == "" || p.spare != nil || p.filling || s.closed {
		return
	}
	p.filling = true
	filled := make(chan struct{})
	p.filled = filled
	go func() {
		sp, err := startSpare(p.bin)
		s.mu.Lock()
		defer s.mu.Unlock()
		defer close(filled)
		p.filling = false
		if err != nil {
			return // the next Launch launches as without spares, and tries again
		}
		if s.closed || p.spare != nil {
			sp.conn.Close()
			return
		}
		p.spare = sp
		go func() {
			<-sp.exited
			s.mu.Lock()
			if p.spare == sp {
				p.spare = nil
			}
			s.mu.Unlock()
		}()
	}()
}

func startSpare(bin string) (*spare, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// The daemon's end non-blocking (through Go's poller): it becomes the connection of the
	// adopted shim's start, which a context's end must be able to close under a read.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "spare"), os.NewFile(uintptr(fds[1]), "spare")
	defer theirs.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		mine.Close()
		return nil, err
	}
	defer devnull.Close()
	cmd := exec.Command(bin, "--spare")
	cmd.Dir = "/"
	cmd.Env = shimEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		mine.Close()
		return nil, fmt.Errorf("start spare shim: %w", err)
	}
	sp := &spare{cmd: cmd, conn: mine, exited: make(chan struct{})}
	go func() { procwait.Wait(cmd); close(sp.exited) }() // no thread held while it runs
	return sp, nil
}

// errSpareGone: the spare exited without taking the Config; nothing was started.
var errSpareGone = errors.New("spare shim gone")

// adopt hands cfg to the spare and returns once it listens for the container. The socket
// pair stays open: the client's start goes on it (Client.first).
func (sp *spare) adopt(ctx context.Context, cfg Config) (*Client, error) {
	if err := prepareLaunch(cfg); err != nil {
		sp.conn.Close()
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		sp.conn.Close()
		return nil, err
	}
	if _, err := sp.conn.Write(append(b, '\n')); err != nil {
		sp.conn.Close()
		return nil, errSpareGone
	}
	br := bufio.NewReaderSize(sp.conn, 32<<10)
	rc := make(chan ready, 1)
	go func() {
		// "ok" and the line's end, or the spare's error up to its exit.
		line, err := br.ReadString('\n')
		if err == nil && line == "ok\n" {
			rc <- ready{"ok", nil}
			return
		}
		rest, err := io.ReadAll(io.LimitReader(br, 64<<10))
		rc <- ready{strings.TrimSpace(line + string(rest)), err}
	}()
	select {
	case r := <-rc:
		if r.err == nil && r.msg == "ok" {
			c := &Client{socket: cfg.Socket}
			c.first = &conn{c: c, nc: sp.conn, br: br}
			return c, nil
		}
		sp.conn.Close()
		if r.msg == "" {
			// No answer: the spare died. Whether it took the Config or not, it is gone,
			// and a shim that is gone listens on nothing.
			<-sp.exited
			return nil, errSpareGone
		}
		sp.cmd.Process.Kill()
		return nil, fmt.Errorf("shim: %s", r.msg)
	case <-ctx.Done():
		sp.cmd.Process.Kill()
		sp.conn.Close()
		return nil, ctx.Err()
	}
}

// awaitAdoption is the spare's side: the Config read from fd 3, with the shim's stderr
// moved to the container's shim.log as Launch would have set it, and the reader it was
// read with (the daemon's first request follows on fd 3). (nil, nil, nil) at EOF: the
// daemon let the spare go.
func awaitAdoption(f *os.File) (*Config, *bufio.Reader, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	line, err := br.ReadBytes('\n')
	if len(line) == 0 && (err == nil || errors.Is(err, io.EOF)) {
		return nil, nil, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	var cfg Config
	if err := json.Unmarshal(line, &cfg); err != nil {
		return nil, nil, fmt.Errorf("spare: bad config: %v", err)
	}
	if cfg.StateDir != "" {
		if lf, err := os.OpenFile(filepath.Join(cfg.StateDir, ShimLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			unix.Dup3(int(lf.Fd()), 2, 0)
			lf.Close()
		}
	}
	return &cfg, br, nil
}
