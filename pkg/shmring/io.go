package shmring

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// enter marks the endpoint busy and turns faults on the mapping into panics
// (a truncated file gives SIGBUS). Every public data call starts with it and,
// when it succeeds, defers leave with the old fault setting.
func (r *Ring) enter(want Role) (oldFault bool, err error) {
	if !r.use.CompareAndSwap(0, 1) {
		if r.use.Load() == 2 || r.closing.Load() {
			return false, ErrClosed
		}
		return false, ErrConcurrent
	}
	if r.closing.Load() {
		r.use.Store(0)
		return false, ErrClosed
	}
	if r.opts.Role != want {
		r.use.Store(0)
		return false, fmt.Errorf("%w: %s on a %s endpoint", ErrWrongRole, map[Role]string{Producer: "send", Consumer: "receive"}[want], r.opts.Role)
	}
	if err := r.Err(); err != nil {
		r.use.Store(0)
		return false, err
	}
	return debug.SetPanicOnFault(true), nil
}

// leave is deferred at the API boundary: a fault on the mapping becomes the
// call's error and breaks the ring; then the fault setting is restored and the
// endpoint left.
func (r *Ring) leave(oldFault bool, err *error) {
	if x := recover(); x != nil {
		*err = faultErr(x)
		r.setBroken(*err)
	}
	debug.SetPanicOnFault(oldFault)
	r.use.Store(0)
}

// Send sends msg, blocking while the ring is full. It fails with
// ErrPeerClosed once the consumer has closed its end, and with ErrPeerDead
// when the consumer's heartbeat stops while Send waits for room.
func (r *Ring) Send(msg []byte) error { return r.send(context.Background(), msg, true) }

// TrySend sends msg if there is room now, else returns ErrWouldBlock.
func (r *Ring) TrySend(msg []byte) error { return r.send(context.Background(), msg, false) }

// SendContext is Send that gives up when ctx is done (returning ctx.Err()).
func (r *Ring) SendContext(ctx context.Context, msg []byte) error { return r.send(ctx, msg, true) }

// SendTimeout is Send that gives up after d with context.DeadlineExceeded.
func (r *Ring) SendTimeout(msg []byte, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return r.send(ctx, msg, true)
}

// Recv receives the next message into buf and returns its length, blocking
// while the ring is empty. When the producer has closed and the ring is
// drained it returns io.EOF; when the producer's heartbeat stops it returns
// ErrPeerDead (after the ring is drained). If the message does not fit, it
// returns a *ShortBufferError and leaves the message in the ring.
func (r *Ring) Recv(buf []byte) (int, error) { return r.recv(context.Background(), buf, true) }

// TryRecv is Recv that returns ErrWouldBlock instead of waiting.
func (r *Ring) TryRecv(buf []byte) (int, error) { return r.recv(context.Background(), buf, false) }

// RecvContext is Recv that gives up when ctx is done (returning ctx.Err()).
func (r *Ring) RecvContext(ctx context.Context, buf []byte) (int, error) {
	return r.recv(ctx, buf, true)
}

// RecvTimeout is Recv that gives up after d with context.DeadlineExceeded.
func (r *Ring) RecvTimeout(buf []byte, d time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return r.recv(ctx, buf, true)
}

func (r *Ring) send(ctx context.Context, msg []byte, block bool) (err error) {
	oldFault, err := r.enter(Producer)
	if err != nil {
		return err
	}
	defer r.leave(oldFault, &err)
	if uint64(len(msg)) > r.maxMsg {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(msg), r.maxMsg)
	}
	need := align8(recHeader + uint64(len(msg)))
	for {
		if err := r.peerClosedErr(); err != nil {
			return err
		}
		ok, err := r.trySendLocked(msg, need)
		if ok || err != nil {
			return err
		}
		ready := func() (bool, error) { return r.hasRoom(need) }
		if !block {
			if err := r.checkWait(ctx, ready); err != nil {
				return err
			}
			return ErrWouldBlock
		}
		if err := r.wait(ctx, ready); err != nil {
			return err
		}
	}
}

