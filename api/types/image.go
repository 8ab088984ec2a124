package types

import "time"

// ImageConfig is the runnable part of an image's config, in docker's shape (what image
// inspect shows under Config and what a container inherits).
type ImageConfig struct {
	User         string              `json:"User"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Entrypoint   []string            `json:"Entrypoint"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
}

// RootFS lists an image's layers by diff ID, base first.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// ImageInspect is one element of `inspect` for an image (docker's shape).
type ImageInspect struct {
	ID           string        `json:"Id"`
	RepoTags     []string      `json:"RepoTags"`
	RepoDigests  []string      `json:"RepoDigests"`
	Parent       string        `json:"Parent"`
	Comment      string        `json:"Comment"`
	Created      time.Time     `json:"Created"`
	Author       string        `json:"Author"`
	Config       ImageConfig   `json:"Config"`
	Architecture string        `json:"Architecture"`
	Variant      string        `json:"Variant,omitempty"`
	Os           string        `json:"Os"`
	Size         int64         `json:"Size"`
	RootFS       RootFS        `json:"RootFS"`
	GraphDriver  GraphDriver   `json:"GraphDriver"`
	Metadata     ImageMetadata `json:"Metadata"`
	ManifestType string        `json:"ManifestMediaType,omitempty"`
}

// GraphDriver tells where an image's layers are.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// ImageMetadata is docker's Metadata (when the image came to this host).
type ImageMetadata struct {
	LastTagTime time.Time `json:"LastTagTime"`
}

// ImageSummary is one row of `images`. Field names are docker's template names
// (Repository, Tag, Digest, ID, CreatedSince, Size).
type ImageSummary struct {
	ID          string            `json:"ID"`
	RepoTags    []string          `json:"RepoTags"`
	RepoDigests []string          `json:"RepoDigests"`
	Created     time.Time         `json:"Created"`
	Size        int64             `json:"Size"`
	Labels      map[string]string `json:"Labels"`
	Containers  int               `json:"Containers"`
}

// ImageListRequest: `images` (filters are key=value strings, as -f gives them).
type ImageListRequest struct {
	All     bool     `json:"All"`
	Filters []string `json:"Filters"`
}

// ImageRefRequest names one image or container (pull, push, inspect, export).
type ImageRefRequest struct {
	Name string `json:"Name"`
}

// ImageProgress is one progress event of a pull, push or load.
type ImageProgress struct {
	Layer   string `json:"Layer,omitempty"`
	Status  string `json:"Status"`
	Current int64  `json:"Current,omitempty"`
	Total   int64  `json:"Total,omitempty"`
}

// ImagePullResult ends a pull, push or load.
type ImagePullResult struct {
	ID     string   `json:"ID"`
	Names  []string `json:"Names"`
	Digest string   `json:"Digest,omitempty"`
}

// ImageRemoveRequest: `rmi`.
type ImageRemoveRequest struct {
	Names []string `json:"Names"`
	Force bool     `json:"Force"`
}

// ImageDeleteItem is one line of rmi's or prune's answer.
type ImageDeleteItem struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
	Error    string `json:"Error,omitempty"`
}

// ImageDeleteResponse: what rmi and prune did.
type ImageDeleteResponse struct {
	Items     []ImageDeleteItem `json:"Items"`
	Reclaimed int64             `json:"SpaceReclaimed"`
}

// ImageTagRequest: `tag SRC DST`.
type ImageTagRequest struct {
	Source string `json:"Source"`
	Target string `json:"Target"`
}

// ImagePruneRequest: `image prune` (All: every image no container uses, not only dangling).
type ImagePruneRequest struct {
	All bool `json:"All"`
}

// LoginRequest: `login`. The password travels only to the daemon (a root-only socket).
type LoginRequest struct {
	Server   string `json:"Server"`
	Username string `json:"Username"`
	Password string `json:"Password"`
}

// ImageSaveRequest: `save` (Format docker-archive or oci).
type ImageSaveRequest struct {
	Names  []string `json:"Names"`
	Format string   `json:"Format"`
}

// ImageLoadRequest: `load` (Tag names an untagged image of the archive).
type ImageLoadRequest struct {
	Tag string `json:"Tag"`
}

// ImageImportRequest: `import` (Ref is the name to give, may be empty).
type ImageImportRequest struct {
	Ref     string `json:"Ref"`
	Message string `json:"Message"`
}

// DiskUsage is `system df`.
type DiskUsage struct {
	Images         int   `json:"Images"`
	ImagesActive   int   `json:"ImagesActive"`
	LayersSize     int64 `json:"LayersSize"`
	BlobsSize      int64 `json:"BlobsSize"`
	ImagesShared   int64 `json:"SharedSize"`
	Reclaimable    int64 `json:"Reclaimable"`
	Containers     int   `json:"Containers"`
	ContainersSize int64 `json:"ContainersSize"`
	Channels       int   `json:"HostChannels"`
	ChannelsSize   int64 `json:"HostChannelsSize"`
}
