package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/units"
)

// Config is the daemon's configuration: /etc/isulad/daemon.json, then flags.
type Config struct {
	Graph          string                   `json:"graph"`
	State          string                   `json:"state"`
	Hosts          []string                 `json:"hosts"`
	DefaultRuntime string                   `json:"default-runtime"`
	Runtimes       map[string]RuntimeConfig `json:"runtimes"`
	LogLevel       string                   `json:"log-level"`
	LogOpts        map[string]string        `json:"log-opts"`
	CgroupParent   string                   `json:"cgroup-parent"`
	ShimPath       string                   `json:"shim-path"`
	EngineName     string                   `json:"engine-name"`

	// Networking (iSulad's keys; network.go).
	CNIBinDir      string `json:"cni-bin-dir"`     // default /opt/cni/bin, then /usr/lib/cni
	CNIConfDir     string `json:"cni-conf-dir"`    // default /etc/cni/net.d
	DefaultNetwork string `json:"default-network"` // the network of a container without --net
	// NetworkPlugin is the pods' network (iSulad's key): "" loopback only, "cni" the first
	// conflist of cni-conf-dir (cri_network.go).
	NetworkPlugin string `json:"network-plugin"`
	// Images (internal/daemon/images.go, docs/images.md).
	RegistryMirrors    []string                  `json:"registry-mirrors"`
	InsecureRegistries []string                  `json:"insecure-registries"`
	Registries         map[string]RegistryConfig `json:"registries"`
	CertsDir           string                    `json:"certs-dir"` // default /etc/isulad/certs.d
	// The CRI (internal/cri, docs/cri.md). pod-sandbox-image and enable-cri-v1 are iSulad's
	// keys, accepted: pods pin their namespaces without a pause image, and v1 is always on.
	CRIHostChannelRoots []string `json:"cri-host-channel-roots"`
	StreamServerAddress string   `json:"stream-server-address"`
	StreamServerPort    string   `json:"stream-server-port"`
	PodSandboxImage     string   `json:"pod-sandbox-image"`
	EnableCRIV1         bool     `json:"enable-cri-v1"`
}

// RuntimeConfig names an OCI runtime binary.
type RuntimeConfig struct {
	Path string `json:"path"`
}

// DefaultConfigFile is where the daemon looks for its configuration.
const DefaultConfigFile = "/etc/isulad/daemon.json"

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Graph:          "/var/lib/isulad",
		State:          "/var/run/isulad",
		Hosts:          []string{"unix:///var/run/isulad.sock"},
		DefaultRuntime: "runc",
		LogLevel:       "info",
		CgroupParent:   cgroups.DefaultParent,
		EngineName:     "isulad",
	}
}

// LoadConfigFile merges the JSON file at path over c. A missing file is not an error
// unless required. Keys this engine does not know (an iSulad daemon.json has many) are
// returned, to be logged, not refused; a known key with a value of the wrong type is an error.
func LoadConfigFile(c *Config, path string, required bool) (unknown []string, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	var keys map[string]json.RawMessage
	json.Unmarshal(data, &keys)
	known := map[string]bool{}
	t := reflect.TypeOf(*c)
	for i := 0; i < t.NumField(); i++ {
		known[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for k := range keys {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return unknown, nil
}

// Finish fills derived values and checks the configuration.
func (c *Config) Finish() error {
	for _, p := range []*string{&c.Graph, &c.State} {
		if !filepath.IsAbs(*p) {
			return fmt.Errorf("directory %q must be an absolute path", *p)
		}
		*p = filepath.Clean(*p)
	}
	if c.NetworkPlugin != "" && c.NetworkPlugin != "cni" {
		return fmt.Errorf("network-plugin %q: want \"cni\", or \"\" for pods with a loopback interface only", c.NetworkPlugin)
	}
	if c.Runtimes == nil {
		c.Runtimes = map[string]RuntimeConfig{}
	}
	for _, name := range []string{"runc", "crun"} {
		if _, ok := c.Runtimes[name]; !ok {
			if p, err := exec.LookPath(name); err == nil {
				c.Runtimes[name] = RuntimeConfig{Path: p}
			}
		}
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		return fmt.Errorf("default runtime %q is not installed or not configured", c.DefaultRuntime)
	}
	if c.ShimPath == "" {
		self, _ := os.Executable()
		cand := filepath.Join(filepath.Dir(self), "isulad-shim")
		if _, err := os.Stat(cand); err == nil {
			c.ShimPath = cand
		} else if p, err := exec.LookPath("isulad-shim"); err == nil {
			c.ShimPath = p
		} else {
			return fmt.Errorf("isulad-shim not found next to %s nor in PATH", self)
		}
	}
	def := DefaultConfig()
	if c.CgroupParent == "" {
		c.CgroupParent = def.CgroupParent
	}
	if c.EngineName == "" {
		c.EngineName = def.EngineName
	}
	if len(c.Hosts) == 0 {
		c.Hosts = def.Hosts
	}
	return nil
}

// logLimits returns the json-file rotation settings, container options over daemon ones.
func (c *Config) logLimits(logOpts map[string]string) (int64, int, error) {
	get := func(k string) string {
		if v, ok := logOpts[k]; ok {
			return v
		}
		return c.LogOpts[k]
	}
	var size int64
	files := 1
	if v := get("max-size"); v != "" {
		n, err := units.Parse(v, units.PiB)
		if err != nil {
			return 0, 0, fmt.Errorf("log option max-size=%q: want a size like 10m: %w", v, errInvalid)
		}
		size = n
	}
	if v := get("max-file"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("log option max-file=%q: want a positive number: %w", v, errInvalid)
		}
		files = n
	}
	return size, files, nil
}
