package types

import "time"

// CopyStat describes the path a `cp` copies out of a container (the first message of the
// archive stream), so the client can apply docker's rules for where it lands.
type CopyStat struct {
	Name       string `json:"Name"` // base name of the path, the archive's top entry
	Size       int64  `json:"Size"`
	Mode       uint32 `json:"Mode"` // os.FileMode bits
	LinkTarget string `json:"LinkTarget,omitempty"`
}

// CopyToHeader is the first message of `cp SRC CONTAINER:DST`.
type CopyToHeader struct {
	ID   string `json:"ID"`
	Path string `json:"Path"` // DST inside the container
	// SrcName is the archive's top entry ("" when SRC ends in "/." and only its contents
	// travel); SrcIsDir tells whether it is a directory.
	SrcName  string `json:"SrcName"`
	SrcIsDir bool   `json:"SrcIsDir"`
	// CopyUIDGID (-a) keeps the archive's owners; otherwise files belong to the container's root.
	CopyUIDGID bool `json:"CopyUIDGID"`
}

// Stats is one sample of a container's resource use, from its cgroup files (cumulative
// counters as the kernel keeps them, and the CPU percentage since the previous sample).
type Stats struct {
	ID         string    `json:"ID"`
	Name       string    `json:"Name"`
	Read       time.Time `json:"Read"`
	CPUPercent float64   `json:"CPUPercent"`
	CPUUsageNs uint64    `json:"CPUUsageNs"` // cpuacct.usage (v1) or cpu.stat usage_usec*1000 (v2)
	MemUsage   uint64    `json:"MemUsage"`   // usage minus inactive file cache, as docker shows it
	MemLimit   uint64    `json:"MemLimit"`   // the cgroup's limit, or the host's memory when unlimited
	PIDs       uint64    `json:"PIDs"`
	BlockRead  uint64    `json:"BlockRead"`
	BlockWrite uint64    `json:"BlockWrite"`
	NetRx      uint64    `json:"NetRx"` // every interface of the container's network namespace but lo
	NetTx      uint64    `json:"NetTx"`
	// HostChannels is the use of the container's channels (their pages are charged to the
	// container's memory).
	HostChannels []ChannelUsage `json:"HostChannels,omitempty"`
}

// ChannelUsage is one host channel's used and total bytes (statfs of its tmpfs).
type ChannelUsage struct {
	PathInContainer string `json:"PathInContainer"`
	Used            uint64 `json:"Used"`
	Size            uint64 `json:"Size"`
}

// Event is one entry of the daemon's event log.
type Event struct {
	Type     string            `json:"Type"`   // "container"
	Action   string            `json:"Action"` // create, start, die, ...
	ID       string            `json:"ID"`
	Attrs    map[string]string `json:"Attributes,omitempty"` // name, exitCode, signal, path...
	Time     time.Time         `json:"Time"`
	TimeNano int64             `json:"TimeNano"`
}

// UpdateConfig is what `isula update` changes; nil or zero fields are left as they are.
type UpdateConfig struct {
	Memory        int64          `json:"Memory,omitempty"`
	MemorySwap    int64          `json:"MemorySwap,omitempty"` // -1: unlimited
	NanoCPUs      int64          `json:"NanoCpus,omitempty"`
	CPUShares     int64          `json:"CpuShares,omitempty"`
	PidsLimit     *int64         `json:"PidsLimit,omitempty"` // <= 0: unlimited
	RestartPolicy *RestartPolicy `json:"RestartPolicy,omitempty"`
	// HostChannels resizes channels: container path -> new size in bytes.
	HostChannels map[string]int64 `json:"HostChannels,omitempty"`
}

// Volume is a named volume of the local driver: a directory under --graph, bind-mounted
// where a container names it (-v NAME:/path).
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"` // "local"
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Scope      string            `json:"Scope"` // "local"
	// UsedBy lists the containers that mount it (inspect and ls only).
	UsedBy []string `json:"UsedBy,omitempty"`
}
