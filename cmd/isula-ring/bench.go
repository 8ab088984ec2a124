package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/isulad-go/isulad/pkg/shmring"
	"golang.org/x/sys/unix"
)

// The benchmark has two halves. "bench serve --dir DIR" runs on one side of
// a channel (in the container) and answers; "bench run --dir DIR" runs on
// the other side (the host) and measures. They meet in DIR: a unix socket
// DIR/bench.sock carries session commands (and is itself the unix-socket
// contender), and each shmring session uses DIR/ping.ring (client ->
// server) and DIR/pong.ring (server -> client), made by the client.

const ringCap = 4 << 20

func cmdBench(args []string) error {
	if len(args) == 0 {
		return errors.New("bench: want serve or run")
	}
	fs := flag.NewFlagSet("bench "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "directory shared by both sides (a host channel)")
	switch args[0] {
	case "serve":
		if _, err := parse(fs, args[1:], 0, ""); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("bench serve: --dir is required")
		}
		return benchServe(*dir)
	case "run":
		count := fs.Int("count", 20000, "round trips per latency measurement")
		spin := fs.Duration("spin", 100*time.Microsecond, "spin budget for spin mode")
		mib := fs.Int("mib", 1024, "MiB moved per throughput measurement")
		place := fs.String("placement", "", "CPU placement label printed with the results")
		csv := fs.Bool("csv", false, "also print one machine-readable line per measurement")
		if _, err := parse(fs, args[1:], 0, ""); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("bench run: --dir is required")
		}
		return benchRun(*dir, *count, *spin, *mib, *place, *csv)
	}
	return fmt.Errorf("bench: unknown mode %q (want serve or run)", args[0])
}

// ---- server ----

// bfd is a unix stream socket used with plain blocking read(2)/write(2), as
// a C program would use it: this keeps Go's netpoller (an extra wake-up per
// message) out of the socket's numbers.
type bfd int

func (f bfd) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), b)
		if err == unix.EINTR {
			continue
		}
		if n == 0 && err == nil && len(b) > 0 {
			return 0, io.EOF
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

func (f bfd) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Write(int(f), b[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

func (f bfd) Close() error { return unix.Close(int(f)) }

func benchServe(dir string) error {
	sock := filepath.Join(dir, "bench.sock")
	os.Remove(sock)
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: sock}); err != nil {
		return fmt.Errorf("bind %s: %w", sock, err)
	}
	os.Chmod(sock, 0o666)
	if err := unix.Listen(l, 8); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench serve: listening on %s (GOMAXPROCS=%d)\n", sock, runtime.GOMAXPROCS(0))
	for {
		fd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if err := serveOne(dir, bfd(fd)); err != nil {
			fmt.Fprintln(os.Stderr, "bench serve:", err)
		}
		bfd(fd).Close()
	}
}

func serveOne(dir string, conn bfd) error {
	br := bufio.NewReaderSize(conn, 256<<10)
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return errors.New("empty command")
	}
	switch f[0] {
	case "quit":
		os.Exit(0)
	case "unix-echo":
		buf := make([]byte, 64<<10+4)
		for {
			if _, err := io.ReadFull(br, buf[:4]); err != nil {
				return nil
			}
			n := binary.LittleEndian.Uint32(buf)
			if int(n) > len(buf)-4 {
				return errors.New("frame too large")
			}
			if _, err := io.ReadFull(br, buf[4:4+n]); err != nil {
				return err
			}
			if _, err := conn.Write(buf[:4+n]); err != nil {
				return err
			}
		}
	case "unix-sink":
		total, _ := strconv.ParseInt(f[1], 10, 64)
		buf := make([]byte, 64<<10)
		var hdr [4]byte
		for got := int64(0); got < total; {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return err
			}
			n := binary.LittleEndian.Uint32(hdr[:])
			if int(n) > len(buf) {
				return errors.New("frame too large")
			}
			if _, err := io.ReadFull(br, buf[:n]); err != nil {
				return err
			}
			got += int64(n)
		}
		_, err := conn.Write([]byte{1})
		return err
	case "ring-echo", "ring-sink":
		spin, _ := time.ParseDuration(f[1])
		o := &shmring.Options{Role: shmring.Consumer, Spin: spin}
		in, err := shmring.Open(filepath.Join(dir, "ping.ring"), o)
		if err != nil {
			return err
		}
		defer in.Close()
		o.Role = shmring.Producer
		out, err := shmring.Open(filepath.Join(dir, "pong.ring"), o)
		if err != nil {
			return err
		}
		defer out.Close()
		conn.Write([]byte("ready\n"))
		if f[0] == "ring-echo" {
			return echoLoop(in, out)
		}
		total, _ := strconv.ParseInt(f[2], 10, 64)
		buf := make([]byte, 64<<10)
		for got := int64(0); got < total; {
			n, err := in.Recv(buf)
			if err != nil {
				return err
			}
			got += int64(n)
		}
		return out.Send([]byte{1})
	}
	return fmt.Errorf("unknown command %q", f[0])
}

