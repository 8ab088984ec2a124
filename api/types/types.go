// Package types holds the docker-shaped structures that travel, JSON encoded, between the
// client and the daemon, and that the daemon stores on disk. Field names follow docker's
// (and iSulad's for host channels) so that `inspect` output and `-f` templates look familiar.
package types

import "time"

// HostChannel is one --host-channel: a size-limited tmpfs on the host, bind-mounted into the
// container. Field names are iSulad's.
type HostChannel struct {
	PathOnHost      string `json:"PathOnHost"`
	PathInContainer string `json:"PathInContainer"`
	Permissions     string `json:"Permissions"` // "rw" or "ro"
	Size            int64  `json:"Size"`        // bytes
}

// HostChannelStatus is the live view of a channel that inspect adds.
type HostChannelStatus struct {
	HostChannel
	Mounted   bool  `json:"Mounted"`
	UsedBytes int64 `json:"UsedBytes"`
}

// Mount is one --mount (or a -v bind / --tmpfs after parsing).
type Mount struct {
	Type     string `json:"Type"` // "bind" or "tmpfs"
	Source   string `json:"Source,omitempty"`
	Target   string `json:"Target"`
	ReadOnly bool   `json:"ReadOnly,omitempty"`
	// RecursiveReadOnly (bind, with ReadOnly and private propagation): the mounts below
	// Source are read-only too (the runtime's "rro" option).
	RecursiveReadOnly bool   `json:"RecursiveReadOnly,omitempty"`
	Propagation       string `json:"Propagation,omitempty"`
	TmpfsSize         int64  `json:"TmpfsSize,omitempty"`
	TmpfsMode         uint32 `json:"TmpfsMode,omitempty"`
}

// RestartPolicy as in docker, plus iSulad's "on-reboot".
type RestartPolicy struct {
	Name              string `json:"Name"` // "", "no", "always", "on-failure", "unless-stopped", "on-reboot"
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// LogConfig selects the log driver options (only json-file exists).
type LogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
}

// Config is the part of a container's configuration that does not depend on the host
// (docker's container.Config).
type Config struct {
	Hostname     string            `json:"Hostname"`
	User         string            `json:"User"`
	Env          []string          `json:"Env"`
	Cmd          []string          `json:"Cmd"`
	Image        string            `json:"Image"`
	WorkingDir   string            `json:"WorkingDir"`
	Tty          bool              `json:"Tty"`
	OpenStdin    bool              `json:"OpenStdin"`
	AttachStdin  bool              `json:"AttachStdin"`
	AttachStdout bool              `json:"AttachStdout"`
	AttachStderr bool              `json:"AttachStderr"`
	StopSignal   string            `json:"StopSignal,omitempty"`
	StopTimeout  *int              `json:"StopTimeout,omitempty"`
	Labels       map[string]string `json:"Labels,omitempty"`

	ExposedPorts PortSet `json:"ExposedPorts,omitempty"` // --expose (and the image's)
	// From images (api/types/image.go): Entrypoint nil means the image's; [""] clears it.
	Entrypoint []string            `json:"Entrypoint,omitempty"`
	Volumes    map[string]struct{} `json:"Volumes,omitempty"`
}

// HostConfig is the host-dependent configuration (docker's container.HostConfig plus
// iSulad's system-container fields).
type HostConfig struct {
	Binds          []string          `json:"Binds"`
	Mounts         []Mount           `json:"Mounts"`
	Tmpfs          map[string]string `json:"Tmpfs"`
	ReadonlyRootfs bool              `json:"ReadonlyRootfs"`
	CapAdd         []string          `json:"CapAdd"`
	CapDrop        []string          `json:"CapDrop"`
	Privileged     bool              `json:"Privileged"`
	SecurityOpt    []string          `json:"SecurityOpt"`
	RestartPolicy  RestartPolicy     `json:"RestartPolicy"`
	AutoRemove     bool              `json:"AutoRemove"`
	Runtime        string            `json:"Runtime"`
	NetworkMode    string            `json:"NetworkMode"` // none (loopback only), host, container:ID or a network
	LogConfig      LogConfig         `json:"LogConfig"`

	// Networking (api/types/network.go).
	PortBindings    PortMap  `json:"PortBindings,omitempty"`    // -p
	PublishAllPorts bool     `json:"PublishAllPorts,omitempty"` // -P
	IPv4Address     string   `json:"IPv4Address,omitempty"`     // --ip
	DNS             []string `json:"Dns,omitempty"`
	DNSSearch       []string `json:"DnsSearch,omitempty"`
	DNSOptions      []string `json:"DnsOptions,omitempty"`
	ExtraHosts      []string `json:"ExtraHosts,omitempty"` // --add-host NAME:IP

	// Resources.
	Memory       int64  `json:"Memory"`
	MemorySwap   int64  `json:"MemorySwap"`
	CPUShares    int64  `json:"CpuShares"`
	NanoCPUs     int64  `json:"NanoCpus"`
	PidsLimit    *int64 `json:"PidsLimit"`
	CgroupParent string `json:"CgroupParent"`

	// System containers (iSulad).
	ExternalRootfs  string        `json:"ExternalRootfs"`
	SystemContainer bool          `json:"SystemContainer"`
	HostChannel     *HostChannel  `json:"HostChannel"`  // the first channel, or null (iSulad's field)
	HostChannels    []HostChannel `json:"HostChannels"` // all of them
	NsChangeOpt     string        `json:"NsChangeOpt"`
	EnvTargetFile   string        `json:"EnvTargetFile"`
	UserRemap       string        `json:"UserRemap"`
	HookSpec        string        `json:"HookSpec"`
}

