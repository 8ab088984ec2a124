// Package atomicfile writes files so that a reader (or a daemon restarting after a crash)
// sees either the old content or the new one, never a torn write.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data: temp file in the same directory, fsync, rename, fsync of
// the directory. The content survives a power loss.
func Write(path string, data []byte, perm os.FileMode) error {
	if err := write(path, data, perm, true); err != nil {
		return err
	}
	// As ever: a directory that cannot be synced (some filesystems refuse it) does not fail
	// the write.
	SyncDir(filepath.Dir(path))
	return nil
}

// WriteSynced is Write without the fsync of the directory: the content is on disk, the
// rename is not until the caller syncs the directory (SyncDir), as a later Write in the
// same directory does. For several files of one directory made durable together.
func WriteSynced(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// SyncDir fsyncs directory dir: the entries made or renamed in it survive a power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Replace replaces path with data by rename, without fsync: a reader or a daemon restarted
// after a crash of the process sees the old content or the new one, never a torn file; a
// power loss may bring back the old one. For state that a power loss makes moot anyway
// (every container is stopped then).
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// WriteNew writes data to path in place when no file is there yet: created exclusively,
// written, its mode set, fsync'd if durable. It is for the files of a new directory that
// nothing reads until a later step publishes them (a container's commit mark, its first
// start): a new file needs no second name, no rename and no rename's flush (ext4 writes
// back a file renamed over another at once). A crash in the middle leaves a short or empty
// file, which is why nothing may read it before that step. A file already at path (a
// second write, or anything left there) is replaced as Replace or WriteSynced does, never
// written through: a symlink there is replaced, not followed.
func WriteNew(path string, data []byte, perm os.FileMode, durable bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return write(path, data, perm, durable)
	}
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(path)
		}
	}()
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			return err
		}
	}
	// The umask may have taken bits of perm.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	ok = true
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
