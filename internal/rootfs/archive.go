package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// This file is `isula cp`: tar archives of a path inside a root, and their extraction. Both
// sides walk with file descriptors only:
//   - the path given by the user is resolved under the root with RESOLVE_IN_ROOT (symlinks
//     in the rootfs and ".." stay inside it, as for a process chrooted there);
//   - below it, every entry is looked at with openat(O_PATH|O_NOFOLLOW) relative to its
//     directory's descriptor and fstat'ed; only regular files are reopened (O_NONBLOCK),
//     directories are reopened O_DIRECTORY|O_NOFOLLOW, symlinks are read, never followed.
//     FIFOs, sockets and devices are never opened: skipped with a warning, or refused when
//     they are the path itself;
//   - extraction resolves every entry's parent beneath the destination directory's
//     descriptor with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, and makes files with
//     O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink in the archive (or planted in the destination
//     meanwhile) can never send a write out of the destination.

// Root is an open root directory to copy from or into: a container's rootfs, its live
// /proc/<pid>/root, or "/" for the host.
type Root struct{ r *root }

// OpenRoot opens dir as a root for Archive and Extract.
func OpenRoot(dir string) (*Root, error) {
	r, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{r: r}, nil
}

// OpenRootAs is OpenRoot for a directory whose path means nothing to the user
// (/proc/<pid>/root): messages name shown instead.
func OpenRootAs(dir, shown string) (*Root, error) {
	r, err := OpenRoot(dir)
	if err == nil {
		r.r.path = shown
	}
	return r, err
}

// Close closes the root's descriptor.
func (r *Root) Close() { r.r.close() }

// Source is a path opened for archiving.
type Source struct {
	root     *root
	fd       int    // O_PATH
	name     string // base name
	full     string // the cleaned path, for messages
	st       unix.Stat_t
	link     string
	contents bool // only the contents of the directory travel (SRC ends in "/.")
}

// SourceInfo describes the path being archived.
type SourceInfo struct {
	Name       string // the archive's top entry; "" when only a directory's contents travel
	Mode       fs.FileMode
	Size       int64
	LinkTarget string
}

// OpenSource opens name (a path inside the root) for archiving. A symlink at name is
// archived as a symlink unless follow is set (-L). A name ending in "/." archives the
// directory's contents without the directory itself, as docker does. A FIFO, socket or
// device is refused.
func (r *Root) OpenSource(name string, follow bool) (*Source, error) {
	if name == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "cp: empty path")
	}
	contents := strings.HasSuffix(name, "/.") || name == "."
	flags := unix.O_PATH
	if !follow && !contents && !strings.HasSuffix(name, "/") {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := r.r.openat2(name, flags, 0)
	if err != nil {
		return nil, err
	}
	full := path.Clean("/" + name)
	s := &Source{root: r.r, fd: fd, name: path.Base(full), full: full, contents: contents}
	if s.name == "/" {
		s.name, s.contents = "", true
	}
	if err := unix.Fstat(fd, &s.st); err != nil {
		s.Close()
		return nil, &os.PathError{Op: "stat", Path: r.r.hostPath(name), Err: err}
	}
	switch s.st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
	case unix.S_IFLNK:
		if s.link, err = readlinkFD(fd); err != nil {
			s.Close()
			return nil, err
		}
	default:
		s.Close()
		return nil, errdefs.Errorf(errdefs.ErrFailedPrecondition, "cp: %s is %s: cp copies regular files, directories and symlinks", r.r.where(name), kind(s.st.Mode))
	}
	if s.contents && s.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		s.Close()
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: %s is not a directory", r.r.where(name))
	}
	return s, nil
}

// Close closes the source's descriptor.
func (s *Source) Close() { unix.Close(s.fd) }

// Info describes the source.
func (s *Source) Info() SourceInfo {
	name := s.name
	if s.contents {
		name = ""
	}
	return SourceInfo{Name: name, Mode: fileMode(s.st.Mode), Size: s.st.Size, LinkTarget: s.link}
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", &os.PathError{Op: "readlink", Path: "/proc/self/fd/" + strconv.Itoa(fd), Err: err}
	}
	return string(buf[:n]), nil
}

