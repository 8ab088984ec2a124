package spec

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/opts"
	"github.com/isulad-go/isulad/internal/rootfs"
)

// hookSpec is the --hook-spec file: OCI hooks in iSulad's format, which still names the
// deprecated prestart hooks.
type hookSpec struct {
	Prestart        []specs.Hook `json:"prestart,omitempty"`
	CreateRuntime   []specs.Hook `json:"createRuntime,omitempty"`
	CreateContainer []specs.Hook `json:"createContainer,omitempty"`
	StartContainer  []specs.Hook `json:"startContainer,omitempty"`
	Poststart       []specs.Hook `json:"poststart,omitempty"`
	Poststop        []specs.Hook `json:"poststop,omitempty"`
}

// maxConfigFile bounds the host files a request names (--hook-spec, a seccomp profile).
const maxConfigFile = 10 << 20

// ParseHookSpec reads a --hook-spec file: an absolute path to a regular JSON file of OCI hooks
// {"prestart":[...],"poststart":[...],"poststop":[...]} (createRuntime, createContainer and
// startContainer too). Each hook needs an absolute path.
//
// The prestart hooks become the first createRuntime hooks: runc (1.1) and crun (1.8) run
// prestart and then createRuntime at the same point of create, in the runtime's namespaces,
// with the same state, so this is what the runtime did anyway, without the spec's deprecated
// field.
func ParseHookSpec(p string) (*specs.Hooks, error) {
	if !path.IsAbs(p) {
		return nil, invalidf("--hook-spec %q: must be an absolute path", p)
	}
	data, err := rootfs.ReadFile("/", p, maxConfigFile)
	if err != nil {
		return nil, invalidf("--hook-spec %s: %v", p, err)
	}
	var h hookSpec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, invalidf("--hook-spec %s: invalid JSON hooks: %v", p, err)
	}
	if dec.More() {
		return nil, invalidf("--hook-spec %s: trailing data after the JSON object", p)
	}
	for kind, list := range map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
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
	return &specs.Hooks{
		CreateRuntime:   append(h.Prestart, h.CreateRuntime...),
		CreateContainer: h.CreateContainer,
		StartContainer:  h.StartContainer,
		Poststart:       h.Poststart,
		Poststop:        h.Poststop,
	}, nil
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
		if err := rootfs.CheckEnvTargetFile(hc.EnvTargetFile); err != nil {
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
