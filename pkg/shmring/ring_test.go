package shmring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// fastOpts makes peer-death detection quick enough for tests.
func fastOpts(role Role) *Options {
	return &Options{Role: role, Heartbeat: 10 * time.Millisecond, PeerTimeout: 300 * time.Millisecond}
}

// pair creates a ring and attaches both ends in this process. Neither end
// watches the other's heartbeat (NoPeerTimeout): a stall of this process (a
// loaded machine, -race) must not look like a dead peer in tests of other
// things. Tests of peer death use pairWith and fastOpts.
func pair(t *testing.T, capacity int, spin time.Duration) (p, c *Ring, path string) {
	t.Helper()
	po, co := fastOpts(Producer), fastOpts(Consumer)
	po.Spin, co.Spin = spin, spin
	po.PeerTimeout, co.PeerTimeout = NoPeerTimeout, NoPeerTimeout
	return pairWith(t, capacity, po, co)
}

// pairWith creates a ring with the producer's options po and attaches the
// consumer with co.
func pairWith(t *testing.T, capacity int, po, co *Options) (p, c *Ring, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "t.ring")
	p, err := Create(path, capacity, po)
	if err != nil {
		t.Fatal(err)
	}
	c, err = Open(path, co)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); c.Close() })
	return p, c, path
}

func TestSendRecvWrapAround(t *testing.T) {
	p, c, _ := pair(t, 4096, 0)
	buf := make([]byte, 4096)
	// Sizes chosen so records straddle the end of the data area many times,
	// including a header landing exactly at the end.
	for i := 0; i < 5000; i++ {
		n := (i*37)%1500 + i%3
		msg := bytes.Repeat([]byte{byte(i)}, n)
		if err := p.TrySend(msg); err != nil {
			t.Fatalf("send %d (%d bytes): %v", i, n, err)
		}
		got, err := c.TryRecv(buf)
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if !bytes.Equal(buf[:got], msg) {
			t.Fatalf("message %d: got %d bytes, want %d", i, got, n)
		}
	}
	if _, err := c.TryRecv(buf); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("empty ring: got %v, want ErrWouldBlock", err)
	}
}

func TestFullAndSizes(t *testing.T) {
	p, c, _ := pair(t, 4096, 0)
	if got := p.MaxMessageSize(); got != 4096-8 {
		t.Fatalf("MaxMessageSize = %d", got)
	}
	if err := p.TrySend(make([]byte, 4089)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	big := bytes.Repeat([]byte("x"), 4088)
	if err := p.TrySend(big); err != nil {
		t.Fatal(err)
	}
	if err := p.TrySend(nil); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("full ring: %v", err)
	}
	small := make([]byte, 10)
	var sb *ShortBufferError
	if _, err := c.TryRecv(small); !errors.As(err, &sb) || sb.Len != 4088 {
		t.Fatalf("short buffer: %v", err)
	}
	buf := make([]byte, 5000)
	n, err := c.TryRecv(buf)
	if err != nil || !bytes.Equal(buf[:n], big) {
		t.Fatalf("after short buffer: n=%d err=%v", n, err)
	}
	// Zero-length messages are messages.
	for i := 0; i < 512; i++ {
		if err := p.TrySend(nil); err != nil {
			t.Fatalf("empty message %d: %v", i, err)
		}
	}
	for i := 0; i < 512; i++ {
		if n, err := c.TryRecv(buf); err != nil || n != 0 {
			t.Fatalf("empty message %d: n=%d err=%v", i, n, err)
		}
	}
}

func TestRoles(t *testing.T) {
	p, c, path := pair(t, 4096, 0)
	if _, err := p.TryRecv(nil); !errors.Is(err, ErrWrongRole) {
		t.Fatalf("recv on producer: %v", err)
	}
	if err := c.TrySend(nil); !errors.Is(err, ErrWrongRole) {
		t.Fatalf("send on consumer: %v", err)
	}
	o := fastOpts(Producer)
	if _, err := Open(path, o); !errors.Is(err, ErrRoleTaken) {
		t.Fatalf("second producer: %v", err)
	}
	if _, err := Create(path, 4096, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("create over existing: %v", err)
	}
}

