package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Bounds of what is read: far above any real file of its kind, far below what would hurt the
// daemon.
const (
	maxResolvConf = 1 << 20  // the host's /etc/resolv.conf
	maxUserDB     = 32 << 20 // the rootfs' /etc/passwd and /etc/group
)

// hostResolvConf is read for the container's /etc/resolv.conf; tests replace it.
var hostResolvConf = "/etc/resolv.conf"

// WriteHostFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf (a copy of the host's)
// into a system container's rootfs. When /etc cannot be written (read-only rootfs or
// directory) it returns a warning for the user instead of an error. No symlink in the rootfs
// can make it write outside the rootfs (one that points out is an error), and a file there
// that is not a regular file (a FIFO, a device, a directory) is an error naming it.
func WriteHostFiles(rootfs, hostname string) (warning string, err error) {
	if hostname == "" {
		return "", errdefs.New(errdefs.ErrInvalidArgument, "no hostname")
	}
	hosts := "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n" +
		"127.0.1.1\t" + hostname + "\n"
	files := []struct {
		name, what string
		data       []byte
	}{
		{"/etc/hostname", "the container's hostname", []byte(hostname + "\n")},
		{"/etc/hosts", "the container's hosts", []byte(hosts)},
	}
	// The host's file, read as carefully as the rootfs' (it is commonly a symlink into /run).
	if rc, err := ReadFile("/", hostResolvConf, maxResolvConf); err == nil {
		files = append(files, struct {
			name, what string
			data       []byte
		}{"/etc/resolv.conf", "the host's resolv.conf", rc})
	}
	if err := MkdirAll(rootfs, "/etc"); err != nil {
		if readOnly(err) {
			return fmt.Sprintf("/etc of the rootfs %s is read-only: hostname, hosts and resolv.conf not written", rootfs), nil
		}
		return "", fmt.Errorf("writing host files: %w", err)
	}
	for _, f := range files {
		if err := WriteFile(rootfs, f.name, f.data, 0o644); err != nil {
			if readOnly(err) {
				return fmt.Sprintf("%s of the rootfs %s is read-only: hostname, hosts and resolv.conf not (all) written", f.name, rootfs), nil
			}
			return "", fmt.Errorf("writing %s: %w", f.what, err) // err names the file and the rootfs
		}
	}
	return "", nil
}

func readOnly(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// WriteEnvTargetFile writes env as KEY=VALUE lines to p (a path inside the container, from
// --env-target-file), mode 0644, making missing parent directories. The path must stay inside
// the rootfs: ".." components and symlinks pointing out of it are refused.
func WriteEnvTargetFile(rootfs, p string, env []string) error {
	if err := CheckEnvTargetFile(p); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, kv := range env {
		if strings.ContainsAny(kv, "\n") {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "--env-target-file: variable %q holds a newline", kv)
		}
		b.WriteString(kv)
		b.WriteByte('\n')
	}
	if err := WriteFile(rootfs, p, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--env-target-file %s: %w", p, err)
	}
	return nil
}

// CheckEnvTargetFile checks the form of --env-target-file: an absolute path without "..",
// not the root.
func CheckEnvTargetFile(p string) error {
	if !path.IsAbs(p) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--env-target-file %q: must be an absolute path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "--env-target-file %q: must not contain \"..\"", p)
		}
	}
	if path.Clean(p) == "/" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--env-target-file %q: is the root directory", p)
	}
	return nil
}

// IsSystemdInit tells whether cmd0, the container's command, is systemd: it is resolved inside
// rootfs (absolute, or through /usr/sbin:/usr/bin:/sbin:/bin), following symlinks without ever
// leaving the rootfs, and the final file must be a regular file named systemd in a
// lib/systemd directory (/sbin/init -> /lib/systemd/systemd). busybox's init is not. Nothing
// is opened but O_PATH descriptors, so no file in the rootfs can make it block.
func IsSystemdInit(rootfs, cmd0 string) bool {
	if cmd0 == "" || rootfs == "" {
		return false
	}
	var candidates []string
	if strings.Contains(cmd0, "/") {
		candidates = []string{path.Join("/", cmd0)}
	} else {
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			candidates = append(candidates, path.Join(d, cmd0))
		}
	}
	for _, c := range candidates {
		r, mode, err := Stat(rootfs, c)
		if err != nil || mode != unix.S_IFREG {
			continue
		}
		return path.Base(r) == "systemd" && strings.HasSuffix(path.Dir(r), "lib/systemd")
	}
	return false
}
