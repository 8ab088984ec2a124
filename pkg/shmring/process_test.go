package shmring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The test binary re-executes itself as a helper process (producer) when
// SHMRING_HELPER is set.
func TestMain(m *testing.M) {
	if mode := os.Getenv("SHMRING_HELPER"); mode != "" {
		if err := helper(mode, os.Getenv("SHMRING_RING")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// xorshift fills b deterministically from seed.
func fill(b []byte, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 | 1
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	for ; i < len(b); i++ {
		b[i] = byte(x >> (8 * (i & 7)))
	}
}

// msgLen is the length of message seq: mostly small, sometimes large.
func msgLen(seq uint64) int {
	if seq%4099 == 0 {
		return 60000 + int(seq%5000)
	}
	return 12 + int((seq*2654435761)>>7)%500
}

// makeMsg builds message seq: 8-byte sequence, pseudo-random body, CRC32 of
// everything before the last 4 bytes.
func makeMsg(b []byte, seq uint64) []byte {
	b = b[:msgLen(seq)]
	binary.LittleEndian.PutUint64(b, seq)
	fill(b[8:len(b)-4], seq)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

func checkMsg(b []byte, want uint64) error {
	if len(b) < 12 {
		return fmt.Errorf("message %d: only %d bytes", want, len(b))
	}
	if seq := binary.LittleEndian.Uint64(b); seq != want {
		return fmt.Errorf("got sequence %d, want %d", seq, want)
	}
	if len(b) != msgLen(want) {
		return fmt.Errorf("message %d: %d bytes, want %d", want, len(b), msgLen(want))
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return fmt.Errorf("message %d: checksum mismatch", want)
	}
	return nil
}

func helper(mode, path string) error {
	count, _ := strconv.ParseUint(os.Getenv("SHMRING_COUNT"), 10, 64)
	spin, _ := time.ParseDuration(os.Getenv("SHMRING_SPIN"))
	o := fastOpts(Producer)
	o.Spin = spin
	if os.Getenv("SHMRING_NO_PEER_TIMEOUT") == "1" {
		o.PeerTimeout = NoPeerTimeout
	}
	p, err := Open(path, o)
	if err != nil {
		return err
	}
	buf := make([]byte, 70000)
	for seq := uint64(0); seq < count; seq++ {
		if err := p.Send(makeMsg(buf, seq)); err != nil {
			return fmt.Errorf("send %d: %w", seq, err)
		}
	}
	switch mode {
	case "producer":
		return p.Close()
	case "hang": // stay alive (heartbeat running) until killed
		time.Sleep(time.Hour)
	case "exit": // die without closing
	}
	return nil
}

// helperProc is a running helper; done is closed once it has exited, with
// err its exit status.
type helperProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startHelper(t *testing.T, mode, path string, count uint64, spin time.Duration, env ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHMRING_HELPER="+mode, "SHMRING_RING="+path,
		"SHMRING_COUNT="+strconv.FormatUint(count, 10), "SHMRING_SPIN="+spin.String())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	// A helper that does not watch our heartbeat must not outlive us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperProc{cmd: cmd, done: make(chan struct{})}
	go func() { h.err = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-h.done })
	return h
}

// TestStressMultiProcess streams messages from a producer process to this
// process, checking every sequence number and checksum, in sleep mode and
// in spin mode. Neither end watches the other's heartbeat (NoPeerTimeout):
// peer death is TestPeerDeathAcrossProcesses' subject, and on a loaded
// machine (or under -race) a live producer that is not scheduled for a few
// hundred milliseconds would otherwise end the stream with ErrPeerDead. The
// stream ends on events instead: the producer's Close (io.EOF), or its exit
// without one, which closes our end. Half-way, the producer is stopped
// (SIGSTOP) for three of fastOpts' peer timeouts to show such a stall is
// survived.
func TestStressMultiProcess(t *testing.T) {
	count := uint64(2_000_000)
	if testing.Short() || raceEnabled {
		count = 100_000
	}
	if os.Getenv("SHMRING_LONG") == "1" {
		count = 20_000_000
	}
	for _, spin := range []time.Duration{0, 50 * time.Microsecond} {
		t.Run("spin="+spin.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stress.ring")
			co := fastOpts(Consumer)
			co.Spin = spin
			co.PeerTimeout = NoPeerTimeout
			c, err := Create(path, 1<<20, co)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := startHelper(t, "producer", path, count, spin, "SHMRING_NO_PEER_TIMEOUT=1")
			go func() {
				<-h.done
				if h.err != nil {
					c.Close() // it cannot have closed its end: end our Recv
				}
			}()
			buf := make([]byte, 70000)
			var bytes uint64
			for seq := uint64(0); seq < count; seq++ {
				if seq == count/2 {
					seq = stallProducer(t, c, h.cmd.Process.Pid, buf, seq, 3*fastOpts(Consumer).PeerTimeout)
				}
				n, err := c.Recv(buf)
				if err != nil {
					h.cmd.Process.Kill()
					<-h.done
					t.Fatalf("recv %d: %v (producer: %v)", seq, err, h.err)
				}
				if err := checkMsg(buf[:n], seq); err != nil {
					t.Fatal(err)
				}
				bytes += uint64(n)
			}
			if _, err := c.Recv(buf); err != io.EOF {
				t.Fatalf("after last message: %v, want io.EOF", err)
			}
			if <-h.done; h.err != nil {
				t.Fatalf("producer: %v", h.err)
			}
			t.Logf("%d messages, %d MiB verified", count, bytes>>20)
		})
	}
}

// stallProducer stops the producer, drains what it published (checking each
// message from seq on), and waits for more for the stall duration: that wait
// must end with its deadline, not with ErrPeerDead. Then the producer goes on.
// It returns the next sequence number to expect.
func stallProducer(t *testing.T, c *Ring, pid int, buf []byte, seq uint64, stall time.Duration) uint64 {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	// SIGSTOP is asynchronous: wait until every thread of the producer is stopped.
	waitStopped(t, pid)
	for {
		n, err := c.RecvTimeout(buf, stall)
		if errors.Is(err, context.DeadlineExceeded) {
			return seq
		}
		if err != nil {
			t.Fatalf("recv %d while the producer is stopped: %v, want a message or the deadline", seq, err)
		}
		if err := checkMsg(buf[:n], seq); err != nil {
			t.Fatal(err)
		}
		seq++
	}
}

// waitStopped returns once every thread of pid is in the stopped state.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("producer %d: no threads (%v)", pid, err)
		}
		stopped := 0
		for _, task := range tasks {
			data, err := os.ReadFile(task)
			// The state follows the command name, which is in parentheses.
			if i := bytes.LastIndexByte(data, ')'); err == nil && i > 0 && i+2 < len(data) && data[i+2] == 'T' {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("producer %d: %d of %d threads stopped after 30s", pid, stopped, len(tasks))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPeerDeathAcrossProcesses: a producer that exits without closing, and
// one killed with SIGKILL while the consumer is blocked, are both reported
// as ErrPeerDead after the consumer drains what they sent.
func TestPeerDeathAcrossProcesses(t *testing.T) {
	for _, mode := range []string{"exit", "hang"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dead.ring")
			c, err := Create(path, 1<<16, fastOpts(Consumer))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := startHelper(t, mode, path, 100, 0)
			buf := make([]byte, 70000)
			for seq := uint64(0); seq < 100; seq++ {
				n, err := c.Recv(buf)
				if err != nil {
					t.Fatalf("recv %d: %v", seq, err)
				}
				if err := checkMsg(buf[:n], seq); err != nil {
					t.Fatal(err)
				}
			}
			if mode == "hang" {
				h.cmd.Process.Kill()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := c.RecvContext(ctx, buf); !errors.Is(err, ErrPeerDead) {
				t.Fatalf("recv after producer died: %v, want ErrPeerDead", err)
			}
		})
	}
}
