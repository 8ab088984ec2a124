package shmring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Role selects which end of a ring an endpoint is.
type Role uint8

const (
	// NoRole attaches nothing: the endpoint can only be closed. Useful for
	// Create when another process will be both ends.
	NoRole Role = iota
	// Producer sends messages.
	Producer
	// Consumer receives messages.
	Consumer
)

func (r Role) String() string {
	switch r {
	case Producer:
		return "producer"
	case Consumer:
		return "consumer"
	}
	return "none"
}

// Defaults for Options fields left zero.
const (
	DefaultHeartbeat   = 100 * time.Millisecond
	DefaultPeerTimeout = 3 * time.Second
)

// SpinForever as Options.Spin makes waits busy-poll and never sleep.
const SpinForever time.Duration = -1

// NoPeerTimeout as Options.PeerTimeout never counts a live-marked peer as
// dead by its heartbeat: for a peer whose life the caller follows by other
// means (a child process it waits for, a supervisor), where a peer that is
// merely not scheduled for a while must not end the stream. The peer's Close,
// the caller's context and the caller's own Close still end a wait, and a
// role held by a live-marked process is never taken over.
const NoPeerTimeout time.Duration = -1

// Options tune an endpoint. The zero value (or nil) is valid: no spinning,
// default heartbeat and peer timeout, file mode 0600.
type Options struct {
	// Role is the end this endpoint attaches as.
	Role Role
	// Spin is how long a blocking call busy-polls before it sleeps on a
	// futex. Zero means always sleep; SpinForever (or any negative value)
	// means never sleep.
	Spin time.Duration
	// Heartbeat is how often this endpoint advances its heartbeat word.
	Heartbeat time.Duration
	// PeerTimeout is how long the peer's heartbeat may stand still before a
	// blocking call gives up with ErrPeerDead. It should be several times
	// the peer's Heartbeat. A peer that is stopped (SIGSTOP, a frozen
	// cgroup) for longer than this also counts as dead. Zero means
	// DefaultPeerTimeout; NoPeerTimeout (or any negative value) means never.
	PeerTimeout time.Duration
	// Mode is the permission of a file made by Create (default 0600). It is
	// applied exactly, regardless of the umask.
	Mode os.FileMode
}

func (o *Options) withDefaults() Options {
	var v Options
	if o != nil {
		v = *o
	}
	if v.Heartbeat <= 0 {
		v.Heartbeat = DefaultHeartbeat
	}
	if v.PeerTimeout == 0 {
		v.PeerTimeout = DefaultPeerTimeout
	}
	if v.Mode == 0 {
		v.Mode = 0o600
	}
	return v
}

// Errors. Errors caused by the contents of shared memory wrap ErrCorrupt;
// errors caused by the mapping vanishing wrap ErrFault.
var (
	ErrCorrupt     = errors.New("shmring: ring is corrupt")
	ErrFault       = errors.New("shmring: fault accessing ring mapping (file truncated or hole punched?)")
	ErrClosed      = errors.New("shmring: endpoint closed")
	ErrPeerClosed  = errors.New("shmring: peer closed the ring")
	ErrPeerDead    = errors.New("shmring: peer stopped its heartbeat (dead?)")
	ErrWouldBlock  = errors.New("shmring: operation would block")
	ErrTooLarge    = errors.New("shmring: message larger than ring allows")
	ErrWrongRole   = errors.New("shmring: operation not allowed for this endpoint's role")
	ErrRoleTaken   = errors.New("shmring: role already held by a live process")
	ErrConcurrent  = errors.New("shmring: concurrent use of one endpoint")
	ErrTakenOver   = errors.New("shmring: another process took over this endpoint's role")
	ErrBadCapacity = errors.New("shmring: capacity must be a power of two between 4096 and 2^40")
)

// ShortBufferError is returned by the receive calls when the next message
// does not fit the buffer. The message stays in the ring.
type ShortBufferError struct{ Len int }

func (e *ShortBufferError) Error() string {
	return fmt.Sprintf("shmring: buffer too small for %d-byte message", e.Len)
}

