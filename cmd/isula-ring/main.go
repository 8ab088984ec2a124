// Command isula-ring sends and receives messages over a shmring ring file,
// typically in a host channel shared by a host process and a container.
// It is a static binary (build with CGO_ENABLED=0) that can be copied into
// a container's rootfs.
//
//	isula-ring create RING --size 1M [--mode 0660]
//	isula-ring send RING [--size N] [--stream] [--spin D]   < input
//	isula-ring recv RING [--raw] [--count N] [--wait D] [--spin D]
//	isula-ring echo IN OUT [--spin D]
//	isula-ring bench serve --dir DIR
//	isula-ring bench run --dir DIR [--count N] [--spin D] [--mib N]
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/isulad-go/isulad/pkg/shmring"
)

const usage = `usage: isula-ring COMMAND [options]

commands:
  create RING --size N      make a ring with an N-byte data area (power of two, e.g. 1M)
  send RING                 send stdin to RING: one message per line (--stream: raw chunks)
  recv RING                 print messages from RING, one per line (--raw: no newline added)
  echo IN OUT               forward every message from ring IN to ring OUT
  bench serve --dir DIR     benchmark responder (run on the other side of a channel)
  bench run --dir DIR       benchmark client: shmring vs unix socket in DIR

Run "isula-ring COMMAND -h" for a command's options.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "create":
		err = cmdCreate(args)
	case "send":
		err = cmdSend(args)
	case "recv":
		err = cmdRecv(args)
	case "echo":
		err = cmdEcho(args)
	case "bench":
		err = cmdBench(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "isula-ring: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "isula-ring:", err)
		os.Exit(1)
	}
}

// parseSize reads 4096, 64K, 1M, 2G (binary units).
func parseSize(s string) (int, error) {
	u := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "IB"), "B"))
	mul := 1
	switch {
	case strings.HasSuffix(u, "K"):
		mul = 1 << 10
	case strings.HasSuffix(u, "M"):
		mul = 1 << 20
	case strings.HasSuffix(u, "G"):
		mul = 1 << 30
	}
	if mul != 1 {
		u = u[:len(u)-1]
	}
	n, err := strconv.Atoi(u)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 4096, 64K, 1M)", s)
	}
	return n * mul, nil
}

// parse parses flags that may come before or after the positional
// arguments, and checks the positional count.
func parse(fs *flag.FlagSet, args []string, npos int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != npos {
		return nil, fmt.Errorf("%s: want %d argument(s), got %d (see -h)", fs.Name(), npos, len(pos))
	}
	return pos, nil
}

type common struct {
	spin    time.Duration
	size    string
	mode    uint
	wait    time.Duration
	timeout time.Duration
}

func (c *common) register(fs *flag.FlagSet, withSize bool) {
	fs.DurationVar(&c.spin, "spin", 0, "busy-poll this long before sleeping (0: always sleep, -1ns: never sleep)")
	fs.DurationVar(&c.timeout, "peer-timeout", shmring.DefaultPeerTimeout, "peer counts as dead after its heartbeat stops this long (negative: never)")
	fs.DurationVar(&c.wait, "wait", 0, "wait up to this long for RING to appear")
	if withSize {
		fs.StringVar(&c.size, "size", "", "create RING with this capacity if it does not exist (power of two, e.g. 1M)")
		fs.UintVar(&c.mode, "mode", 0o600, "permissions of a ring made here")
	}
}

func (c *common) opts(role shmring.Role) *shmring.Options {
	spin := c.spin
	if spin < 0 {
		spin = shmring.SpinForever
	}
	return &shmring.Options{Role: role, Spin: spin, PeerTimeout: c.timeout, Mode: fs.FileMode(c.mode)}
}

// attach opens RING (waiting for it, or creating it if --size is given).
func (c *common) attach(path string, role shmring.Role) (*shmring.Ring, error) {
	deadline := time.Now().Add(c.wait)
	for {
		r, err := shmring.Open(path, c.opts(role))
		if err == nil {
			return r, nil
		}
		if errors.Is(err, fs.ErrNotExist) && c.size != "" {
			n, perr := parseSize(c.size)
			if perr != nil {
				return nil, perr
			}
			r, err = shmring.Create(path, n, c.opts(role))
			if err == nil || !errors.Is(err, fs.ErrExist) {
				return r, err
			}
			continue // lost a race with another creator: open theirs
		}
		if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, shmring.ErrCorrupt)) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return nil, err
	}
}

func cmdCreate(args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	var c common
	c.register(fs, true)
	pos, err := parse(fs, args, 1, "RING")
	if err != nil {
		return err
	}
	if c.size == "" {
		return errors.New("create: --size is required")
	}
	n, err := parseSize(c.size)
	if err != nil {
		return err
	}
	r, err := shmring.Create(pos[0], n, c.opts(shmring.NoRole))
	if err != nil {
		return err
	}
	return r.Close()
}

func cmdSend(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	var c common
	c.register(fs, true)
	stream := fs.Bool("stream", false, "send stdin as raw chunks (up to 64 KiB each) instead of one message per line")
	pos, err := parse(fs, args, 1, "RING")
	if err != nil {
		return err
	}
	r, err := c.attach(pos[0], shmring.Producer)
	if err != nil {
		return err
	}
	defer r.Close()
	if *stream {
		buf := make([]byte, min(64<<10, r.MaxMessageSize()))
		for {
			n, rerr := os.Stdin.Read(buf)
			if n > 0 {
				if err := r.Send(buf[:n]); err != nil {
					return err
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return rerr
			}
		}
	} else {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 64<<10), r.MaxMessageSize())
		for sc.Scan() {
			if err := r.Send(sc.Bytes()); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
	}
	return r.Close()
}

// recvGrow receives into *buf, growing it when a message does not fit.
func recvGrow(r *shmring.Ring, buf *[]byte) (int, error) {
	for {
		n, err := r.Recv(*buf)
		var sb *shmring.ShortBufferError
		if errors.As(err, &sb) {
			*buf = make([]byte, sb.Len)
			continue
		}
		return n, err
	}
}

func cmdRecv(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	var c common
	c.register(fs, true)
	raw := fs.Bool("raw", false, "write messages as they are, without a newline after each")
	count := fs.Int("count", 0, "exit after this many messages (0: until the sender closes)")
	pos, err := parse(fs, args, 1, "RING")
	if err != nil {
		return err
	}
	r, err := c.attach(pos[0], shmring.Consumer)
	if err != nil {
		return err
	}
	defer r.Close()
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	buf := make([]byte, 64<<10)
	for i := 0; *count == 0 || i < *count; i++ {
		n, err := r.TryRecv(buf)
		if errors.Is(err, shmring.ErrWouldBlock) {
			// Nothing queued: flush what we have before blocking.
			if err := out.Flush(); err != nil {
				return err
			}
			n, err = recvGrow(r, &buf)
		} else if err != nil && !errors.Is(err, io.EOF) {
			var sb *shmring.ShortBufferError
			if errors.As(err, &sb) {
				n, err = recvGrow(r, &buf)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		out.Write(buf[:n])
		if !*raw {
			out.WriteByte('\n')
		}
	}
	return nil
}

func cmdEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	var c common
	c.register(fs, false)
	pos, err := parse(fs, args, 2, "IN OUT")
	if err != nil {
		return err
	}
	in, err := c.attach(pos[0], shmring.Consumer)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.attach(pos[1], shmring.Producer)
	if err != nil {
		return err
	}
	defer out.Close()
	return echoLoop(in, out)
}

func echoLoop(in, out *shmring.Ring) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := recvGrow(in, &buf)
		if err == io.EOF {
			return out.Close()
		}
		if err != nil {
			return err
		}
		if err := out.Send(buf[:n]); err != nil {
			return err
		}
	}
}