// CreateRequest is what the client sends to create a container.
type CreateRequest struct {
	Name       string     `json:"Name"`
	Config     Config     `json:"Config"`
	HostConfig HostConfig `json:"HostConfig"`
}

// State is a container's state as inspect shows it.
type State struct {
	Status     string    `json:"Status"` // created, running, paused, restarting, removing, exited, dead
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

// ContainerJSON is one element of `inspect` output.
type ContainerJSON struct {
	ID           string              `json:"Id"`
	Created      time.Time           `json:"Created"`
	Path         string              `json:"Path"`
	Args         []string            `json:"Args"`
	State        State               `json:"State"`
	Image        string              `json:"Image"`
	Name         string              `json:"Name"` // with docker's leading "/"
	RestartCount int                 `json:"RestartCount"`
	Driver       string              `json:"Driver"`
	LogPath      string              `json:"LogPath"`
	HostConfig   HostConfig          `json:"HostConfig"`
	Config       Config              `json:"Config"`
	HostChannels []HostChannelStatus `json:"HostChannels"`
	CgroupsPath  string              `json:"CgroupsPath"`
	BundlePath   string              `json:"BundlePath"`
	SystemdInit  bool                `json:"SystemdInit"`

	NetworkSettings *NetworkSettings `json:"NetworkSettings"`
}

// Container is one row of `ps`. Field names are docker's template names.
type Container struct {
	ID      string    `json:"ID"`
	Names   string    `json:"Names"`
	Image   string    `json:"Image"`
	Command string    `json:"Command"`
	Created time.Time `json:"Created"`
	State   string    `json:"State"`
	Status  string    `json:"Status"`
	Pid     int       `json:"Pid"`
	Ports   string    `json:"Ports"`
}

// Info is what `isula info` prints.
type Info struct {
	Containers        int               `json:"Containers"`
	ContainersRunning int               `json:"ContainersRunning"`
	ContainersPaused  int               `json:"ContainersPaused"`
	ContainersStopped int               `json:"ContainersStopped"`
	ServerVersion     string            `json:"ServerVersion"`
	DefaultRuntime    string            `json:"DefaultRuntime"`
	Runtimes          map[string]string `json:"Runtimes"` // name -> "usable" or why not
	CgroupVersion     string            `json:"CgroupVersion"`
	CgroupDriver      string            `json:"CgroupDriver"`
	GraphRoot         string            `json:"GraphRoot"`
	StateRoot         string            `json:"StateRoot"`
	KernelVersion     string            `json:"KernelVersion"`
	OperatingSystem   string            `json:"OperatingSystem"`
	NCPU              int               `json:"NCPU"`
	MemTotal          int64             `json:"MemTotal"`
	Name              string            `json:"Name"`
}

// ExecConfig is what `isula exec` sends.
type ExecConfig struct {
	Cmd         []string `json:"Cmd"`
	Env         []string `json:"Env"`
	User        string   `json:"User"`
	WorkingDir  string   `json:"WorkingDir"`
	Tty         bool     `json:"Tty"`
	AttachStdin bool     `json:"AttachStdin"`
	Detach      bool     `json:"Detach"`
	Privileged  bool     `json:"Privileged"`
}
