package cri

import (
	"context"
	"io"
	"time"

	"github.com/isulad-go/isulad/api/types"
)

// Engine is what the CRI needs from the daemon (internal/daemon/cri.go implements it): the
// engine's own containers, driven by ID. It speaks engine types only, never CRI ones.
type Engine interface {
	// CreateContainer creates (does not start) a container; it is an ordinary engine container.
	CreateContainer(ctx context.Context, c ContainerConfig) (id string, warnings []string, err error)
	StartContainer(ctx context.Context, id string) error
	// StopContainer stops a running container, killing it after timeout; a stopped one is left.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// RemoveContainer removes a container, killing it first if it runs.
	RemoveContainer(ctx context.Context, id string) error
	// Container is one container's state; the error is errdefs.ErrNotFound when it is gone.
	Container(id string) (ContainerState, error)
	// Containers lists every container that carries label key (running or not).
	Containers(label string) []ContainerState
	// Exec runs a process in a running container and returns its exit code.
	Exec(ctx context.Context, id string, p ExecProcess) (int, error)
	// Attach connects to a running container's stdio until it exits or ctx ends.
	Attach(ctx context.Context, id string, s Streams) error
	// UpdateResources changes a container's limits, live when it runs.
	UpdateResources(ctx context.Context, id string, r Resources) error
	// Stats reads a container's usage from its cgroup and storage.
	Stats(id string) (ContainerStats, error)
	// ReopenLog makes the writer of a running container's log reopen it (after rotation).
	ReopenLog(ctx context.Context, id string) error
	// MemTotal is the node's memory, for the host-channel bound.
	MemTotal() int64
}

// ContainerConfig is a container the CRI asks for, in the engine's terms.
type ContainerConfig struct {
	Name   string
	Labels map[string]string // the CRI's own (metadata, pod, annotations) and the user's
	Image  string            // the reference as the kubelet gave it, for display
	// ImageID is the image (sha256:<config digest>) the reference resolved to: the rootfs is a
	// copy-on-write layer over it, made and removed with the container, and the image is in
	// use (not removable) meanwhile.
	ImageID string

	// Entrypoint and Cmd are the process, already merged with the image's config the CRI's
	// way (mergeImageConfig): the engine takes them as given, never the image's instead.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string // name, uid or uid:gid, resolved in the rootfs
	// SupplementalGroups are added to the groups the user has in the rootfs (the CRI's Merge
	// policy), or are all the groups with SupplementalGroupsStrict (its Strict policy); the
	// primary group is one of them in both cases.
	SupplementalGroups       []uint32
	SupplementalGroupsStrict bool
	Tty, Stdin               bool
	Hostname                 string

	// Namespaces the container joins (by the path of a pinned namespace) or shares with the
	// host (HostNamespace); a kind that is absent is private.
	Namespaces map[string]string // "network", "ipc", "uts", "pid" -> path or HostNamespace

	Mounts []types.Mount
	// ImageMounts are images of the store mounted read-only (the CRI's image volumes).
	ImageMounts    []ImageMount
	LogPath        string // absolute; written in the CRI log format by the shim
	CgroupParent   string
	Resources      Resources
	Privileged     bool
	ReadonlyRootfs bool
	CapAdd         []string
	CapDrop        []string
	NoNewPrivs     bool
	// Seccomp is "" (the engine's default profile), "unconfined" or the path of a profile.
	Seccomp string
	// MaskedPaths and ReadonlyPaths replace the engine's defaults when not nil.
	MaskedPaths, ReadonlyPaths []string

	SystemContainer bool
	HostChannels    []types.HostChannel
}

// ImageMount is an image (or its directory SubPath) mounted read-only at Target.
type ImageMount struct {
	ImageID string
	Target  string
	SubPath string
}

// HostNamespace in ContainerConfig.Namespaces is the host's namespace of that kind.
const HostNamespace = "host"

// Resources are the limits CRI can set. Zero means unlimited (or the default).
type Resources struct {
	CPUShares      int64
	CPUQuota       int64
	CPUPeriod      int64
	CPUsetCPUs     string
	CPUsetMems     string
	MemoryLimit    int64
	MemorySwap     int64
	PidsLimit      int64
	OOMScoreAdj    int64
	HugepageLimits map[string]uint64
}

// ContainerState is a container as the engine sees it.
type ContainerState struct {
	ID         string
	Name       string
	Labels     map[string]string
	Image      string
	Args       []string
	Status     string // the engine's: created, running, paused, restarting, removing, exited, dead
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	Created    time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	LogPath    string
	Mounts     []types.Mount
	Resources  Resources
	// User is the identity of the container's process, from its OCI spec (nil: not known).
	User *User
}

// User is a process's identity: user, primary group and supplementary groups.
type User struct {
	UID, GID uint32
	Groups   []uint32
}

