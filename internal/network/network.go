// Package network gives containers bridge networks through CNI: it keeps the networks (a
// record each, and the conflist `isulacni-NAME.conflist` it writes into the CNI configuration
// directory), makes each container's network namespace (a bind mount that survives the
// daemon), runs the plugins through libcni (bridge, host-local, portmap, firewall, dnsname),
// records every attachment before it is made so that a crash at any point can be undone, and
// arbitrates the claims on fixed IPs and host ports between containers.
package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/opts"
)

// Error categories.
var (
	ErrInvalid  = errdefs.ErrInvalidArgument
	ErrNotFound = errdefs.ErrNotFound
	ErrExists   = errdefs.ErrAlreadyExists
	ErrConflict = errdefs.ErrConflict
)

// DNSDomain is the domain of the names dnsname serves on every network.
const DNSDomain = "dns.isulad"

// Config says where the manager keeps things.
type Config struct {
	BinDirs []string // CNI plugin directories, searched in order
	ConfDir string   // where the conflists are written
	DataDir string   // persistent: records, IPAM store, libcni cache, attachments
	RunDir  string   // runtime: network namespaces (bind mounts)
}

// Network is a network's record.
type Network struct {
	Name     string            `json:"Name"`
	ID       string            `json:"Id"`
	Created  time.Time         `json:"Created"`
	Driver   string            `json:"Driver"`
	Subnet   string            `json:"Subnet"`
	Gateway  string            `json:"Gateway"`
	Internal bool              `json:"Internal"`
	Labels   map[string]string `json:"Labels"`
	Bridge   string            `json:"Bridge"`
}

// Manager owns the networks and the containers' attachments.
type Manager struct {
	cfg Config
	log *slog.Logger
	cni *libcni.CNIConfig

	mu         sync.Mutex
	nets       map[string]*Network    // by name
	att        map[string]*Attachment // by container ID
	heldClaims []heldClaim
	busy       map[string]*keyedLock // attach/detach in progress, by container ID
}

func (m *Manager) recordsDir() string     { return filepath.Join(m.cfg.DataDir, "networks") }
func (m *Manager) attachmentsDir() string { return filepath.Join(m.cfg.DataDir, "attachments") }

// IPAMDir is host-local's store: one directory per network, one file per address.
func (m *Manager) IPAMDir() string { return filepath.Join(m.cfg.DataDir, "ipam") }

// ConfFile is the conflist of a network.
func (m *Manager) ConfFile(name string) string {
	return filepath.Join(m.cfg.ConfDir, "isulacni-"+name+".conflist")
}

// NetnsPath is where a container's network namespace is bind-mounted.
func (m *Manager) NetnsPath(containerID string) string {
	return filepath.Join(m.cfg.RunDir, containerID)
}

// New loads the networks and attachments, and writes back any conflist that is missing
// (a cni-conf-dir on a tmpfs, or edited by hand).
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	m := &Manager{cfg: cfg, log: log, nets: map[string]*Network{}, att: map[string]*Attachment{}, busy: map[string]*keyedLock{}}
	for _, d := range []string{m.recordsDir(), m.attachmentsDir(), m.IPAMDir(), filepath.Join(cfg.DataDir, "cache"), cfg.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.ConfDir, 0o755); err != nil {
		return nil, fmt.Errorf("cni-conf-dir %s: %w", cfg.ConfDir, err)
	}
	m.cni = libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, filepath.Join(cfg.DataDir, "cache"), nil)
	ents, err := os.ReadDir(m.recordsDir())
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.recordsDir(), e.Name()))
		var n Network
		if err == nil {
			err = json.Unmarshal(data, &n)
		}
		if err != nil || opts.ValidateNetworkName(n.Name) != nil {
			log.Error("skipping an unreadable network record", "file", e.Name(), "err", err)
			continue
		}
		m.nets[n.Name] = &n
		if _, err := os.Stat(m.ConfFile(n.Name)); err != nil {
			if err := m.writeConf(&n); err != nil {
				log.Error("writing a network's conflist", "network", n.Name, "err", err)
			}
		}
		if err := ensureIsolation(&n); err != nil {
			log.Error("network isolation rules", "network", n.Name, "err", err)
		}
	}
	if err := m.loadAttachments(); err != nil {
		return nil, err
	}
	return m, nil
}

