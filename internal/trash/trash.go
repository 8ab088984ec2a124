// Package trash removes directories off the caller's path: a directory is renamed into a
// trash directory on the same file system (one rename: it is gone from where it was at once)
// and deleted in the background. What a crash leaves in the trash is deleted when it is
// opened again.
//
// The daemon removes a container's record and state directories this way: their deletion
// (a dozen unlinks on ext4, 0.5-0.7 ms) was on the path between a --rm container's exit and
// the client's exit (docs/PERFORMANCE.md).
//
// The deletions run one at a time on one thread at the lowest CPU priority (nice 19), so
// they give way to whatever else runs: a --rm container's exit sends its client the exit
// code just as its directories reach the trash, and the client's last steps then had to
// share the CPUs with two deletions at full priority.
package trash

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Bin is a trash directory. The zero value is not usable: Open.
type Bin struct {
	dir string
	wg  sync.WaitGroup
	seq atomic.Uint64
}

// Open makes (or empties) the trash directory dir; it must be on the file system of the
// directories given to Remove for them to move there (others are deleted in place).
func Open(dir string) (*Bin, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Bin{dir: dir}, nil
}

// Remove moves path into the trash and deletes it in the background; a path that cannot be
// moved there (another file system) is deleted before Remove returns. A missing path is not
// an error.
func (b *Bin) Remove(path string) error {
	dst := filepath.Join(b.dir, strconv.FormatUint(b.seq.Add(1), 10)+"-"+filepath.Base(path))
	err := os.Rename(path, dst)
	switch {
	case err == nil:
		b.wg.Add(1)
		enqueue(job{path: dst, done: b.wg.Done})
		return nil
	case errors.Is(err, os.ErrNotExist):
		return nil
	case errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.EBUSY):
		return os.RemoveAll(path)
	}
	// Anything else (a permission problem, a full directory): delete in place, which
	// reports what is wrong.
	return os.RemoveAll(path)
}

// Wait returns once the background deletions started so far are done.
func (b *Bin) Wait() { b.wg.Wait() }

// job is a deletion for the worker.
type job struct {
	path string
	done func()
}

// The worker's queue: Remove never waits for the worker.
var (
	queueMu    sync.Mutex
	queue      []job
	queued     = make(chan struct{}, 1)
	workerOnce sync.Once
)

func enqueue(j job) {
	workerOnce.Do(func() { go worker() })
	queueMu.Lock()
	queue = append(queue, j)
	queueMu.Unlock()
	select {
	case queued <- struct{}{}:
	default:
	}
}

// worker deletes what is queued, in order, on a thread of its own at nice 19. The
// goroutine keeps the thread locked for its whole life: no other goroutine runs on it.
func worker() {
	runtime.LockOSThread()
	// Best effort: at the default priority the deletions are done all the same.
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
	for range queued {
		for {
			queueMu.Lock()
			if len(queue) == 0 {
				queueMu.Unlock()
				break
			}
			j := queue[0]
			queue[0] = job{}
			queue = queue[1:]
			queueMu.Unlock()
			os.RemoveAll(j.path)
			j.done()
		}
	}
}
