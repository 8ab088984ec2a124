// Package statedir makes and checks the daemon's own directories (--graph, --state and the
// subdirectories it keeps records and mounts in). The daemon trusts what it finds there
// (container records, host-channel records, runtime state), so a directory that another user
// can write, or swap through a writable ancestor, must make the daemon refuse to start.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Ensure makes dir (mode 0700, missing parents too) when it is missing, then checks it as
// Check does.
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("daemon directory %q: %w", dir, err)
	}
	return Check(dir)
}

// Check checks that dir, with symbolic links resolved, is a directory owned by the daemon's
// user and not writable by group or others, and that every ancestor of it is owned by root
// (or the daemon's user) and either not writable by group or others, or sticky (like /tmp:
// then no other user can rename or remove the entry below it, which is itself checked to be
// root's). Every error is one line naming the directory.
func Check(dir string) error {
	_, err := Resolve(dir)
	return err
}

// Resolve is Check that also returns the resolved path, for callers that hand the path on
// (e.g. as a bind source to the runtime) and want it free of symbolic links.
func Resolve(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("daemon directory %q: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", errdefs.Errorf(errdefs.ErrFailedPrecondition, "daemon directory %q: %v", dir, err)
	}
	euid := uint32(os.Geteuid())
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", errdefs.Errorf(errdefs.ErrFailedPrecondition, "daemon directory %q: %v", dir, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", errors.New("statedir: no stat data")
		}
		perm := fi.Mode().Perm()
		what := fmt.Sprintf("daemon directory %q", dir)
		if p != real {
			what = fmt.Sprintf("daemon directory %q: its parent %q", dir, p)
		}
		switch {
		case !fi.IsDir():
			return "", errdefs.Errorf(errdefs.ErrFailedPrecondition, "%s is not a directory (want a directory only root can write)", what)
		case st.Uid != euid && st.Uid != 0:
			return "", errdefs.Errorf(errdefs.ErrFailedPrecondition, "%s is owned by uid %d (want it owned by root and not writable by group or others; chown root %s)", what, st.Uid, p)
		case perm&0o022 != 0 && (p == real || fi.Mode()&fs.ModeSticky == 0):
			return "", errdefs.Errorf(errdefs.ErrFailedPrecondition, "%s is writable by group or others (mode %04o; want it owned by root and not writable by group or others; chmod go-w %s)", what, st.Mode&0o7777, p)
		}
		if p == "/" {
			return real, nil
		}
	}
}
