// Package runopts holds the flags of create and run and turns them into a create request:
// one definition for the full client (internal/cli) and the daemon, which parses the command
// lines the light front (cmd/isula/isula.c) sends (PlanRun) the same way. It links no gRPC.
package runopts

import (
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/opts"
)

// Options are the flags shared by create and run.
type Options struct {
	Interactive, TTY, AutoRemove  bool
	name, hostname, user, workdir string
	env, envFile                  []string
	labels                        []string

	memory, memorySwap, cpus string
	cpuShares                int64
	pidsLimit                int64

	volumes, mounts, tmpfs []string
	readOnly               bool
	capAdd, capDrop        []string
	privileged             bool
	securityOpt            []string
	stopSignal             string
	stopTimeout            int
	restart                string
	runtime                string
	network                string
	net                    netOptions // network_opts.go
	logOpts                []string

	externalRootfs  string
	systemContainer bool
	hostChannels    []string
	nsChangeOpt     string
	envTargetFile   string
	userRemap       string
	hookSpec        string
	cgroupParent    string

	Image ImageOptions // --pull, --entrypoint

	flags *pflag.FlagSet // to know which flags were given
}

// ImageOptions are create's and run's image flags.
type ImageOptions struct {
	Pull       string
	entrypoint string
}

func addImageFlags(fs *pflag.FlagSet, o *ImageOptions) {
	fs.StringVar(&o.Pull, "pull", "missing", "pull the image: missing (when not here), always, never")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "replace the image's entrypoint (\"\" clears it)")
}

// RunOptions are run's flags: the container's, and -d and --sig-proxy.
type RunOptions struct {
	Options
	Detach   bool
	SigProxy bool
}

// AddRunFlags defines run's flags on fs.
func AddRunFlags(fs *pflag.FlagSet, o *RunOptions) {
	fs.BoolVarP(&o.Detach, "detach", "d", false, "run in the background and print the container ID")
	fs.BoolVar(&o.SigProxy, "sig-proxy", true, "forward received signals to the container (not with -t)")
	AddFlags(fs, &o.Options)
}

