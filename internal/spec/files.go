package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/isulad-go/isulad/internal/opts"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
)

// hostResolvConf is read for the container's /etc/resolv.conf; tests replace it.
var hostResolvConf = "/etc/resolv.conf"

// WriteHostFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf (a copy of the host's)
// into a system container's rootfs. When /etc cannot be written (read-only rootfs or
// directory) it returns a warning for the user instead of an error. No symlink in the rootfs
// can make it write outside the rootfs: one that points out is an error.
func WriteHostFiles(rootfs, hostname string) (warning string, err error) {
	if hostname == "" {
		return "", invalidf("no hostname")
	}
	hosts := "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n" +
		"127.0.1.1\t" + hostname + "\n"
	files := []struct {
		name string
		data []byte
	}{
		{"/etc/hostname", []byte(hostname + "\n")},
		{"/etc/hosts", []byte(hosts)},
	}
	if rc, err := os.ReadFile(hostResolvConf); err == nil {
		files = append(files, struct {
			name string
			data []byte
		}{"/etc/resolv.conf", rc})
	}
	if err := mkdirAllInRoot(rootfs, "/etc"); err != nil {
		if readOnly(err) {
			return fmt.Sprintf("/etc of the rootfs %s is read-only: hostname, hosts and resolv.conf not written", rootfs), nil
		}
		return "", fmt.Errorf("writing host files: %w", err)
	}
	for _, f := range files {
		if err := writeResolved(rootfs, f.name, f.data); err != nil {
			if readOnly(err) {
				return fmt.Sprintf("%s of the rootfs %s is read-only: hostname, hosts and resolv.conf not (all) written", f.name, rootfs), nil
			}
			return "", fmt.Errorf("writing %s in the rootfs: %w", f.name, err)
		}
	}
	return "", nil
}

// writeResolved writes data to p (a container path) in rootfs with mode 0644: p is resolved
// inside the rootfs first (refused with errEscape if a symlink points out), so that a symlink
// whose target does not exist yet gets its directories made.
func writeResolved(rootfs, p string, data []byte) error {
	r, err := resolveInRoot(rootfs, p, false)
	if err != nil {
		return err
	}
	if err := mkdirAllInRoot(rootfs, path.Dir(r)); err != nil {
		return err
	}
	return writeFileInRoot(rootfs, r, data, 0o644)
}

func readOnly(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// WriteEnvTargetFile writes env as KEY=VALUE lines to p (a path inside the container, from
// --env-target-file), mode 0644, making missing parent directories. The path must stay inside
// the rootfs: ".." components and symlinks pointing out of it are refused.
func WriteEnvTargetFile(rootfs, p string, env []string) error {
	if err := checkEnvTargetFile(p); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, kv := range env {
		if strings.ContainsAny(kv, "\n") {
			return invalidf("--env-target-file: variable %q holds a newline", kv)
		}
		b.WriteString(kv)
		b.WriteByte('\n')
	}
	if err := writeResolved(rootfs, p, b.Bytes()); errors.Is(err, errEscape) {
		return invalidf("--env-target-file %s: %v", p, err)
	} else if err != nil {
		return fmt.Errorf("--env-target-file %s: %w", p, err)
	}
	return nil
}

func checkEnvTargetFile(p string) error {
	if !path.IsAbs(p) {
		return invalidf("--env-target-file %q: must be an absolute path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return invalidf("--env-target-file %q: must not contain \"..\"", p)
		}
	}
	if path.Clean(p) == "/" {
		return invalidf("--env-target-file %q: is the root directory", p)
	}
	return nil
}

