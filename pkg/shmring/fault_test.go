package shmring

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// skipUnderRace skips a test that makes the mapping fault under live
// endpoints. With -race, atomic loads and stores run inside the race
// runtime's C code, where a SIGBUS cannot become the panic that
// debug.SetPanicOnFault promises: the process dies ("unexpected return pc
// for runtime.sigpanic"). `make unit` runs these tests again without -race.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("a fault on the mapping inside the race runtime's atomics kills the process; run without -race (make unit does)")
	}
}

// TestTruncateUnderLiveEndpoints truncates the ring file while a producer
// and a consumer are busy on it. Their next touch of the mapping raises
// SIGBUS; both must come back with ErrFault and the process must live on.
func TestTruncateUnderLiveEndpoints(t *testing.T) {
	skipUnderRace(t)
	for _, spin := range []time.Duration{0, SpinForever} {
		p, c, path := pair(t, 1<<20, spin)
		var received atomic.Int64
		perr := make(chan error, 1)
		cerr := make(chan error, 1)
		go func() {
			msg := make([]byte, 3000)
			for {
				if err := p.Send(msg); err != nil {
					perr <- err
					return
				}
			}
		}()
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Recv(buf); err != nil {
					cerr <- err
					return
				}
				received.Add(1)
			}
		}()
		for received.Load() < 2000 {
			time.Sleep(time.Millisecond)
		}
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]chan error{"producer": perr, "consumer": cerr} {
			err := <-ch
			if !errors.Is(err, ErrFault) {
				t.Errorf("spin %v: %s after truncate: %v, want ErrFault", spin, name, err)
			}
		}
		// Sticky: later calls fail the same way, without faulting again.
		if err := p.TrySend(nil); !errors.Is(err, ErrFault) {
			t.Errorf("producer later: %v", err)
		}
		if _, err := c.TryRecv(nil); !errors.Is(err, ErrFault) {
			t.Errorf("consumer later: %v", err)
		}
		if err := p.Close(); err != nil && !errors.Is(err, ErrFault) {
			t.Errorf("close: %v", err)
		}
	}
}

// TestTruncateWhileBlocked truncates the file under a blocked Recv: it must
// come out of its futex sleep with an error, not hang. Truncating to 0 makes
// the header page vanish (ErrFault); truncating into the header page zeroes
// the owner words, which the heartbeat reports as a takeover.
func TestTruncateWhileBlocked(t *testing.T) {
	skipUnderRace(t)
	_, c, path := pair(t, 4096, 0)
	errc := make(chan error, 1)
	go func() { _, err := c.Recv(make([]byte, 10)); errc <- err }()
	for c.use.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	os.Truncate(path, 100)
	if err := <-errc; !errors.Is(err, ErrFault) && !errors.Is(err, ErrTakenOver) {
		t.Fatalf("blocked recv after truncate to 100: %v", err)
	}
	_, c2, path2 := pair(t, 4096, 0)
	go func() { _, err := c2.Recv(make([]byte, 10)); errc <- err }()
	for c2.use.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	os.Truncate(path2, 0)
	if err := <-errc; !errors.Is(err, ErrFault) {
		t.Fatalf("blocked recv after truncate to 0: %v", err)
	}
}

// fuzzRing lays out a ring file from fuzz input: ctl overwrites control
// words (and, if its first byte is odd, the header), data fills the data
// area.
func fuzzRing(path string, ctl, data []byte) error {
	r, err := Create(path, 4096, nil)
	if err != nil {
		return err
	}
	r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	word := func(i int) []byte {
		var b [8]byte
		copy(b[:], ctl[min(len(ctl), i*8):min(len(ctl), i*8+8)])
		return b[:]
	}
	if len(ctl) > 0 && ctl[0]&1 == 1 {
		f.WriteAt(word(1), offMagic)
		f.WriteAt(word(2), offCapacity)
	}
	if len(ctl) > 0 && ctl[0]&2 == 2 {
		f.Truncate(int64(binary.LittleEndian.Uint16(word(3))))
	}
	f.WriteAt(word(4), offWritePos)
	f.WriteAt(word(5), offReadPos)
	f.WriteAt(word(6), offProdOwner)
	f.WriteAt(word(7), offConsOwner)
	f.WriteAt(word(8), offProdWaiting)
	if len(data) > 0 {
		area := make([]byte, 4096)
		for i := range area {
			area[i] = data[i%len(data)]
		}
		f.WriteAt(area, headerSize)
	}
	return nil
}

// FuzzReader feeds arbitrary ring contents to a consumer: Open and every
// receive call must return (a message or an error), never panic, read out
// of range or hang past its deadline.
func FuzzReader(f *testing.F) {
	rec := func(n int, tag uint32) []byte { // header declaring n bytes, then some payload
		b := make([]byte, 8+min(n, 64))
		binary.LittleEndian.PutUint32(b, uint32(n))
		binary.LittleEndian.PutUint32(b[4:], tag)
		return b
	}
	ctl := func(w, r uint64, prod uint64) []byte {
		b := make([]byte, 72)
		binary.LittleEndian.PutUint64(b[32:], w)
		binary.LittleEndian.PutUint64(b[40:], r)
		binary.LittleEndian.PutUint64(b[48:], prod)
		return b
	}
	f.Add(ctl(16, 0, 0), rec(5, recTag))
	f.Add(ctl(4096, 0, 6), rec(4088, recTag))
	f.Add(ctl(4104, 8, 5), rec(4090, recTag))
	f.Add(ctl(1<<63, 1<<63-8, 1), rec(0, recTag))
	f.Add(ctl(24, 0, 2), rec(1<<31, recTag))
	f.Add([]byte{1, 2, 3}, []byte{})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20}, []byte{0})
	dir := f.TempDir()
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, ctl, data []byte) {
		path := filepath.Join(dir, "f"+string(rune('a'+seq.Add(1)%26)))
		defer os.Remove(path)
		os.Remove(path)
		if err := fuzzRing(path, ctl, data); err != nil {
			t.Fatal(err)
		}
		c, err := Open(path, &Options{Role: Consumer, Heartbeat: time.Millisecond, PeerTimeout: 2 * time.Millisecond})
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for i := 0; i < 600; i++ {
			n, err := c.TryRecv(buf)
			if err != nil {
				break
			}
			if n > c.MaxMessageSize() {
				t.Fatalf("message of %d bytes from a %d ring", n, c.Capacity())
			}
		}
		c.RecvTimeout(buf, 3*time.Millisecond)
	})
}