// peerClosedErr reports ErrPeerClosed if the consumer closed its end.
func (r *Ring) peerClosedErr() error {
	if atomic.LoadUint64(r.peerOwner)&stateMask == stateClosed {
		return ErrPeerClosed
	}
	return nil
}

func (r *Ring) corrupt(format string, args ...any) error {
	err := fmt.Errorf("%w: %s: %s", ErrCorrupt, r.path, fmt.Sprintf(format, args...))
	r.setBroken(err)
	return err
}

// hasRoom reloads the consumer's position and reports whether need bytes fit.
func (r *Ring) hasRoom(need uint64) (bool, error) {
	if r.wpos+need-r.rcache <= r.cap {
		return true, nil
	}
	rp := atomic.LoadUint64(r.readPos)
	if r.wpos-rp > r.cap || rp&7 != 0 {
		return false, r.corrupt("read position %d inconsistent with write position %d", rp, r.wpos)
	}
	r.rcache = rp
	return r.wpos+need-rp <= r.cap, nil
}

func (r *Ring) trySendLocked(msg []byte, need uint64) (bool, error) {
	if ok, err := r.hasRoom(need); !ok || err != nil {
		return false, err
	}
	off := r.wpos & r.mask
	binary.LittleEndian.PutUint64(r.data[off:off+8], uint64(len(msg))|uint64(recTag)<<32)
	p := off + recHeader
	if p == r.cap {
		p = 0
	}
	n := copy(r.data[p:], msg)
	copy(r.data, msg[n:])
	r.wpos += need
	atomic.StoreUint64(r.writePos, r.wpos) // publish (full barrier on amd64)
	if atomic.LoadUint32(r.peerWait) != 0 {
		bump(r.peerSeq)
	}
	return true, nil
}

func (r *Ring) recv(ctx context.Context, buf []byte, block bool) (n int, err error) {
	oldFault, err := r.enter(Consumer)
	if err != nil {
		return 0, err
	}
	defer r.leave(oldFault, &err)
	for {
		n, ok, err := r.tryRecvLocked(buf)
		if ok || err != nil {
			return n, err
		}
		if !block {
			if err := r.checkWait(ctx, r.hasData); err != nil {
				return 0, err
			}
			return 0, ErrWouldBlock
		}
		if err := r.wait(ctx, r.hasData); err != nil {
			return 0, err
		}
	}
}

// hasData reloads the producer's position and reports whether a record is
// there.
func (r *Ring) hasData() (bool, error) {
	if r.rpos != r.wcache {
		return true, nil
	}
	wp := atomic.LoadUint64(r.writePos)
	if wp-r.rpos > r.cap || wp&7 != 0 {
		return false, r.corrupt("write position %d inconsistent with read position %d", wp, r.rpos)
	}
	r.wcache = wp
	return wp != r.rpos, nil
}

func (r *Ring) tryRecvLocked(buf []byte) (int, bool, error) {
	if ok, err := r.hasData(); !ok || err != nil {
		return 0, false, err
	}
	avail := r.wcache - r.rpos
	off := r.rpos & r.mask
	h := binary.LittleEndian.Uint64(r.data[off : off+8]) // read once: the peer may change it
	ln, tag := h&0xffffffff, uint32(h>>32)
	if tag != recTag {
		return 0, false, r.corrupt("bad record tag %#x at position %d", tag, r.rpos)
	}
	need := align8(recHeader + ln)
	if ln > r.maxMsg || need > avail {
		return 0, false, r.corrupt("record length %d at position %d exceeds the %d published bytes", ln, r.rpos, avail)
	}
	if uint64(len(buf)) < ln {
		return 0, false, &ShortBufferError{Len: int(ln)}
	}
	p := off + recHeader
	if p == r.cap {
		p = 0
	}
	dst := buf[:ln]
	k := copy(dst, r.data[p:])
	copy(dst[k:], r.data)
	r.rpos += need
	atomic.StoreUint64(r.readPos, r.rpos)
	if atomic.LoadUint32(r.peerWait) != 0 {
		bump(r.peerSeq)
	}
	return int(ln), true, nil
}

