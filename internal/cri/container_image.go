package cri

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mergeImageConfig sets the process of the container cc from its CRI config c over its
// image's config, the way the kubelet expects (containerd's and cri-o's rules, which are
// docker's):
//   - Command replaces the image's Entrypoint; Args replace its Cmd; with a Command and no
//     Args, the image's Cmd is dropped (it was the arguments of another program);
//   - the image's Env comes first, a variable the CRI sets replaces the image's in place;
//   - WorkingDir is the CRI's, else the image's;
//   - the user is run_as_username, else run_as_user (with run_as_group as its group), else
//     the image's User; a group without a user is refused.
func mergeImageConfig(cc *ContainerConfig, c *runtimeapi.ContainerConfig, img Image, ref string) error {
	name := c.GetMetadata().GetName()
	switch {
	case len(c.Command) > 0:
		cc.Entrypoint, cc.Cmd = slices.Clone(c.Command), slices.Clone(c.Args)
	default:
		cc.Entrypoint = slices.Clone(img.Entrypoint)
		if len(cc.Entrypoint) == 1 && cc.Entrypoint[0] == "" {
			cc.Entrypoint = nil // docker's way of saying none
		}
		cc.Cmd = slices.Clone(c.Args)
		if len(c.Args) == 0 {
			cc.Cmd = slices.Clone(img.Cmd)
		}
	}
	if len(cc.Entrypoint)+len(cc.Cmd) == 0 {
		return invalidf("container %q: no command: neither the config nor image %q gives one", name, ref)
	}
	if cc.Entrypoint == nil {
		cc.Entrypoint = []string{} // given (empty), not "the image's"
	}
	cc.Env = slices.Clone(img.Env)
	for _, kv := range c.Envs {
		if kv.Key == "" || strings.ContainsAny(kv.Key, "=\x00") || bytes.IndexByte(kv.Value, 0) >= 0 {
			return invalidf("container %q: environment variable %q: want a name without = or NUL", name, kv.Key)
		}
		cc.Env = setEnv(cc.Env, kv.Key, string(kv.Value))
	}
	cc.WorkingDir = c.WorkingDir
	if cc.WorkingDir == "" {
		cc.WorkingDir = img.WorkingDir
	}
	sc := c.GetLinux().GetSecurityContext()
	user := ""
	if u := sc.GetRunAsUser(); u != nil {
		if u.Value < 0 || u.Value > 1<<32-2 {
			return invalidf("container %q: run_as_user %d: want a user ID", name, u.Value)
		}
		user = strconv.FormatInt(u.Value, 10)
	}
	if n := sc.GetRunAsUsername(); n != "" {
		if strings.ContainsAny(n, ":\x00\n") {
			return invalidf("container %q: run_as_username %q: want a user name", name, n)
		}
		user = n
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if user == "" {
			return invalidf("container %q: run_as_group %d is given without run_as_user or run_as_username", name, g.Value)
		}
		if g.Value < 0 || g.Value > 1<<32-2 {
			return invalidf("container %q: run_as_group %d: want a group ID", name, g.Value)
		}
		user += ":" + strconv.FormatInt(g.Value, 10)
	}
	if user == "" {
		user = img.User
	}
	cc.User = user
	return nil
}

// setEnv sets key in env: in place if it is there, else at the end.
func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