// fileMode turns stat mode bits into an fs.FileMode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// pseudoFS are file systems whose files are not data (and some of which never end): a copy
// of a running container's / does not descend into them.
var pseudoFS = map[int64]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
	unix.CGROUP2_SUPER_MAGIC: true, unix.DEVPTS_SUPER_MAGIC: true, unix.DEBUGFS_MAGIC: true,
	unix.SECURITYFS_MAGIC: true, unix.TRACEFS_MAGIC: true, unix.BPF_FS_MAGIC: true,
	// A FUSE server in a container could make a read block for ever: O_NONBLOCK does not
	// reach it.
	unix.FUSE_SUPER_MAGIC: true,
}

// WriteTar writes the source as a tar archive to w. Entries that cannot be copied (FIFOs,
// sockets, devices, pseudo file systems, files that vanish meanwhile) are skipped and named
// through warn.
func (s *Source) WriteTar(w io.Writer, warn func(string)) error {
	tw := tar.NewWriter(w)
	a := &archiver{tw: tw, warn: warn, links: map[[2]uint64]string{}, where: s.root.where}
	var err error
	if s.contents {
		err = a.dirContents(s.fd, "", s.full)
	} else {
		err = a.add(s.fd, s.st, s.name, s.link, s.full)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

type archiver struct {
	tw    *tar.Writer
	warn  func(string)
	links map[[2]uint64]string // (dev, ino) of regular files with several links -> first name
	where func(string) string
}

// add writes the entry for the O_PATH descriptor fd (stat st) as name; shown is its path
// for messages.
func (a *archiver) add(fd int, st unix.Stat_t, name, link, shown string) error {
	hdr := &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).Round(time.Second), Format: tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		return a.dirContents(fd, name, shown)
	case unix.S_IFLNK:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, link
		return a.tw.WriteHeader(hdr)
	case unix.S_IFREG:
		var sfs unix.Statfs_t
		if unix.Fstatfs(fd, &sfs) == nil && pseudoFS[int64(sfs.Type)] {
			a.warn(fmt.Sprintf("skipping %s: it is on a pseudo or FUSE file system", a.where(shown)))
			return nil
		}
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := a.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return a.tw.WriteHeader(hdr)
			}
			a.links[key] = name
		}
		// The inode just checked, reopened for reading; O_NONBLOCK in case of a mandatory lock.
		rfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			a.warn(fmt.Sprintf("skipping %s: %v", a.where(shown), err))
			return nil
		}
		f := os.NewFile(uintptr(rfd), shown)
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		// Exactly the size announced: a file that grows is cut, one that shrinks is padded.
		n, err := io.CopyN(a.tw, f, st.Size)
		if err != nil && err != io.EOF {
			return fmt.Errorf("reading %s: %w", a.where(shown), err)
		}
		if n < st.Size {
			a.warn(fmt.Sprintf("%s shrank while being copied: padded with zeros", a.where(shown)))
			if _, err := io.CopyN(a.tw, zeros{}, st.Size-n); err != nil {
				return err
			}
		}
		return nil
	}
	a.warn(fmt.Sprintf("skipping %s: it is %s (cp copies regular files, directories and symlinks)", a.where(shown), kind(st.Mode)))
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// dirContents adds every entry of the directory behind the O_PATH descriptor fd.
func (a *archiver) dirContents(fd int, name, shown string) error {
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) == nil && pseudoFS[int64(sfs.Type)] {
		a.warn(fmt.Sprintf("skipping the contents of %s: a pseudo or FUSE file system", a.where(shown)))
		return nil
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: a.where(shown), Err: err}
	}
	dir := os.NewFile(uintptr(dfd), shown)
	defer dir.Close()
	for {
		ents, err := dir.ReadDir(256)
		for _, e := range ents {
			if err := a.entry(dfd, e.Name(), path.Join(name, e.Name()), path.Join(shown, e.Name())); err != nil {
				return err
			}
		}
		if err == io.EOF || (err == nil && len(ents) == 0) {
			return nil
		}
		if err != nil {
			return &os.PathError{Op: "readdir", Path: a.where(shown), Err: err}
		}
	}
}

func (a *archiver) entry(dirfd int, base, name, shown string) error {
	fd, err := unix.Openat(dirfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		a.warn(fmt.Sprintf("skipping %s: %v", a.where(shown), err)) // gone meanwhile
		return nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: a.where(shown), Err: err}
	}
	link := ""
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if link, err = readlinkFD(fd); err != nil {
			return err
		}
	}
	return a.add(fd, st, name, link, shown)
}