// Ring is one endpoint of a ring: a producer or a consumer. An endpoint is
// for one goroutine at a time; concurrent calls fail with ErrConcurrent.
// Close may be called from another goroutine: it interrupts a blocked call.
type Ring struct {
	path string
	opts Options
	mem  []byte // whole mapping
	data []byte // data area
	cap  uint64
	mask uint64

	// Shared words.
	writePos, readPos   *uint64
	myOwner, peerOwner  *uint64
	myBeat, peerBeat    *uint64
	myWaiting, peerWait *uint32
	mySeq, peerSeq      *uint32 // mySeq: the word I sleep on; peerSeq: the word I bump
	myEpoch             uint64
	maxMsg              uint64
	wpos, rcache        uint64 // producer private
	rpos, wcache        uint64 // consumer private
	peerEpoch, peerLast uint64 // liveness tracking
	peerSeen            time.Time
	use                 atomic.Int32 // 0 idle, 1 in a call, 2 closed
	closing             atomic.Bool
	broken              atomic.Pointer[error]
	stopBeat            chan struct{}
	beatDone            sync.WaitGroup
	closeOnce           sync.Once
	closeErr            error
}

func (r *Ring) u64(off uintptr) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }
func (r *Ring) u32(off uintptr) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }

// Path is the file the ring lives in.
func (r *Ring) Path() string { return r.path }

// Capacity is the size of the data area in bytes.
func (r *Ring) Capacity() int { return int(r.cap) }

// MaxMessageSize is the largest message Send accepts.
func (r *Ring) MaxMessageSize() int { return int(r.maxMsg) }

// Role is the end this endpoint is attached as.
func (r *Ring) Role() Role { return r.opts.Role }

func randU64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return binary.LittleEndian.Uint64(b[:])
}

func checkCapacity(c int) error {
	if c < MinCapacity || c > MaxCapacity || c&(c-1) != 0 {
		return fmt.Errorf("%w (got %d)", ErrBadCapacity, c)
	}
	return nil
}

// Create makes a new ring file at path with a data area of capacity bytes
// (a power of two, at least 4096) and attaches to it as opts.Role.
//
// The whole file is reserved with fallocate and every page is touched before
// the ring becomes visible, so a tmpfs without room for it makes Create fail
// (ENOSPC) instead of raising SIGBUS later. The file appears at path fully
// initialised (it is built under a temporary name and hard-linked into
// place); if anything already exists at path, Create fails with an error
// wrapping fs.ErrExist.
func Create(path string, capacity int, opts *Options) (r *Ring, err error) {
	o := opts.withDefaults()
	if err := checkCapacity(capacity); err != nil {
		return nil, err
	}
	size := int64(headerSize + capacity)
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%016x", base, randU64()))
	fd, err := unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	defer unix.Close(fd)
	linked := false
	defer func() {
		unix.Unlink(tmp)
		if err != nil && linked {
			unix.Unlink(path)
		}
	}()
	if err := unix.Fchmod(fd, uint32(o.Mode.Perm())); err != nil {
		return nil, &os.PathError{Op: "chmod", Path: tmp, Err: err}
	}
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		if err != unix.EOPNOTSUPP {
			return nil, fmt.Errorf("shmring: reserve %d bytes for %s: %w", size, path, err)
		}
		// No fallocate (not tmpfs): size the file; touching below still
		// allocates every page.
		if err := unix.Ftruncate(fd, size); err != nil {
			return nil, &os.PathError{Op: "truncate", Path: tmp, Err: err}
		}
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: tmp, Err: err}
	}
	r = &Ring{path: path, opts: o, mem: mem}
	if err := r.initHeader(uint64(capacity)); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("shmring: initialise %s: %w", path, err)
	}
	if err := unix.Link(tmp, path); err != nil {
		unix.Munmap(mem)
		return nil, &os.LinkError{Op: "create ring", Old: tmp, New: path, Err: err}
	}
	linked = true
	if err := r.ready(uint64(capacity)); err != nil {
		return nil, err
	}
	return r, nil
}

// initHeader touches every page and writes the header, magic last.
func (r *Ring) initHeader(capacity uint64) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if x := recover(); x != nil {
			err = faultErr(x)
		}
	}()
	page := os.Getpagesize()
	for i := 0; i < len(r.mem); i += page {
		r.mem[i] = 0
	}
	le := binary.LittleEndian
	le.PutUint32(r.mem[offVersion:], version)
	le.PutUint32(r.mem[offHdrSize:], headerSize)
	le.PutUint64(r.mem[offCapacity:], capacity)
	le.PutUint64(r.mem[offRingID:], randU64())
	le.PutUint64(r.mem[offCreated:], uint64(time.Now().UnixNano()))
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&r.mem[offMagic])), magic)
	return nil
}