// ---- client ----

type result struct {
	name     string
	p50, p99 time.Duration
	mibps    float64
}

func benchRun(dir string, count int, spin time.Duration, mib int, placement string, csv bool) error {
	cpu := "?"
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		var cpus []string
		for i := 0; i < 1024; i++ {
			if set.IsSet(i) {
				cpus = append(cpus, strconv.Itoa(i))
			}
		}
		cpu = strings.Join(cpus, ",")
	}
	fmt.Printf("# shmring vs unix socket in %s; client CPUs %s; placement: %s; GOMAXPROCS=%d\n",
		dir, cpu, placement, runtime.GOMAXPROCS(0))
	var res []result
	add := func(r result, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		res = append(res, r)
		return nil
	}
	if err := add(unixEcho(dir, count)); err != nil {
		return err
	}
	if err := add(ringEcho(dir, count, 0, "shmring sleep")); err != nil {
		return err
	}
	if err := add(ringEcho(dir, count, spin, "shmring spin "+spin.String())); err != nil {
		return err
	}
	total := int64(mib) << 20
	if err := add(unixSink(dir, total)); err != nil {
		return err
	}
	if err := add(ringSink(dir, total, 0, "shmring sleep")); err != nil {
		return err
	}
	if err := add(ringSink(dir, total, spin, "shmring spin "+spin.String())); err != nil {
		return err
	}
	fmt.Printf("%-34s %12s %12s %12s\n", "measurement", "p50", "p99", "MiB/s")
	for _, r := range res {
		if r.mibps > 0 {
			fmt.Printf("%-34s %12s %12s %12.0f\n", r.name, "-", "-", r.mibps)
		} else {
			fmt.Printf("%-34s %12s %12s %12s\n", r.name, fmtDur(r.p50), fmtDur(r.p99), "-")
		}
	}
	if csv {
		for _, r := range res {
			fmt.Printf("csv;%s;%s;%.2f;%.2f;%.0f\n", placement, r.name,
				float64(r.p50)/float64(time.Microsecond), float64(r.p99)/float64(time.Microsecond), r.mibps)
		}
	}
	u, s, sp := res[0], res[1], res[2]
	fmt.Printf("ratio unix/spin p50 = %.1fx (target >= 10x); unix/sleep p50 = %.2fx (target >= 1x)\n",
		float64(u.p50)/float64(sp.p50), float64(u.p50)/float64(s.p50))
	fmt.Printf("ratio 64KiB throughput shmring/unix = %.2fx sleep, %.2fx spin (target >= 3x)\n",
		res[4].mibps/res[3].mibps, res[5].mibps/res[3].mibps)
	return nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fus", float64(d)/float64(time.Microsecond))
}

func percentiles(name string, lat []time.Duration) result {
	slices.Sort(lat)
	return result{name: name, p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}

func dial(dir, cmd string) (bfd, *bufio.Reader, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	c := bfd(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "bench.sock")}); err != nil {
		c.Close()
		return -1, nil, err
	}
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		c.Close()
		return -1, nil, err
	}
	return c, bufio.NewReaderSize(c, 256<<10), nil
}

