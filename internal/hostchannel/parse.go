// Package hostchannel implements --host-channel: a size-limited tmpfs that the engine mounts
// at a path on the host and bind-mounts into one container (see docs/host-channel.md).
//
// The package has three parts: parsing and checking the flag (parse.go, shared by client and
// daemon), cross validation of one container's list of channels (validate.go), and the
// lifecycle driven by the daemon through a Manager (manager.go): durable records
// (records.go), create (create.go), mount through a root-only backing mount (mount.go), and
// remove and reconcile (remove.go).
package hostchannel

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/units"
)

// Sentinel errors. Every error this package returns wraps at most one of them, so the daemon
// can map it to a gRPC code with errors.Is.
var (
	// ErrInvalid: the input is wrong (syntax, range, forbidden path, ...). InvalidArgument.
	ErrInvalid = errors.New("invalid host channel")
	// ErrExists: the host path already exists or conflicts with another channel. AlreadyExists.
	ErrExists = errors.New("host channel conflict")
	// ErrNotFound: the Manager has no record of the channel (or it belongs to another owner). NotFound.
	ErrNotFound = errors.New("host channel not found")
	// ErrUnsafe: the host path was tampered with (replaced, swapped for a symlink) since the
	// engine created it; the engine refuses to touch it. FailedPrecondition.
	ErrUnsafe = errors.New("host channel path was tampered with")
	// ErrBusy: someone else's mount sits on the channel's host path. FailedPrecondition.
	ErrBusy = errors.New("host channel path is busy")
)

const (
	// DefaultMode is used when the mode field is empty or missing.
	DefaultMode = "rw"
	// DefaultSize (64 MiB) is used when the size field is empty or missing.
	DefaultSize int64 = 64 << 20

	formatHint = "want host:container[:rw|ro[:size]]"
	sizeHint   = "want digits with an optional fraction and an optional binary unit B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB, e.g. 64M"
)

// chError is the one error type of the package: a one-line message plus a sentinel.
type chError struct {
	msg  string
	kind error
}

func (e *chError) Error() string { return e.msg }
func (e *chError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &chError{msg: "host channel: " + fmt.Sprintf(format, args...), kind: kind}
}

// SizeError is returned by ParseSize; its message names the value and what is wanted.
type SizeError struct{ Value string }

func (e *SizeError) Error() string {
	return fmt.Sprintf("invalid size %q (%s)", e.Value, sizeHint)
}

// Unwrap makes a SizeError an ErrInvalid.
func (e *SizeError) Unwrap() error { return ErrInvalid }

// ParseSize is the strict size parser of the spec: digits with an optional fraction (`1.5`,
// not `.5` or `1.`), then an optional unit, with no space, sign or exponent. The units B, K,
// KB, KiB, M, MB, MiB, G, GB, GiB, T, TB and TiB are case-insensitive and all binary
// (32M = 33554432). A fraction is rounded down to whole bytes. The empty string, values that
// do not fit in an int64 and everything else are rejected with a *SizeError (an ErrInvalid).
func ParseSize(s string) (int64, error) {
	n, err := units.Parse(s, units.TiB)
	if err != nil {
		return 0, &SizeError{Value: s}
	}
	return n, nil
}

// Parse parses one --host-channel value:
//
//	<host path>:<container path>[:<rw|ro>[:<size limit>]]
//
// An empty or missing mode means rw, an empty or missing size 64M. The result has clean
// paths and is checked like Check does (syntax, forbidden paths and the size range against
// the page size and /proc/meminfo). Parse does not look at the host's file system; Validate
// does that.
func Parse(s string) (types.HostChannel, error) {
	fields := strings.Split(s, ":")
	if len(fields) < 2 || len(fields) > 4 {
		return types.HostChannel{}, errorf(ErrInvalid, "bad format %q (%s)", s, formatHint)
	}
	ch := types.HostChannel{PathOnHost: fields[0], PathInContainer: fields[1], Permissions: DefaultMode, Size: DefaultSize}
	if len(fields) >= 3 && fields[2] != "" {
		ch.Permissions = fields[2]
	}
	if len(fields) == 4 && fields[3] != "" {
		n, err := ParseSize(fields[3])
		if err != nil {
			return types.HostChannel{}, errorf(ErrInvalid, "%v", err)
		}
		ch.Size = n
	}
	return Check(ch)
}