// ParseHookSpec reads a --hook-spec file: an absolute path to a regular JSON file of OCI hooks
// {"prestart":[...],"poststart":[...],"poststop":[...]} (createRuntime, createContainer and
// startContainer too). Each hook needs an absolute path.
func ParseHookSpec(p string) (*specs.Hooks, error) {
	if !path.IsAbs(p) {
		return nil, invalidf("--hook-spec %q: must be an absolute path", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, invalidf("--hook-spec %s: %v", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, invalidf("--hook-spec %s: not a regular file", p)
	}
	if fi.Size() > 10<<20 {
		return nil, invalidf("--hook-spec %s: larger than 10MiB", p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, invalidf("--hook-spec %s: %v", p, err)
	}
	var h specs.Hooks
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, invalidf("--hook-spec %s: invalid JSON hooks: %v", p, err)
	}
	if dec.More() {
		return nil, invalidf("--hook-spec %s: trailing data after the JSON object", p)
	}
	for kind, list := range map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer, //nolint:staticcheck
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	} {
		for i, hk := range list {
			if !path.IsAbs(hk.Path) {
				return nil, invalidf("--hook-spec %s: %s hook %d: path %q must be absolute", p, kind, i, hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return nil, invalidf("--hook-spec %s: %s hook %d: timeout must be positive", p, kind, i)
			}
		}
	}
	return &h, nil
}

// ParseUserRemap parses --user-remap "uid:gid:offset": container root maps to host uid and
// gid, offset ids long (1..65535); the mapped ranges must fit below 2^32-1.
func ParseUserRemap(s string) (*IDMap, error) {
	uid, gid, size, err := opts.ParseUserRemap(s)
	if err != nil {
		return nil, err
	}
	return &IDMap{UID: uid, GID: gid, Size: size}, nil
}

// ValidateSystemOptions refuses combinations of system-container options that cannot work,
// with a message naming the flag and value.
func ValidateSystemOptions(cfg types.Config, hc types.HostConfig) error {
	if hc.NsChangeOpt != "" {
		if !hc.SystemContainer {
			return invalidf("--ns-change-opt %s: only with --system-container", hc.NsChangeOpt)
		}
		net, _, err := parseNsChangeOpt(hc.NsChangeOpt)
		if err != nil {
			return err
		}
		if net && hc.NetworkMode == "host" {
			return invalidf("--ns-change-opt %s: net cannot be used with --net host (it would change the host's sysctls)", hc.NsChangeOpt)
		}
		if hc.Privileged {
			return invalidf("--ns-change-opt %s: --privileged already leaves /proc/sys writable", hc.NsChangeOpt)
		}
	}
	if hc.UserRemap != "" {
		if !hc.SystemContainer {
			return invalidf("--user-remap %s: only with --system-container", hc.UserRemap)
		}
		if hc.ExternalRootfs == "" && (cfg.Image == "" || cfg.Image == "none") { // an image's layers are id-mapped
			return invalidf("--user-remap %s: needs --external-rootfs (the rootfs must belong to the mapped ids)", hc.UserRemap)
		}
		if _, err := ParseUserRemap(hc.UserRemap); err != nil {
			return err
		}
		if hc.Privileged {
			return invalidf("--user-remap %s: cannot be used with --privileged (privileged mode needs the host's user namespace)", hc.UserRemap)
		}
		if hc.NetworkMode == "host" {
			return invalidf("--user-remap %s: cannot be used with --net host (a user namespace cannot use the host's network namespace's sysfs)", hc.UserRemap)
		}
	}
	if hc.EnvTargetFile != "" {
		if err := checkEnvTargetFile(hc.EnvTargetFile); err != nil {
			return err
		}
		if hc.ExternalRootfs == "" && (cfg.Image == "" || cfg.Image == "none") { // or an image's rootfs
			return invalidf("--env-target-file %s: needs --external-rootfs", hc.EnvTargetFile)
		}
	}
	if hc.HookSpec != "" && !path.IsAbs(hc.HookSpec) {
		return invalidf("--hook-spec %q: must be an absolute path", hc.HookSpec)
	}
	if cfg.StopSignal != "" && strings.TrimSpace(cfg.StopSignal) == "" {
		return invalidf("--stop-signal %q: empty", cfg.StopSignal)
	}
	return nil
}