// AddFlags defines the container flags of create and run on fs.
func AddFlags(fs *pflag.FlagSet, o *Options) {
	o.flags = fs
	fs.SetInterspersed(false) // flags stop at the image: isula run IMG sh -c '...'
	addImageFlags(fs, &o.Image)
	fs.Bool("help", false, "print usage") // -h is --hostname, as in docker
	fs.BoolVarP(&o.Interactive, "interactive", "i", false, "keep stdin open and forward it")
	fs.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	fs.BoolVar(&o.AutoRemove, "rm", false, "remove the container when it exits")
	fs.StringVar(&o.name, "name", "", "name the container")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "the container's host name")
	stringArrayVarP(fs, &o.env, "env", "e", "set an environment variable (KEY=VALUE, or KEY to copy it from here)")
	stringArrayVarP(fs, &o.envFile, "env-file", "", "read environment variables from a file")
	stringArrayVarP(fs, &o.labels, "label", "l", "set a label (KEY=VALUE)")
	fs.StringVarP(&o.user, "user", "u", "", "user name or uid[:group or gid]")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&o.memory, "memory", "m", "", "memory limit (e.g. 512m, 1g)")
	fs.StringVar(&o.memorySwap, "memory-swap", "", "memory plus swap limit; -1 for unlimited swap")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&o.cpus, "cpus", "", "number of CPUs (e.g. 1.5)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "maximum number of processes (-1 for unlimited)")
	stringArrayVarP(fs, &o.volumes, "volume", "v", "bind mount /host/path:/container/path[:ro|rw,...]")
	stringArrayVarP(fs, &o.mounts, "mount", "", "mount: type=bind|tmpfs,source=...,target=...[,readonly]")
	stringArrayVarP(fs, &o.tmpfs, "tmpfs", "", "mount a tmpfs: /container/path[:size=64m,mode=1777]")
	fs.BoolVar(&o.readOnly, "read-only", false, "mount the root file system read-only")
	stringArrayVarP(fs, &o.capAdd, "cap-add", "", "add a Linux capability")
	stringArrayVarP(fs, &o.capDrop, "cap-drop", "", "drop a Linux capability")
	fs.BoolVar(&o.privileged, "privileged", false, "give extended privileges to the container")
	stringArrayVarP(fs, &o.securityOpt, "security-opt", "", "security options: seccomp=unconfined|FILE, no-new-privileges")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "signal to stop the container (default SIGTERM)")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "seconds to wait for a stop before killing")
	fs.StringVar(&o.restart, "restart", "no", "restart policy: no, always, on-failure[:N], unless-stopped, on-reboot")
	fs.StringVar(&o.runtime, "runtime", "", "OCI runtime (runc or crun)")
	fs.StringVar(&o.network, "network", "", "network: none (loopback only, default), host, container:ID or a network's name")
	fs.StringVar(&o.network, "net", "", "network (same as --network)")
	o.net.addFlags(fs)
	stringArrayVarP(fs, &o.logOpts, "log-opt", "", "log driver option: max-size=SIZE, max-file=N")
	fs.StringVar(&o.externalRootfs, "external-rootfs", "", "root file system directory (with the image name none)")
	fs.BoolVar(&o.systemContainer, "system-container", false, "run a system container (an init as PID 1)")
	stringArrayVarP(fs, &o.hostChannels, "host-channel", "", "share a tmpfs with the host: host:container[:rw|ro[:size]] (repeatable)")
	fs.StringVar(&o.nsChangeOpt, "ns-change-opt", "", "writable namespaced sysctls: net, ipc (system containers)")
	fs.StringVar(&o.envTargetFile, "env-target-file", "", "write the environment to this file in the rootfs at start")
	fs.StringVar(&o.userRemap, "user-remap", "", "user namespace mapping uid:gid:offset (system containers)")
	fs.StringVar(&o.hookSpec, "hook-spec", "", "JSON file with OCI hooks")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "parent cgroup of the container")
	fs.SortFlags = false
}

