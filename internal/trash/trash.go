// Package trash removes directories off the caller's path: a directory is renamed into a
// trash directory on the same file system (one rename: it is gone from where it was at once)
// and deleted in the background. What a crash leaves in the trash is deleted when it is
// opened again.
//
// The daemon removes a container's record and state directories this way: their deletion
// (a dozen unlinks on ext4, 0.5-0.7 ms) was on the path between a --rm container's exit and
// the client's exit (docs/PERFORMANCE.md).
package trash

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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
		go func() {
			defer b.wg.Done()
			os.RemoveAll(dst)
		}()
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