// wait blocks until ready reports true, an error, the peer is gone, ctx is
// done or the endpoint is closed. It spins for the configured budget, then
// sleeps on the futex word the peer bumps, announcing the sleep in the
// waiting flag so the peer wakes it only when needed. Every sleep is bounded
// by the heartbeat interval, so a peer that never wakes us (dead, or
// hostile) cannot make the call hang past its deadline.
func (r *Ring) wait(ctx context.Context, ready func() (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	spin := r.opts.Spin
	if spin != 0 {
		start := time.Now()
		for i := 1; ; i++ {
			if ok, err := ready(); ok || err != nil {
				return err
			}
			if i&1023 == 0 {
				// Now and then let others run: goroutines of this process
				// (perhaps the peer, in-process) and, through sched_yield,
				// a peer process sharing this CPU, which otherwise would
				// not run until our spin budget is spent.
				runtime.Gosched()
				unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
				if err := r.checkWait(ctx, ready); err != nil {
					return err
				}
				if spin > 0 && time.Since(start) > spin {
					break
				}
			}
		}
	}
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		seq := atomic.LoadUint32(r.mySeq)
		atomic.StoreUint32(r.myWaiting, 1)
		ok, err := ready()
		if ok || err != nil {
			atomic.StoreUint32(r.myWaiting, 0)
			return err
		}
		if err := r.checkWait(ctx, ready); err != nil {
			atomic.StoreUint32(r.myWaiting, 0)
			return err
		}
		if stop == nil && ctx.Done() != nil {
			// Cancellation bumps our own word so the sleep ends at once.
			stop = context.AfterFunc(ctx, r.wakeSelf)
		}
		d := r.opts.Heartbeat
		if !deadline.IsZero() {
			if left := time.Until(deadline); left < d {
				d = left
			}
		}
		if err := futexWaitTimeout(r.mySeq, seq, d); err != nil {
			atomic.StoreUint32(r.myWaiting, 0)
			return fmt.Errorf("%w: futex: %v", ErrFault, err)
		}
		atomic.StoreUint32(r.myWaiting, 0)
	}
}

// checkWait is the slow-path check made while waiting: our own state, the
// caller's context and the peer's liveness.
func (r *Ring) checkWait(ctx context.Context, ready func() (bool, error)) error {
	if r.closing.Load() {
		return ErrClosed
	}
	if err := r.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	perr := r.peerGone()
	if perr == nil {
		return nil
	}
	// The peer is gone; whatever it published before going still counts.
	if ok, err := ready(); ok || err != nil {
		return err
	}
	return perr
}

// peerGone reports io.EOF / ErrPeerClosed if the peer closed, ErrPeerDead if
// its heartbeat has stood still for PeerTimeout (never with NoPeerTimeout),
// nil otherwise (including while no peer has attached yet).
func (r *Ring) peerGone() error {
	owner := atomic.LoadUint64(r.peerOwner)
	switch owner & stateMask {
	case stateClosed:
		if r.opts.Role == Consumer {
			return io.EOF
		}
		return ErrPeerClosed
	case stateLive:
	default:
		r.peerEpoch = 0
		return nil
	}
	beat := atomic.LoadUint64(r.peerBeat)
	now := time.Now()
	if owner != r.peerEpoch || beat != r.peerLast {
		r.peerEpoch, r.peerLast, r.peerSeen = owner, beat, now
		return nil
	}
	if r.opts.PeerTimeout >= 0 && now.Sub(r.peerSeen) > r.opts.PeerTimeout {
		return fmt.Errorf("%w: no heartbeat for %v", ErrPeerDead, now.Sub(r.peerSeen).Round(time.Millisecond))
	}
	return nil
}