func unixEcho(dir string, count int) (result, error) {
	name := "64B round trip, unix socket"
	c, br, err := dial(dir, "unix-echo")
	if err != nil {
		return result{name: name}, err
	}
	defer c.Close()
	msg := make([]byte, 68)
	binary.LittleEndian.PutUint32(msg, 64)
	in := make([]byte, 68)
	lat := make([]time.Duration, 0, count)
	for i := -count / 10; i < count; i++ {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return result{name: name}, err
		}
		if _, err := io.ReadFull(br, in); err != nil {
			return result{name: name}, err
		}
		if i >= 0 {
			lat = append(lat, time.Since(t0))
		}
	}
	return percentiles(name, lat), nil
}

// ringSession creates fresh rings and asks the server to attach.
func ringSession(dir, cmd string, spin time.Duration) (ping, pong *shmring.Ring, conn bfd, err error) {
	pp, qp := filepath.Join(dir, "ping.ring"), filepath.Join(dir, "pong.ring")
	os.Remove(pp)
	os.Remove(qp)
	ping, err = shmring.Create(pp, ringCap, &shmring.Options{Role: shmring.Producer, Spin: spin, Mode: 0o666})
	if err != nil {
		return
	}
	pong, err = shmring.Create(qp, ringCap, &shmring.Options{Role: shmring.Consumer, Spin: spin, Mode: 0o666})
	if err != nil {
		ping.Close()
		return
	}
	var br *bufio.Reader
	conn, br, err = dial(dir, cmd)
	if err == nil {
		_, err = br.ReadString('\n') // "ready": both ends attached
	}
	if err != nil {
		ping.Close()
		pong.Close()
	}
	return
}

func ringEcho(dir string, count int, spin time.Duration, label string) (result, error) {
	name := "64B round trip, " + label
	ping, pong, conn, err := ringSession(dir, "ring-echo "+spin.String(), spin)
	if err != nil {
		return result{name: name}, err
	}
	defer conn.Close()
	defer pong.Close()
	defer ping.Close()
	msg := make([]byte, 64)
	in := make([]byte, 64)
	lat := make([]time.Duration, 0, count)
	for i := -count / 10; i < count; i++ {
		t0 := time.Now()
		if err := ping.Send(msg); err != nil {
			return result{name: name}, err
		}
		if _, err := pong.Recv(in); err != nil {
			return result{name: name}, err
		}
		if i >= 0 {
			lat = append(lat, time.Since(t0))
		}
	}
	return percentiles(name, lat), nil
}

func unixSink(dir string, total int64) (result, error) {
	name := "64KiB throughput, unix socket"
	c, br, err := dial(dir, "unix-sink "+strconv.FormatInt(total, 10))
	if err != nil {
		return result{name: name}, err
	}
	defer c.Close()
	src := make([]byte, 64<<10)
	frame := make([]byte, 64<<10+4)
	t0 := time.Now()
	for sent := int64(0); sent < total; sent += int64(len(src)) {
		binary.LittleEndian.PutUint32(frame, uint32(len(src)))
		copy(frame[4:], src)
		if _, err := c.Write(frame); err != nil {
			return result{name: name}, err
		}
	}
	if _, err := br.ReadByte(); err != nil {
		return result{name: name}, err
	}
	return result{name: name, mibps: float64(total) / (1 << 20) / time.Since(t0).Seconds()}, nil
}

func ringSink(dir string, total int64, spin time.Duration, label string) (result, error) {
	name := "64KiB throughput, " + label
	ping, pong, conn, err := ringSession(dir, "ring-sink "+spin.String()+" "+strconv.FormatInt(total, 10), spin)
	if err != nil {
		return result{name: name}, err
	}
	defer conn.Close()
	defer pong.Close()
	defer ping.Close()
	src := make([]byte, 64<<10)
	t0 := time.Now()
	for sent := int64(0); sent < total; sent += int64(len(src)) {
		if err := ping.Send(src); err != nil {
			return result{name: name}, err
		}
	}
	if _, err := pong.Recv(make([]byte, 8)); err != nil {
		return result{name: name}, err
	}
	return result{name: name, mibps: float64(total) / (1 << 20) / time.Since(t0).Seconds()}, nil
}