// ExecProcess is a process to run in a container.
type ExecProcess struct {
	Args    []string
	Tty     bool
	Size    [2]uint16 // the terminal's size at the start (width, height), if known
	Streams Streams
}

// Streams are the client's ends of a process's stdio. Nil ones are not connected.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan [2]uint16 // width, height
}

// ContainerStats are a container's usage now.
type ContainerStats struct {
	Timestamp        time.Time
	CPUUsageNanos    uint64
	MemoryWorkingSet uint64
	MemoryUsage      uint64
	MemoryRSS        uint64
	PageFaults       uint64
	MajorPageFaults  uint64
	WritableBytes    uint64 // of the rootfs's writable layer, when the engine knows it
	WritableInodes   uint64
	WritableMount    string // where that layer lives
}

// Image is an image of the engine's store, as the CRI shows it.
type Image struct {
	ID          string   // sha256:<config digest>
	RepoTags    []string // full names: docker.io/library/busybox:latest
	RepoDigests []string // repo@sha256:<manifest digest>
	Size        uint64   // unpacked
	// The image's config: the CRI's command, args, env and working dir are merged over it.
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	// Config is the image's OCI config as stored (JSON), for a verbose ImageStatus.
	Config []byte
}

// PullAuth is the login a pull request carries (the kubelet's, from the pod's image pull
// secrets): used for that pull only, never stored.
type PullAuth struct {
	ServerAddress string // the registry it is for; empty: the image's registry and its mirrors
	Username      string
	Password      string
	Auth          string // base64(user:password)
	IdentityToken string
	RegistryToken string
}

// ImageFsUsage is the space the image store takes on its filesystem.
type ImageFsUsage struct {
	Mountpoint string // the store's directory
	UsedBytes  uint64
	InodesUsed uint64
}

// Images is the engine's image store as the CRI needs it (internal/daemon/cri_images.go).
type Images interface {
	// Resolve finds an image by ID (or ID prefix), name or repo@digest; errdefs.ErrNotFound
	// when the node does not have it.
	Resolve(ctx context.Context, ref string) (Image, error)
	// List is every image the node has.
	List(ctx context.Context) ([]Image, error)
	// Pull fetches an image (through the daemon's mirrors and certificates) and returns it.
	Pull(ctx context.Context, ref string, auth *PullAuth) (Image, error)
	// Remove removes an image with all its names; errdefs.ErrNotFound when there is none,
	// errdefs.ErrConflict while a container uses it.
	Remove(ctx context.Context, ref string) error
	// FsInfo is the image filesystem's usage.
	FsInfo(ctx context.Context) (ImageFsUsage, error)
}

// PodNetwork sets up a pod's network in its pinned network namespace. The daemon implements
// it with CNI ADD and DEL (internal/daemon/cri_network.go); LoopbackOnly is the pod network
// without a network plugin: the pod has lo and nothing else.
type PodNetwork interface {
	// Setup runs when the pod's namespaces exist, before any container starts; it returns the
	// pod's addresses.
	Setup(ctx context.Context, pod PodNetworkConfig) (ips []string, err error)
	// Teardown releases what Setup took; it is called at stop and remove and must be idempotent.
	Teardown(ctx context.Context, pod PodNetworkConfig) error
	// Ready is nil when pods can be networked, or why not (for Status's NetworkReady).
	Ready() error
}

// PodNetworkReconciler is a PodNetwork that releases, after a daemon restart, what belongs
// to no pod: New calls Reconcile once the records are loaded, with the pods whose record
// says their network is up.
type PodNetworkReconciler interface {
	Reconcile(ctx context.Context, networked []string)
}

// PodNetworkConfig is what a network plugin needs of a pod.
type PodNetworkConfig struct {
	ID, Name, Namespace, UID string
	NetNS                    string // path of the pinned network namespace
	Hostname                 string
	PortMappings             []PortMapping
	DNS                      DNSConfig
	CgroupParent             string
}

// PortMapping is one port the pod publishes on the node.
type PortMapping struct {
	Protocol      string // tcp, udp, sctp
	ContainerPort int32
	HostPort      int32
	HostIP        string
}

// DNSConfig is the pod's resolver configuration.
type DNSConfig struct {
	Servers, Searches, Options []string
}

// LoopbackOnly is the pod network without a plugin: the pinned namespace has lo up
// (pinNamespaces does that) and no other interface, so the pod has no address.
type LoopbackOnly struct{}

func (LoopbackOnly) Setup(context.Context, PodNetworkConfig) ([]string, error) { return nil, nil }
func (LoopbackOnly) Teardown(context.Context, PodNetworkConfig) error          { return nil }
func (LoopbackOnly) Ready() error                                              { return nil }
