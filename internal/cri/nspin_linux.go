package cri

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/network"
)

// A pod's namespaces are held without any process: a thread of the daemon unshares them,
// configures them (hostname, loopback up, sysctls) and bind-mounts its /proc/thread-self/ns
// files onto files of the pod's state directory, then exits. The bind mounts keep the
// namespaces alive; the pod's containers join them by path in their OCI spec. This is what
// cri-o's pinns does (see docs/cri.md for the measurement against a pause container).

// nsKind is a namespace that can be pinned.
type nsKind string

const (
	nsNet nsKind = "net"
	nsIPC nsKind = "ipc"
	nsUTS nsKind = "uts"
	// nsPID is pinned too, but made by a pod init (podinit_linux.go), not by unshare.
	nsPID nsKind = "pid"
)

var nsFlags = map[nsKind]int{nsNet: unix.CLONE_NEWNET, nsIPC: unix.CLONE_NEWIPC, nsUTS: unix.CLONE_NEWUTS}

// pinRequest is what a pod's new namespaces get before any container joins them.
type pinRequest struct {
	Dir      string   // the pod's state directory (exists, root's)
	Kinds    []nsKind // the namespaces to make; the others stay the host's
	Hostname string   // set in the new UTS namespace
	Sysctls  map[string]string
}

// pinNamespaces makes the namespaces of req.Kinds and returns the path of each pinned one.
// On failure nothing is left mounted and no file is left in req.Dir.
func pinNamespaces(req pinRequest) (map[nsKind]string, error) {
	if len(req.Kinds) == 0 {
		return map[nsKind]string{}, nil
	}
	flags := 0
	for _, k := range req.Kinds {
		flags |= nsFlags[k]
	}
	paths := map[nsKind]string{}
	for _, k := range req.Kinds {
		p := filepath.Join(req.Dir, string(k))
		// O_EXCL: a file left by an earlier attempt is a bug to see, not to mount over.
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
		if err != nil {
			unpinNamespaces(req.Dir)
			return nil, fmt.Errorf("pod namespaces: %w", err)
		}
		f.Close()
		paths[k] = p
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked: when this goroutine returns, the runtime ends the thread
		// instead of reusing it in namespaces no other goroutine expects.
		runtime.LockOSThread()
		errc <- configureInNewNamespaces(flags, req, paths)
	}()
	if err := <-errc; err != nil {
		unpinNamespaces(req.Dir)
		return nil, err
	}
	return paths, nil
}

// configureInNewNamespaces runs on a locked thread that is thrown away afterwards.
func configureInNewNamespaces(flags int, req pinRequest, paths map[nsKind]string) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("pod namespaces: unshare: %w", err)
	}
	if flags&unix.CLONE_NEWUTS != 0 && req.Hostname != "" {
		if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
			return fmt.Errorf("pod hostname %q: %w", req.Hostname, err)
		}
	}
	if flags&unix.CLONE_NEWNET != 0 {
		if err := network.LoopbackUp(); err != nil {
			return fmt.Errorf("pod network namespace: bringing lo up: %w", err)
		}
	}
	// /proc/sys resolves net.* and the IPC sysctls in the namespaces of the opening thread.
	for name, value := range req.Sysctls {
		if err := writeSysctl(name, value); err != nil {
			return err
		}
	}
	const self = "/proc/thread-self/ns/"
	for k, p := range paths {
		if err := unix.Mount(self+string(k), p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pod namespaces: pinning %s on %s: %w", k, p, err)
		}
	}
	return nil
}

// writeSysctlsIn writes sysctls in the pinned network namespace at netns, from a thread that
// joins it and is thrown away afterwards.
func writeSysctlsIn(netns string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("pod network namespace: %w", err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("pod network namespace: setns: %w", err)
			return
		}
		for name, value := range sysctls {
			if err := writeSysctl(name, value); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	return <-errc
}

// unpinNamespaces unmounts and removes whatever pinNamespaces made in dir. Idempotent.
func unpinNamespaces(dir string) error {
	var errs []error
	for _, k := range []nsKind{nsNet, nsIPC, nsUTS, nsPID} {
		p := filepath.Join(dir, string(k))
		for {
			// A namespace file mounted twice (a retried pin) needs two unmounts.
			err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			if err != nil {
				if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("unpinning %s: %w", p, err))
				}
				break
			}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// namespacePinned tells whether p is a pinned namespace file (a mount of an nsfs inode).
func namespacePinned(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// sysctlName is a sysctl's name in either of the kubelet's spellings (net.ipv4.ip_forward or
// net/ipv4/conf/eth0.100/forwarding).
var sysctlName = regexp.MustCompile(`^[a-zA-Z0-9_]+([./][a-zA-Z0-9_-]+([.][a-zA-Z0-9_-]+)*)*$`)

// sysctlPath turns a sysctl name into its path under /proc/sys.
func sysctlPath(name string) (string, error) {
	if !sysctlName.MatchString(name) || strings.Contains(name, "..") {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "sysctl %q: not a sysctl name", name)
	}
	if strings.Contains(name, "/") {
		return name, nil
	}
	return strings.ReplaceAll(name, ".", "/"), nil
}

// sysctlNamespace is the namespace a sysctl belongs to, or "" for one of the whole node
// (refused in a pod).
func sysctlNamespace(name string) nsKind {
	p, err := sysctlPath(name)
	if err != nil {
		return ""
	}
	switch {
	case strings.HasPrefix(p, "net/"):
		return nsNet
	case p == "kernel/sem", p == "kernel/shm_rmid_forced", strings.HasPrefix(p, "kernel/shm"),
		strings.HasPrefix(p, "kernel/msg"), strings.HasPrefix(p, "fs/mqueue/"):
		return nsIPC
	case p == "kernel/hostname", p == "kernel/domainname":
		return nsUTS
	}
	return ""
}

// writeSysctl writes one sysctl below /proc/sys without following a symbolic link.
func writeSysctl(name, value string) error {
	p, err := sysctlPath(name)
	if err != nil {
		return err
	}
	root, err := unix.Open("/proc/sys", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, p, &unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "sysctl %s=%q: %v", name, value, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "sysctl %s=%q: %v", name, value, err)
	}
	return nil
}