// faultErr turns a recovered memory-fault panic into ErrFault and re-panics
// anything else (a bug in this package must not be hidden).
func faultErr(x any) error {
	if e, ok := x.(interface{ Addr() uintptr }); ok {
		return fmt.Errorf("%w: %v", ErrFault, e)
	}
	panic(x)
}

// Open attaches to an existing ring file as opts.Role. The header is
// validated (magic, version, sizes against the file size). If the role is
// held by a process whose heartbeat stands still for opts.PeerTimeout, Open
// takes the role over (so a crashed sender can be restarted); if the holder
// is alive (or PeerTimeout is NoPeerTimeout) Open fails with ErrRoleTaken.
func Open(path string, opts *Options) (*Ring, error) {
	o := opts.withDefaults()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	var hdr [64]byte
	if n, err := unix.Pread(fd, hdr[:], 0); err != nil || n != len(hdr) {
		return nil, fmt.Errorf("%w: %s: short header", ErrCorrupt, path)
	}
	le := binary.LittleEndian
	if le.Uint64(hdr[offMagic:]) != magic {
		return nil, fmt.Errorf("%w: %s: bad magic (not a ring, or not yet initialised)", ErrCorrupt, path)
	}
	if v := le.Uint32(hdr[offVersion:]); v != version {
		return nil, fmt.Errorf("%w: %s: unsupported version %d (want %d)", ErrCorrupt, path, v, version)
	}
	if h := le.Uint32(hdr[offHdrSize:]); h != headerSize {
		return nil, fmt.Errorf("%w: %s: header size %d (want %d)", ErrCorrupt, path, h, headerSize)
	}
	c := le.Uint64(hdr[offCapacity:])
	if c < MinCapacity || c > MaxCapacity || c&(c-1) != 0 {
		return nil, fmt.Errorf("%w: %s: bad capacity %d", ErrCorrupt, path, c)
	}
	if uint64(st.Size) != headerSize+c {
		return nil, fmt.Errorf("%w: %s: file is %d bytes, header says %d", ErrCorrupt, path, st.Size, headerSize+c)
	}
	mem, err := unix.Mmap(fd, 0, int(headerSize+c), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	r := &Ring{path: path, opts: o, mem: mem}
	if err := r.ready(c); err != nil {
		return nil, err
	}
	return r, nil
}

// ready ends Create and Open: the views of the mapping, then this side's
// attach. On failure it unmaps.
func (r *Ring) ready(c uint64) error {
	err := r.setup(c)
	if err == nil {
		err = r.attach()
	}
	if err != nil {
		unix.Munmap(r.mem)
	}
	return err
}

func (r *Ring) setup(c uint64) error {
	r.cap = c
	r.mask = c - 1
	r.data = r.mem[headerSize : headerSize+c]
	r.maxMsg = c - recHeader
	if r.maxMsg > 1<<31 {
		r.maxMsg = 1 << 31
	}
	r.writePos = r.u64(offWritePos)
	r.readPos = r.u64(offReadPos)
	switch r.opts.Role {
	case Producer:
		r.myOwner, r.peerOwner = r.u64(offProdOwner), r.u64(offConsOwner)
		r.myBeat, r.peerBeat = r.u64(offProdBeat), r.u64(offConsBeat)
		r.myWaiting, r.peerWait = r.u32(offProdWaiting), r.u32(offConsWaiting)
		r.mySeq, r.peerSeq = r.u32(offSpaceSeq), r.u32(offDataSeq)
	case Consumer:
		r.myOwner, r.peerOwner = r.u64(offConsOwner), r.u64(offProdOwner)
		r.myBeat, r.peerBeat = r.u64(offConsBeat), r.u64(offProdBeat)
		r.myWaiting, r.peerWait = r.u32(offConsWaiting), r.u32(offProdWaiting)
		r.mySeq, r.peerSeq = r.u32(offDataSeq), r.u32(offSpaceSeq)
	case NoRole:
	default:
		return fmt.Errorf("shmring: invalid role %d", r.opts.Role)
	}
	return nil
}

// attach claims the role's owner word and loads the starting position.
func (r *Ring) attach() (err error) {
	if r.opts.Role == NoRole {
		r.use.Store(0)
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if x := recover(); x != nil {
			err = faultErr(x)
		}
	}()
	r.myEpoch = randU64()&^stateMask | stateLive
	if r.myEpoch&^stateMask == 0 {
		r.myEpoch = 4 | stateLive
	}
	for {
		cur := atomic.LoadUint64(r.myOwner)
		if cur&stateMask == stateLive && r.opts.PeerTimeout < 0 {
			return fmt.Errorf("%w: %s (%s)", ErrRoleTaken, r.path, r.opts.Role)
		}
		if cur&stateMask == stateLive {
			// Held: take over only if its heartbeat stands still.
			beat := atomic.LoadUint64(r.myBeat)
			deadline := time.Now().Add(r.opts.PeerTimeout)
			step := r.opts.PeerTimeout / 20
			for time.Now().Before(deadline) {
				time.Sleep(step)
				if atomic.LoadUint64(r.myBeat) != beat || atomic.LoadUint64(r.myOwner) != cur {
					return fmt.Errorf("%w: %s (%s)", ErrRoleTaken, r.path, r.opts.Role)
				}
			}
		}
		if atomic.CompareAndSwapUint64(r.myOwner, cur, r.myEpoch) {
			break
		}
	}
	atomic.StoreUint32(r.myWaiting, 0)
	wp := atomic.LoadUint64(r.writePos)
	rp := atomic.LoadUint64(r.readPos)
	if wp-rp > r.cap || wp&7 != 0 || rp&7 != 0 {
		atomic.CompareAndSwapUint64(r.myOwner, r.myEpoch, r.myEpoch&^stateMask|stateClosed)
		return fmt.Errorf("%w: %s: positions write=%d read=%d capacity=%d", ErrCorrupt, r.path, wp, rp, r.cap)
	}
	r.wpos, r.rcache = wp, rp
	r.rpos, r.wcache = rp, wp
	r.peerSeen = time.Now()
	r.stopBeat = make(chan struct{})
	r.beatDone.Add(1)
	go r.heartbeat()
	return nil
}

// heartbeat advances this endpoint's heartbeat word and notices a takeover.
func (r *Ring) heartbeat() {
	defer r.beatDone.Done()
	t := time.NewTicker(r.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.stopBeat:
			return
		case <-t.C:
		}
		if err := r.beatOnce(); err != nil {
			r.setBroken(err)
			r.wakeSelf() // wake our own blocked call so it sees the error
			return
		}
	}
}

