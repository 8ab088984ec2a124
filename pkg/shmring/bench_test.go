package shmring

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// In-process benchmarks (two goroutines). The cross-process, cross-container
// numbers come from bench/shmring/run.sh.

func benchPingPong(b *testing.B, spin time.Duration) {
	dir := b.TempDir()
	o := &Options{Role: Producer, Spin: spin}
	ping, err := Create(filepath.Join(dir, "ping"), 1<<16, o)
	if err != nil {
		b.Fatal(err)
	}
	defer ping.Close()
	o.Role = Consumer
	pong, err := Create(filepath.Join(dir, "pong"), 1<<16, o)
	if err != nil {
		b.Fatal(err)
	}
	defer pong.Close()
	o.Role = Consumer
	in, _ := Open(filepath.Join(dir, "ping"), o)
	defer in.Close()
	o.Role = Producer
	out, _ := Open(filepath.Join(dir, "pong"), o)
	defer out.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := in.Recv(buf)
			if err != nil || out.Send(buf[:n]) != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ping.Send(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := pong.Recv(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoundTrip64Sleep(b *testing.B) { benchPingPong(b, 0) }
func BenchmarkRoundTrip64Spin(b *testing.B)  { benchPingPong(b, 100*time.Microsecond) }

func BenchmarkRoundTrip64UnixSocket(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(msg)
		if _, err := io.ReadFull(c, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func benchThroughput(b *testing.B, size int, spin time.Duration) {
	path := filepath.Join(b.TempDir(), "r")
	p, err := Create(path, 4<<20, &Options{Role: Producer, Spin: spin})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := Open(path, &Options{Role: Consumer, Spin: spin})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, size)
		for {
			if _, err := c.Recv(buf); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	p.Close()
	<-done
}

func BenchmarkThroughput64KSleep(b *testing.B) { benchThroughput(b, 64<<10, 0) }
func BenchmarkThroughput64KSpin(b *testing.B)  { benchThroughput(b, 64<<10, 100*time.Microsecond) }
func BenchmarkThroughput64BSleep(b *testing.B) { benchThroughput(b, 64, 0) }