func TestBlockingAcrossGoroutines(t *testing.T) {
	for _, spin := range []time.Duration{0, 20 * time.Microsecond, SpinForever} {
		p, c, _ := pair(t, 4096, spin)
		const n = 20000
		errc := make(chan error, 1)
		go func() {
			var b [300]byte
			for i := 0; i < n; i++ {
				binary.LittleEndian.PutUint64(b[:], uint64(i))
				if err := p.Send(b[:8+i%292]); err != nil {
					errc <- err
					return
				}
			}
			errc <- p.Close()
		}()
		buf := make([]byte, 4096)
		for i := 0; i < n; i++ {
			m, err := c.Recv(buf)
			if err != nil {
				t.Fatalf("spin %v: recv %d: %v", spin, i, err)
			}
			if m != 8+i%292 || binary.LittleEndian.Uint64(buf) != uint64(i) {
				t.Fatalf("spin %v: message %d wrong (len %d seq %d)", spin, i, m, binary.LittleEndian.Uint64(buf))
			}
		}
		if _, err := c.Recv(buf); err != io.EOF {
			t.Fatalf("spin %v: after producer close: %v, want io.EOF", spin, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestConsumerCloseFailsSend(t *testing.T) {
	p, c, _ := pair(t, 4096, 0)
	for p.TrySend(make([]byte, 100)) == nil {
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Send(make([]byte, 100)) }()
	c.Close()
	if err := <-errc; !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("blocked send after consumer close: %v", err)
	}
	if err := p.TrySend(nil); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("send after consumer close: %v", err)
	}
}

func TestContextAndClose(t *testing.T) {
	_, c, _ := pair(t, 4096, 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.RecvContext(ctx, make([]byte, 10)); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled recv: %v", err)
	}
	if _, err := c.RecvTimeout(nil, time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv with deadline: %v", err)
	}
	go func() { _, err := c.Recv(make([]byte, 10)); errc <- err }()
	// Close from another goroutine interrupts the blocked Recv.
	for c.use.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("recv interrupted by close: %v", err)
	}
	if _, err := c.TryRecv(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("recv after close: %v", err)
	}
}

// A peer whose heartbeat stops (here: forged by stopping the heartbeat
// goroutine without closing) is reported, not waited for for ever.
func TestPeerDeadInProcess(t *testing.T) {
	p, c, _ := pairWith(t, 4096, fastOpts(Producer), fastOpts(Consumer))
	if err := p.TrySend([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	close(p.stopBeat) // the producer "dies": no close, no more heartbeats
	p.beatDone.Wait()
	p.stopBeat = make(chan struct{})
	p.beatDone.Add(1)
	go func() { <-p.stopBeat; p.beatDone.Done() }()

	buf := make([]byte, 64)
	n, err := c.Recv(buf)
	if err != nil || string(buf[:n]) != "last words" {
		t.Fatalf("drain: %q %v", buf[:n], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.RecvContext(ctx, buf); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("recv from dead producer: %v", err)
	}
	// A new producer may take the role over from the dead one.
	p2, err := Open(c.path, fastOpts(Producer))
	if err != nil {
		t.Fatalf("takeover: %v", err)
	}
	defer p2.Close()
	if err := p2.Send([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.RecvContext(ctx, buf); err != nil || string(buf[:n]) != "new" {
		t.Fatalf("after takeover: %q %v", buf[:n], err)
	}
	// The old producer notices it lost its role.
	if err := p.TrySend(nil); err == nil {
		// its heartbeat goroutine is stopped, so it can only find out when
		// it checks; that is fine as long as the data path stays sane.
		t.Log("old producer could still send (heartbeat stopped in test)")
	}
}

// With NoPeerTimeout a peer whose heartbeat stops is not reported dead, its
// role is not taken over, and its Close still ends the wait.
func TestNoPeerTimeout(t *testing.T) {
	p, c, path := pair(t, 4096, 0)
	close(p.stopBeat) // the producer's heartbeat stops, as in TestPeerDeadInProcess
	p.beatDone.Wait()
	p.stopBeat = make(chan struct{})
	p.beatDone.Add(1)
	go func() { <-p.stopBeat; p.beatDone.Done() }()

	buf := make([]byte, 64)
	stall := 3 * fastOpts(Consumer).PeerTimeout
	if _, err := c.RecvTimeout(buf, stall); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv while the producer's heartbeat stands still for %v: %v, want the deadline", stall, err)
	}
	o := fastOpts(Producer)
	o.PeerTimeout = NoPeerTimeout
	if p2, err := Open(path, o); !errors.Is(err, ErrRoleTaken) {
		if err == nil {
			p2.Close()
		}
		t.Fatalf("open of a held role with NoPeerTimeout: %v, want ErrRoleTaken", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(buf); err != io.EOF {
		t.Fatalf("recv after the producer closed: %v, want io.EOF", err)
	}
}

func TestOpenValidatesHeader(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ring")
	r, err := Create(good, 8192, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(good)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	cases := map[string]func(b []byte) []byte{
		"magic":    func(b []byte) []byte { b[0] ^= 1; return b },
		"version":  func(b []byte) []byte { b[offVersion] = 9; return b },
		"hdrsize":  func(b []byte) []byte { b[offHdrSize] = 1; return b },
		"capacity": func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offCapacity:], 4096); return b },
		"notpow2":  func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offCapacity:], 8191); return b },
		"truncate": func(b []byte) []byte { return b[:5000] },
		"short":    func(b []byte) []byte { return b[:10] },
		"writepos": func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offWritePos:], 1<<20); return b },
		"readpos":  func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offReadPos:], 3); return b },
	}
	for name, mut := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, mut(bytes.Clone(orig)), 0o600); err != nil {
			t.Fatal(err)
		}
		if r, err := Open(p, &Options{Role: Consumer}); !errors.Is(err, ErrCorrupt) {
			if r != nil {
				r.Close()
			}
			t.Errorf("%s: Open gave %v, want ErrCorrupt", name, err)
		}
	}
	os.Symlink(good, filepath.Join(dir, "link"))
	if _, err := Open(filepath.Join(dir, "link"), nil); err == nil {
		t.Error("Open followed a symlink")
	}
	if _, err := Create(filepath.Join(dir, "x"), 5000, nil); !errors.Is(err, ErrBadCapacity) {
		t.Errorf("capacity 5000: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".ring" && len(e.Name()) > 0 && e.Name()[0] == '.' {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// Hostile values in the shared positions are reported as corruption.
func TestHostilePositions(t *testing.T) {
	p, c, _ := pair(t, 4096, 0)
	p.TrySend([]byte("hello"))
	p.TrySend([]byte("world"))
	if _, err := c.TryRecv(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(p.writePos, 1<<40) // producer-side word, scribbled
	if _, err := c.TryRecv(make([]byte, 10)); err != nil {
		// cached position still valid: the first record is readable
		t.Fatalf("first record: %v", err)
	}
	if _, err := c.TryRecv(make([]byte, 10)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad write position: %v", err)
	}
	if _, err := c.TryRecv(make([]byte, 10)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corruption is sticky: %v", err)
	}
	atomic.StoreUint64(c.readPos, 12345)
	for i := 0; ; i++ {
		err := p.TrySend(make([]byte, 1000))
		if errors.Is(err, ErrCorrupt) {
			break
		}
		if err != nil || i > 10 {
			t.Fatalf("bad read position: %v", err)
		}
	}
	// A bad record header is corruption too.
	p2, c2, _ := pair(t, 4096, 0)
	p2.TrySend([]byte("abc"))
	*(*uint32)(unsafe.Pointer(&c2.data[0])) = 5000
	if _, err := c2.TryRecv(make([]byte, 8192)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad record length: %v", err)
	}
}

func TestConcurrentUseRefused(t *testing.T) {
	_, c, _ := pair(t, 4096, 0)
	go c.RecvTimeout(nil, time.Minute)
	for c.use.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.TryRecv(nil); !errors.Is(err, ErrConcurrent) {
		t.Fatalf("second concurrent call: %v", err)
	}
}
