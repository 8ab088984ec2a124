package rootfs

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Bounds of what is read: far above any real file of its kind, far below what would hurt the
// daemon.
const maxUserDB = 32 << 20 // the rootfs' /etc/passwd and /etc/group

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