// Create makes a network: its record, then its conflist. Nothing is left on error.
func (m *Manager) Create(req types.NetworkCreateRequest) (*Network, error) {
	if err := opts.ValidateNetworkName(req.Name); err != nil {
		return nil, err
	}
	if req.Driver == "" {
		req.Driver = "bridge"
	}
	if req.Driver != "bridge" {
		return nil, fmt.Errorf("invalid --driver %q (want bridge): %w", req.Driver, ErrInvalid)
	}
	for k := range req.Labels {
		if k == "" {
			return nil, fmt.Errorf("invalid --label with an empty key (want KEY=VALUE): %w", ErrInvalid)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nets[req.Name]; ok {
		return nil, fmt.Errorf("network %s already exists: %w", req.Name, ErrExists)
	}
	used, err := m.usedSubnets()
	if err != nil {
		return nil, err
	}
	var subnet netip.Prefix
	if req.Subnet == "" {
		if req.Gateway != "" {
			return nil, fmt.Errorf("--gateway %s needs --subnet: %w", req.Gateway, ErrInvalid)
		}
		if subnet, err = nextFreeSubnet(used); err != nil {
			return nil, err
		}
	} else {
		p, err := netip.ParsePrefix(req.Subnet)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("invalid --subnet %q (want an IPv4 CIDR such as 10.89.1.0/24): %w", req.Subnet, ErrInvalid)
		}
		if p.Bits() > 30 || p.Bits() < 8 {
			return nil, fmt.Errorf("invalid --subnet %q: a /%d (want a prefix length from 8 to 30): %w", req.Subnet, p.Bits(), ErrInvalid)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("invalid --subnet %q: host bits are set (want %s): %w", req.Subnet, p.Masked(), ErrInvalid)
		}
		if u, bad := firstOverlap(p, used); bad {
			return nil, fmt.Errorf("invalid --subnet %s: it overlaps %s (%s): %w", p, u, m.ownerOf(u), ErrInvalid)
		}
		subnet = p
	}
	gw := subnet.Addr().Next()
	if req.Gateway != "" {
		g, err := netip.ParseAddr(req.Gateway)
		if err != nil || !g.Is4() {
			return nil, fmt.Errorf("invalid --gateway %q (want an IPv4 address): %w", req.Gateway, ErrInvalid)
		}
		if !Usable(subnet, g) {
			return nil, fmt.Errorf("invalid --gateway %s: not a host address of the subnet %s: %w", g, subnet, ErrInvalid)
		}
		gw = g
	}
	n := &Network{Name: req.Name, ID: newID(), Created: time.Now().UTC(), Driver: "bridge",
		Subnet: subnet.String(), Gateway: gw.String(), Internal: req.Internal, Labels: req.Labels}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Bridge = "isula-" + n.ID[:9] // 15 characters: the kernel's limit
	data, _ := json.MarshalIndent(n, "", "  ")
	if err := atomicfile.Write(m.recordFile(n.Name), data, 0o600); err != nil {
		return nil, err
	}
	if err := m.writeConf(n); err != nil {
		os.Remove(m.recordFile(n.Name))
		return nil, err
	}
	if err := ensureIsolation(n); err != nil {
		removeIsolation(n)
		os.Remove(m.ConfFile(n.Name))
		os.Remove(m.recordFile(n.Name))
		return nil, fmt.Errorf("network %s: isolation rules: %w", n.Name, err)
	}
	m.nets[n.Name] = n
	m.log.Info("network created", "name", n.Name, "subnet", n.Subnet)
	return n, nil
}

func (m *Manager) recordFile(name string) string {
	return filepath.Join(m.recordsDir(), name+".json")
}

// Usable tells whether a is a host address of p (not its network or broadcast address).
func Usable(p netip.Prefix, a netip.Addr) bool {
	return p.Contains(a) && a != p.Masked().Addr() && a != lastAddr(p)
}

// usedSubnets are the host's routes, the other networks, and the subnets of other
// conflists in the configuration directory (podman's, for one).
func (m *Manager) usedSubnets() ([]netip.Prefix, error) {
	used, err := hostRoutes()
	if err != nil {
		return nil, fmt.Errorf("reading the host's routes: %w", err)
	}
	for _, n := range m.nets {
		used = append(used, netip.MustParsePrefix(n.Subnet))
	}
	return append(used, foreignSubnets(m.cfg.ConfDir)...), nil
}

func (m *Manager) ownerOf(p netip.Prefix) string {
	for _, n := range m.nets {
		if n.Subnet == p.String() {
			return "network " + n.Name
		}
	}
	return "a route of the host or another CNI network"
}

// foreignSubnets finds the "subnet" values in the other conflists of dir.
func foreignSubnets(dir string) []netip.Prefix {
	files, _ := filepath.Glob(filepath.Join(dir, "*.conflist"))
	var out []netip.Prefix
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "isulacni-") {
			continue
		}
		st, err := os.Stat(f)
		if err != nil || !st.Mode().IsRegular() || st.Size() > 1<<20 {
			continue
		}
		data, _ := os.ReadFile(f)
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					if s, ok := e.(string); ok && k == "subnet" {
						if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
							out = append(out, p.Masked())
						}
					}
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		var doc any
		if json.Unmarshal(data, &doc) == nil {
			walk(doc)
		}
	}
	return out
}