// ExtractOptions says whose the extracted files are.
type ExtractOptions struct {
	// KeepOwner (cp -a) keeps the archive's uid and gid, shifted by UIDOffset/GIDOffset (a
	// container with --user-remap). Otherwise every file belongs to UID:GID, and set-user-ID
	// and set-group-ID bits are dropped (they were meant for another owner).
	KeepOwner            bool
	UID, GID             int
	UIDOffset, GIDOffset int
}

// Extract extracts the tar archive r at dst (a path inside the root), with docker's rules:
// dst an existing directory: the archive lands inside it; otherwise its top entry srcName
// becomes dst (a file replaces a file; a directory is made). srcName "" means the archive
// holds a directory's contents: they go into dst, made if missing. A dst that is a FIFO,
// socket or device is refused, never replaced. FIFOs, sockets and devices in the archive are
// skipped with a warning.
func (r *Root) Extract(dst, srcName string, srcIsDir bool, rd io.Reader, opt ExtractOptions, warn func(string)) error {
	if dst == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "cp: empty destination path")
	}
	target, rename := -1, ""
	fd, err := r.r.openat2(dst, unix.O_PATH, 0) // dst's own symlinks are followed, inside the root
	switch {
	case err == nil:
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			target = fd
			break
		}
		unix.Close(fd)
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			// Never replaced: `cp c:/x /dev/null` must not delete the host's /dev/null.
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: %s is %s: want a directory, a regular file or a new name", r.r.where(dst), kind(st.Mode))
		}
		if srcIsDir {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: cannot copy a directory to %s: it is %s", r.r.where(dst), kind(st.Mode))
		}
		if strings.HasSuffix(dst, "/") {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: %s is not a directory", r.r.where(dst))
		}
		rename = path.Base(dst)
	case errors.Is(err, fs.ErrNotExist):
		if !srcIsDir && strings.HasSuffix(dst, "/") {
			return errdefs.Errorf(errdefs.ErrNotFound, "cp: directory %s does not exist", r.r.where(dst))
		}
		rename = path.Base(path.Clean("/" + dst))
	default:
		return err
	}
	if target < 0 {
		// The parent must exist; dst itself is made by the archive's top entry.
		parent := path.Dir(path.Clean("/" + dst))
		pfd, err := r.r.openat2(parent, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
				return errdefs.Errorf(errdefs.ErrNotFound, "cp: directory %s does not exist", r.r.where(parent))
			}
			return err
		}
		target = pfd
		if srcName == "" {
			// Contents of a directory into a new directory dst.
			if err := unix.Mkdirat(pfd, rename, 0o755); err != nil && err != unix.EEXIST {
				unix.Close(pfd)
				return &os.PathError{Op: "mkdir", Path: r.r.where(dst), Err: err}
			}
			target, err = openBeneath(pfd, rename, unix.O_PATH|unix.O_DIRECTORY)
			unix.Close(pfd)
			if err != nil {
				return err
			}
			rename = ""
		}
	}
	defer unix.Close(target)
	x := &extractor{target: target, opt: opt, warn: warn, where: func(n string) string { return r.r.where(path.Join(dst, n)) }}
	tr := tar.NewReader(rd)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: reading the archive: %v", err)
		}
		name, err := entryName(hdr.Name, srcName, rename)
		if err != nil {
			return err
		}
		if name == "" {
			continue // the top directory itself when only contents travel
		}
		if err := x.extract(hdr, name, tr, srcName, rename); err != nil {
			return err
		}
	}
}

// entryName cleans an archive entry's name, refuses one that climbs out, and renames the top
// entry srcName to rename (when set).
func entryName(raw, srcName, rename string) (string, error) {
	name := path.Clean("/" + raw)[1:]
	if strings.HasPrefix(raw, "/") || slicesContains(strings.Split(raw, "/"), "..") {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: archive entry %q: absolute or with \"..\"", raw)
	}
	if rename != "" && srcName != "" {
		if name == srcName {
			return rename, nil
		}
		if rest, ok := strings.CutPrefix(name, srcName+"/"); ok {
			return rename + "/" + rest, nil
		}
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: archive entry %q is not under its top entry %q", raw, srcName)
	}
	return name, nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// openBeneath opens name (relative) beneath the directory dirfd without following any
