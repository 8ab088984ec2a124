// Package atomicfile writes files so that a reader (or a daemon restarting after a crash)
// sees either the old content or the new one, never a torn write.
package atomicfile

import (
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