func (r *Ring) beatOnce() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if x := recover(); x != nil {
			err = faultErr(x)
		}
	}()
	if atomic.LoadUint64(r.myOwner) != r.myEpoch {
		return fmt.Errorf("%w: %s", ErrTakenOver, r.path)
	}
	atomic.AddUint64(r.myBeat, 1)
	return nil
}

func (r *Ring) setBroken(err error) {
	r.broken.CompareAndSwap(nil, &err)
}

// Err reports a sticky error (corruption, fault, takeover) if the endpoint
// has one.
func (r *Ring) Err() error {
	if p := r.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// Close detaches: the owner word is marked closed (so the peer's blocking
// calls return io.EOF or ErrPeerClosed), a blocked call of this endpoint is
// interrupted with ErrClosed, and the mapping is released. The file stays.
func (r *Ring) Close() error {
	r.closeOnce.Do(func() {
		r.closing.Store(true)
		if r.opts.Role != NoRole {
			// Interrupt our own blocked call, then wait for it to leave.
			for !r.use.CompareAndSwap(0, 2) {
				r.wakeSelf()
				time.Sleep(50 * time.Microsecond)
			}
			close(r.stopBeat)
			r.beatDone.Wait()
			r.closeErr = r.markClosed()
		} else {
			r.use.Store(2)
		}
		if err := unix.Munmap(r.mem); err != nil && r.closeErr == nil {
			r.closeErr = err
		}
	})
	return r.closeErr
}

func (r *Ring) wakeSelf() {
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { recover() }()
		bump(r.mySeq)
	}()
}

func (r *Ring) markClosed() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if x := recover(); x != nil {
			err = faultErr(x)
		}
	}()
	if atomic.CompareAndSwapUint64(r.myOwner, r.myEpoch, r.myEpoch&^stateMask|stateClosed) {
		bump(r.peerSeq)
	}
	return nil
}