// Check checks one channel as it comes from the API (or from Parse) and returns it in its
// canonical form: paths cleaned, an empty mode turned into rw. The size is taken as given
// (bytes); 0 is refused like any size below one page, so a raw API call cannot get an
// unlimited tmpfs. The daemon should store what Check returns.
func Check(ch types.HostChannel) (types.HostChannel, error) {
	var err error
	if ch.PathOnHost, err = checkHostPath(ch.PathOnHost); err != nil {
		return types.HostChannel{}, err
	}
	if ch.PathInContainer, err = checkContainerPath(ch.PathInContainer); err != nil {
		return types.HostChannel{}, err
	}
	if ch.Permissions == "" {
		ch.Permissions = DefaultMode
	}
	if ch.Permissions != "rw" && ch.Permissions != "ro" {
		return types.HostChannel{}, errorf(ErrInvalid, "invalid mode %q (want rw or ro)", ch.Permissions)
	}
	if err := checkSizeRange(ch.Size); err != nil {
		return types.HostChannel{}, err
	}
	return ch, nil
}

// Linux's limits on a path and on one of its components (PATH_MAX counts the final NUL).
const (
	pathMax = 4096
	nameMax = 255
)

// pseudoRoots are refused lexically, for both sides.
var pseudoRoots = []string{"/proc", "/sys", "/dev"}

// pathSide holds what differs between the two paths of a channel: their name in messages,
// an example, and how the root and the pseudo-filesystems are described.
type pathSide struct {
	name, example, root, inside string
}

var (
	hostSide      = pathSide{"host path", "/srv/channel", "is the root directory (want a new directory below /)", "the pseudo-filesystem "}
	containerSide = pathSide{"container path", "/channel", "is the container's root (want a directory below /)", ""}
)

func checkHostPath(p string) (string, error)      { return checkPath(hostSide, p) }
func checkContainerPath(p string) (string, error) { return checkPath(containerSide, p) }

// checkPath checks and cleans one side's path: absolute, not /, not in /proc, /sys or /dev.
func checkPath(side pathSide, p string) (string, error) {
	if p == "" {
		return "", errorf(ErrInvalid, "%s is empty (want an absolute path such as %s)", side.name, side.example)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", errorf(ErrInvalid, "%s %q contains a NUL byte (want a plain absolute path)", side.name, p)
	}
	if !filepath.IsAbs(p) {
		return "", errorf(ErrInvalid, "%s %q must be absolute", side.name, p)
	}
	c := filepath.Clean(p)
	if len(c) >= pathMax {
		return "", errorf(ErrInvalid, "%s %.64q... is %d bytes long (want at most %d, PATH_MAX less one)", side.name, c, len(c), pathMax-1)
	}
	for _, comp := range strings.Split(c[1:], "/") {
		if len(comp) > nameMax {
			return "", errorf(ErrInvalid, "%s %.64q...: component %.32q... is %d bytes long (want at most %d, NAME_MAX)", side.name, c, comp, len(comp), nameMax)
		}
	}
	if c == "/" {
		return "", errorf(ErrInvalid, "%s %q %s", side.name, p, side.root)
	}
	for _, r := range pseudoRoots {
		if within(c, r) {
			return "", errorf(ErrInvalid, "%s %q lies inside %s%s (want a path outside /proc, /sys and /dev)", side.name, p, side.inside, r)
		}
	}
	return c, nil
}

// within reports whether clean absolute path p is dir or below it.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// Hooks for tests.
var (
	pageSize    = os.Getpagesize
	readMeminfo = readProcMeminfo
)

func checkSizeRange(n int64) error {
	ps := int64(pageSize())
	if n < ps {
		return errorf(ErrInvalid, "size %d is below the minimum of one page (%d bytes)", n, ps)
	}
	total, avail, err := readMeminfo()
	if err != nil {
		return errorf(ErrInvalid, "cannot check size %d against the host's memory: %v", n, err)
	}
	if n > total/2 {
		return errorf(ErrInvalid, "size %d exceeds half of total memory (%d bytes)", n, total/2)
	}
	if n > avail {
		return errorf(ErrInvalid, "size %d exceeds the host's available memory (%d bytes)", n, avail)
	}
	return nil
}

// readProcMeminfo returns MemTotal and MemAvailable in bytes.
func readProcMeminfo() (total, avail int64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	total, avail = -1, -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/meminfo: bad %s %q", k, v)
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n *= 1024
		}
		if k == "MemTotal" {
			total = n
		} else {
			avail = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if total < 0 || avail < 0 {
		return 0, 0, errors.New("/proc/meminfo has no MemTotal or MemAvailable")
	}
	return total, avail, nil
}