// Get finds a network by name, full ID or unique ID prefix.
func (m *Manager) Get(ref string) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.getLocked(ref)
}

func (m *Manager) getLocked(ref string) (*Network, error) {
	if n, ok := m.nets[ref]; ok {
		return n, nil
	}
	var found *Network
	if len(ref) >= 3 {
		for _, n := range m.nets {
			if strings.HasPrefix(n.ID, ref) {
				if found != nil {
					return nil, fmt.Errorf("network %s: more than one network has an ID starting so: %w", ref, ErrInvalid)
				}
				found = n
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("network %s not found: %w", ref, ErrNotFound)
	}
	return found, nil
}

// List returns the networks sorted by name.
func (m *Manager) List() []*Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Network, 0, len(m.nets))
	for _, n := range m.nets {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Network) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Remove deletes a network unless inUse names containers that use it.
func (m *Manager) Remove(ref string, inUse func(*Network) []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return err
	}
	if users := inUse(n); len(users) > 0 {
		return fmt.Errorf("network %s is used by container(s) %s: remove them first: %w", n.Name, strings.Join(users, ", "), ErrConflict)
	}
	for _, a := range m.att {
		if a.Network == n.Name {
			return fmt.Errorf("network %s still has container %s attached: %w", n.Name, a.Name, ErrConflict)
		}
	}
	if err := os.Remove(m.ConfFile(n.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	removeIsolation(n)
	removeDNSRule(n)
	// The bridge itself: the bridge plugin makes it and never deletes it.
	deleteLink(n.Bridge)
	os.RemoveAll(filepath.Join(m.IPAMDir(), n.Name))
	if err := os.Remove(m.recordFile(n.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(m.nets, n.Name)
	m.log.Info("network removed", "name", n.Name)
	return nil
}

// Resource is the network as inspect shows it.
func (m *Manager) Resource(n *Network) types.NetworkResource {
	r := types.NetworkResource{Name: n.Name, ID: n.ID, Created: n.Created, Driver: n.Driver,
		Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal, Labels: n.Labels,
		Bridge: n.Bridge, ConfigFile: m.ConfFile(n.Name), Containers: map[string]types.EndpointResource{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, a := range m.att {
		if a.Network == n.Name && a.IP != "" {
			r.Containers[id] = types.EndpointResource{Name: a.Name, IPv4Address: a.IP, MacAddress: a.MAC}
		}
	}
	return r
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