// BuildRequest turns the flags, the image and the command into a create request, with every
// value checked by the daemon's own validators. lookup reads the client's environment.
func (o *Options) BuildRequest(image string, cmd []string, detach bool, lookup func(string) (string, bool)) (*types.CreateRequest, error) {
	req := &types.CreateRequest{Name: o.name}
	c, hc := &req.Config, &req.HostConfig
	changed := func(n string) bool { return o.flags != nil && o.flags.Changed(n) }

	c.Image = image
	c.Cmd = cmd
	if changed("entrypoint") {
		c.Entrypoint = []string{o.Image.entrypoint} // [""] clears the image's
	}
	c.Hostname = o.hostname
	c.User = o.user
	c.WorkingDir = o.workdir
	c.Tty = o.TTY
	c.OpenStdin = o.Interactive
	c.AttachStdin = o.Interactive && !detach
	c.AttachStdout = !detach
	c.AttachStderr = !detach

	// Environment: files first, then -e, as docker.
	var env []string
	for _, f := range o.envFile {
		e, err := opts.ParseEnvFile(f)
		if err != nil {
			return nil, err
		}
		env = append(env, e...)
	}
	e, err := ParseEnvWith(o.env, lookup)
	if err != nil {
		return nil, err
	}
	c.Env = append(env, e...)

	if len(o.labels) > 0 {
		c.Labels = map[string]string{}
		for _, l := range o.labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return nil, invalid("invalid --label %q (want KEY=VALUE)", l)
			}
			c.Labels[k] = v
		}
	}
	if o.stopSignal != "" {
		sig, err := opts.ParseSignal(o.stopSignal)
		if err != nil {
			return nil, opts.WithFlag(err, "--stop-signal")
		}
		c.StopSignal = opts.SignalName(sig)
	}
	if changed("stop-timeout") {
		t := o.stopTimeout
		c.StopTimeout = &t
	}

	// Resources.
	if o.memory != "" {
		if hc.Memory, err = opts.ParseMemory(o.memory); err != nil {
			return nil, err
		}
	}
	if o.memorySwap != "" {
		if hc.MemorySwap, err = opts.ParseMemorySwap(o.memorySwap); err != nil {
			return nil, err
		}
	}
	if o.cpus != "" {
		if hc.NanoCPUs, err = opts.ParseCPUs(o.cpus); err != nil {
			return nil, err
		}
	}
	hc.CPUShares = o.cpuShares
	if changed("pids-limit") {
		p := o.pidsLimit
		hc.PidsLimit = &p
	}
	hc.CgroupParent = o.cgroupParent

	// Mounts: -v stays as given in Binds (docker's shape), --mount goes to Mounts, --tmpfs
	// to the Tmpfs map; each checked here, and all together by ValidateCreate.
	for _, v := range o.volumes {
		if _, err := opts.ParseVolume(v); err != nil {
			return nil, err
		}
		hc.Binds = append(hc.Binds, v)
	}
	for _, s := range o.mounts {
		m, err := opts.ParseMount(s)
		if err != nil {
			return nil, err
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	for _, s := range o.tmpfs {
		m, err := opts.ParseTmpfs(s)
		if err != nil {
			return nil, err
		}
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		if _, dup := hc.Tmpfs[m.Target]; dup {
			return nil, invalid("invalid --tmpfs %q: %s is given twice", s, m.Target)
		}
		_, options, _ := strings.Cut(s, ":")
		hc.Tmpfs[m.Target] = options
	}
	hc.ReadonlyRootfs = o.readOnly

	// Security.
	hc.CapAdd = o.capAdd
	hc.CapDrop = o.capDrop
	hc.Privileged = o.privileged
	hc.SecurityOpt = o.securityOpt

	// Lifecycle.
	if hc.RestartPolicy, err = opts.ParseRestartPolicy(o.restart); err != nil {
		return nil, err
	}
	hc.AutoRemove = o.AutoRemove
	hc.Runtime = o.runtime
	hc.NetworkMode = o.network
	if err := o.net.apply(c, hc); err != nil {
		return nil, err
	}
	if len(o.logOpts) > 0 {
		hc.LogConfig = types.LogConfig{Type: "json-file", Config: map[string]string{}}
		for _, l := range o.logOpts {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return nil, invalid("invalid --log-opt %q (want max-size=SIZE or max-file=N)", l)
			}
			hc.LogConfig.Config[k] = v
		}
	}

	// System containers and host channels.
	if o.externalRootfs != "" {
		p, err := filepath.Abs(o.externalRootfs)
		if err != nil {
			return nil, invalid("invalid --external-rootfs %q: %v", o.externalRootfs, err)
		}
		hc.ExternalRootfs = p
	}
	hc.SystemContainer = o.systemContainer
	for _, s := range o.hostChannels {
		ch, err := hostchannel.Parse(s)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "host channel: ")
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid --host-channel %q: %s", s, msg)
		}
		hc.HostChannels = append(hc.HostChannels, ch)
	}
	if len(hc.HostChannels) > 0 {
		first := hc.HostChannels[0]
		hc.HostChannel = &first
	}
	hc.NsChangeOpt = o.nsChangeOpt
	hc.EnvTargetFile = o.envTargetFile
	hc.UserRemap = o.userRemap
	if o.hookSpec != "" {
		p, err := filepath.Abs(o.hookSpec)
		if err != nil {
			return nil, invalid("invalid --hook-spec %q: %v", o.hookSpec, err)
		}
		hc.HookSpec = p
	}

	if err := opts.ValidateCreate(req); err != nil {
		return nil, err
	}
	return req, nil
}

// ParseEnvWith parses -e values; a bare KEY takes its value from lookup (nil: the process
// environment).
func ParseEnvWith(list []string, lookup func(string) (string, bool)) ([]string, error) {
	if lookup == nil {
		return opts.ParseEnv(list)
	}
	return opts.ParseEnvLookup(list, lookup)
}

func invalid(format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, args...)
}
