package daemon

import (
	"path/filepath"

	"github.com/isulad-go/isulad/internal/statedir"
	"golang.org/x/sys/unix"
)

// ensureDirs makes or checks every directory the daemon keeps state in: root's and writable
// by no one else, or the daemon refuses to start (one line naming the directory). The daemon
// trusts what it finds there (container and host-channel records, runtime state), so a
// directory another user could write, made by someone else before the daemon first ran, must
// not be used.
func ensureDirs(cfg Config) error {
	for _, dir := range []string{
		cfg.Graph, filepath.Join(cfg.Graph, "containers"), filepath.Join(cfg.Graph, "hostchannels"),
		cfg.State, filepath.Join(cfg.State, "containers"), filepath.Join(cfg.State, "s"),
		filepath.Join(cfg.State, "runtime"), filepath.Join(cfg.State, "hostchannels"),
	} {
		if err := statedir.Ensure(dir); err != nil {
			return err
		}
	}
	for _, dir := range []string{filepath.Join(cfg.Graph, "containers"), filepath.Join(cfg.State, "containers")} {
		spreadSubdirs(dir)
	}
	return nil
}

// fsTopdirFL is FS_TOPDIR_FL (chattr +T): ext2/3/4 place the subdirectories of such a
// directory across block groups, as they do for top-level directories, instead of in its own.
const fsTopdirFL = 0x00020000

// spreadSubdirs marks dir so that ext4 spreads the containers' directories over its block
// groups. On an ext4 without a journal, each new inode is found by scanning its group for a
// free one, skipping one by one every inode freed in the last 5 s, or 305 s while its inode
// table block is dirty (fs/ext4/ialloc.c, find_inode_bit and recently_deleted). With every
// container's ~20 files in one group, each of them scanned past all the files of the
// containers removed in the last minutes: in back-to-back bursts of 100 starts the daemon's
// CPU per container grew from 5.5 to 8.4 ms (2.9-3.4 ms with its directories on a tmpfs), and
// with the flag it stayed at 4.2-4.8 (docs/PERFORMANCE.md, issue 14's fifth round). Best
// effort: other file systems refuse the flag or ignore it, and nothing depends on it.
func spreadSubdirs(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	// The directory ensureDirs checked is root's (O_DIRECTORY made sure it is one): the flag
	// goes on that one or on none.
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Uid != 0 {
		return
	}
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFL != 0 {
		return
	}
	unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFL))
}