// symlink and without leaving it.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(dirfd, name, &how)
		if (err == unix.EINTR || err == unix.EAGAIN) && tries < 16 {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

type extractor struct {
	target int
	opt    ExtractOptions
	warn   func(string)
	where  func(string) string
}

func (x *extractor) owner(hdr *tar.Header) (int, int) {
	if x.opt.KeepOwner {
		return hdr.Uid + x.opt.UIDOffset, hdr.Gid + x.opt.GIDOffset
	}
	return x.opt.UID, x.opt.GID
}

func (x *extractor) mode(hdr *tar.Header) uint32 {
	m := uint32(hdr.Mode & 0o7777)
	if !x.opt.KeepOwner {
		m &^= unix.S_ISUID | unix.S_ISGID
	}
	return m
}

func (x *extractor) extract(hdr *tar.Header, name string, body io.Reader, srcName, rename string) error {
	parent, base := path.Dir(name), path.Base(name)
	pfd, err := openBeneath(x.target, parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("cp: %s: %w", x.where(name), pathErrno(err))
	}
	defer unix.Close(pfd)
	uid, gid := x.owner(hdr)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: x.where(name), Err: err}
		}
		dfd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cp: %s: not a directory that can be written into: %w", x.where(name), err)
		}
		defer unix.Close(dfd)
		unix.Fchown(dfd, uid, gid)
		return unix.Fchmod(dfd, x.mode(hdr))
	case tar.TypeReg: // archive/tar reads the old TypeRegA as TypeReg
		f, err := x.create(pfd, base, name)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(f, body); err != nil {
			return fmt.Errorf("cp: writing %s: %w", x.where(name), err)
		}
		f.Chown(uid, gid) // before the mode: a chown clears set-user-ID bits
		if err := unix.Fchmod(int(f.Fd()), x.mode(hdr)); err != nil {
			return &os.PathError{Op: "chmod", Path: x.where(name), Err: err}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		unix.UtimesNanoAt(int(f.Fd()), "", ts, unix.AT_EMPTY_PATH)
		return f.Close()
	case tar.TypeSymlink:
		if err := x.clear(pfd, base, name); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: x.where(name), Err: err}
		}
		unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	case tar.TypeLink:
		old, err := entryName(hdr.Linkname, srcName, rename)
		if err != nil {
			return err
		}
		ofd, err := openBeneath(x.target, old, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("cp: hard link %s to %s: %w", x.where(name), old, pathErrno(err))
		}
		defer unix.Close(ofd)
		var st unix.Stat_t
		if err := unix.Fstat(ofd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "cp: hard link %s: its target %s is not a regular file of the archive", x.where(name), old)
		}
		if err := x.clear(pfd, base, name); err != nil {
			return err
		}
		if err := unix.Linkat(ofd, "", pfd, base, unix.AT_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "link", Path: x.where(name), Err: err}
		}
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	}
	x.warn(fmt.Sprintf("skipping %s: it is %s (cp copies regular files, directories and symlinks)", x.where(name), tarKind(hdr.Typeflag)))
	return nil
}

// create makes the regular file base in pfd, replacing a file (not a directory) that is
// there. O_EXCL|O_NOFOLLOW: it is always a new inode, never what a symlink points at.
func (x *extractor) create(pfd int, base, name string) (*os.File, error) {
	for tries := 0; ; tries++ {
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
		if err == unix.EEXIST && tries < 4 {
			if err := x.clear(pfd, base, name); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "create", Path: x.where(name), Err: err}
		}
		return os.NewFile(uintptr(fd), x.where(name)), nil
	}
}

// clear removes the regular file or symlink at base in pfd; a directory, FIFO, socket or
// device there is refused (a copy into /dev must not delete /dev/null).
func (x *extractor) clear(pfd int, base, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "stat", Path: x.where(name), Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFLNK:
	case unix.S_IFDIR:
		return errdefs.Errorf(errdefs.ErrConflict, "cp: cannot overwrite the directory %s with a non-directory", x.where(name))
	default:
		return errdefs.Errorf(errdefs.ErrConflict, "cp: %s is %s: cp replaces only regular files and symlinks", x.where(name), kind(st.Mode))
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlink", Path: x.where(name), Err: err}
	}
	return nil
}

// pathErrno explains the errors RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS gives.
func pathErrno(err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w (a symlink in the way: cp never writes through one)", err)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%w (it would leave the destination)", err)
	}
	return err
}

func tarKind(t byte) string {
	switch t {
	case tar.TypeFifo:
		return "a FIFO"
	case tar.TypeChar:
		return "a character device"
	case tar.TypeBlock:
		return "a block device"
	}
	return fmt.Sprintf("of tar type %q", t)
}
