package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/network"
	"github.com/isulad-go/isulad/internal/opts"
)

// The daemon's side of networking: what create, start, exit and rm do for a container's
// network, and the reconciliation after a restart. The networks themselves, the namespaces
// and the CNI calls are internal/network's.

// initNetwork opens the network manager: its records under the graph (host-local's store
// and libcni's cache with them, so a test daemon's are private), namespaces under the state.
func (d *Daemon) initNetwork() error {
	m, err := network.New(network.Config{
		BinDirs: d.cfg.cniBinDirs(),
		ConfDir: d.cfg.cniConfDir(),
		DataDir: filepath.Join(d.cfg.Graph, "network"),
		RunDir:  filepath.Join(d.cfg.State, "netns"),
	}, d.log)
	if err != nil {
		return fmt.Errorf("networking: %w", err)
	}
	d.net = m
	return nil
}

// reconcileNetwork runs after the containers are recovered: claims of every container are
// taken again, and attachments of containers that are not running are released.
func (d *Daemon) reconcileNetwork() {
	for _, c := range d.store.List() {
		if err := d.net.Claim(c.ID, "container "+c.Name, d.claimsOf(c.HostConfig)); err != nil {
			d.log.Warn("container's network claim conflicts after restart", "id", c.ID, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, id := range d.net.AttachedIDs() {
		// Under the container's operation lock: a restart policy's start may be attaching
		// it again meanwhile; once it holds the lock, its attachment is its own.
		c, err := d.store.Get(id)
		if err == nil {
			c.Op.Lock()
			if st := c.Status(); st == container.Running || st == container.Paused {
				c.Op.Unlock()
				continue
			}
		}
		d.log.Info("releasing the network of a container that is not running", "id", id)
		if err := d.net.Detach(ctx, id); err != nil {
			d.log.Error("releasing a stale network attachment", "id", id, "err", err)
		}
		if c != nil {
			c.Op.Unlock()
		}
	}
	d.net.RemoveStrays()
}

// validateNetwork resolves and checks the networking of a create request against the daemon
// (the network exists, --ip is in its subnet, host ports are free, container:REF exists).
func (d *Daemon) validateNetwork(cfg *types.Config, hc *types.HostConfig) error {
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "none"
		if d.cfg.DefaultNetwork != "" {
			hc.NetworkMode = d.cfg.DefaultNetwork
		}
	}
	mode := hc.NetworkMode
	switch {
	case mode == "none":
	case mode == "host":
		if cfg.Hostname == "" {
			cfg.Hostname, _ = os.Hostname()
		}
	case strings.HasPrefix(mode, "container:"):
		ref := strings.TrimPrefix(mode, "container:")
		other, err := d.store.Get(ref)
		if err != nil {
			return fmt.Errorf("--network %s: %w", mode, err)
		}
		if other.HostConfig.NetworkMode == "host" {
			return fmt.Errorf("--network %s: container %s uses the host's network (use --network host): %w", mode, other.Name, errInvalid)
		}
		hc.NetworkMode = "container:" + other.ID
	default:
		n, err := d.net.Get(mode)
		if err != nil {
			return fmt.Errorf("--network %s: no such network (see network ls): %w", mode, errInvalid)
		}
		hc.NetworkMode = n.Name
		if hc.IPv4Address != "" {
			ip := netip.MustParseAddr(hc.IPv4Address)
			if !network.Usable(netip.MustParsePrefix(n.Subnet), ip) || ip.String() == n.Gateway {
				return fmt.Errorf("--ip %s: not a free host address of network %s (%s, gateway %s): %w", ip, n.Name, n.Subnet, n.Gateway, errInvalid)
			}
		}
	}
	if mode != "none" && mode != "host" && hc.UserRemap != "" {
		return fmt.Errorf("--user-remap %s cannot be used with --network %s (the namespace belongs to the host's user namespace): %w", hc.UserRemap, mode, errInvalid)
	}
	return nil
}

// claimsOf lists what a container holds alone: its --ip and its fixed host ports.
func (d *Daemon) claimsOf(hc types.HostConfig) []network.Claim {
	var out []network.Claim
	if !opts.IsBridgeNetwork(hc.NetworkMode) {
		return nil
	}
	if hc.IPv4Address != "" {
		out = append(out, network.Claim{Network: hc.NetworkMode, IP: hc.IPv4Address})
	}
	for _, k := range slices.Sorted(maps.Keys(hc.PortBindings)) {
		_, proto, err := opts.ParsePortKey(k)
		if err != nil {
			continue
		}
		for _, b := range hc.PortBindings[k] {
			if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
				out = append(out, network.Claim{Proto: proto, HostIP: b.HostIP, HostPort: p})
			}
		}
	}
	return out
}

// claimNetwork takes the container's claims at create, then checks that the host does not
// use its host ports (only the holder of a claim tries to bind it: racing creates' checks
// cannot fail each other). The returned undo drops the claims.
func (d *Daemon) claimNetwork(c *container.Container) (func(), error) {
	claims := d.claimsOf(c.HostConfig)
	if err := d.net.Claim(c.ID, "container "+c.Name, claims); err != nil {
		return nil, err
	}
	release := func() { d.net.Release(c.ID) }
	for _, cl := range claims {
		if cl.HostPort != 0 {
			if err := network.CheckHostPort(cl.Proto, cl.HostIP, cl.HostPort); err != nil {
				release()
				return nil, fmt.Errorf("--publish: %w", err)
			}
		}
	}
	return release, nil
}

// Host files: generated per container in its own directory, bind-mounted over the rootfs's
// (the runtime resolves the destination inside the rootfs, so a symlink there cannot point
// the mount out of it). --net host without extras shares the host's files read-only.
var hostFileNames = []string{"hosts", "resolv.conf", "hostname"}

// withNetworkSpec adds the network namespace's path and the host files' mounts to a
// container's spec at create.
func (d *Daemon) withNetworkSpec(s *specs.Spec, c *container.Container) {
	hc := c.HostConfig
	if opts.IsBridgeNetwork(hc.NetworkMode) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = d.net.NetnsPath(c.ID)
			}
		}
	}
	var mounted []string
	for _, f := range hostFileNames {
		dest := "/etc/" + f
		// Every mount there needs systemd's drop-in, the engine's or not.
		mounted = append(mounted, dest)
		if slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return filepath.Clean(m.Destination) == dest }) {
			continue // the user's own mount there wins (a CRI pod's files, for one)
		}
		src := filepath.Join(d.store.Dir(c.ID), f)
		o := []string{"rbind", "rprivate"}
		if other, ok := strings.CutPrefix(hc.NetworkMode, "container:"); ok && f != "hostname" {
			src = filepath.Join(d.store.Dir(other), f) // the namespace's owner's, as docker
		} else if sharesHostFile(hc, f) {
			src, o = "/etc/"+f, append(o, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: o})
	}
	if c.SystemdInit && len(mounted) > 0 {
		d.withSystemdKeepMounts(s, c, mounted)
	}
}

// systemdUnitDir is where a systemd container finds the engine's drop-ins (inside its /run
// tmpfs, so nothing is made in the rootfs).
const systemdUnitDir = "/run/isulad/systemd"

// withSystemdKeepMounts keeps systemd from stopping the mount units of the host files at
// shutdown: it cannot unmount them (no CAP_SYS_ADMIN) and would log each as failed. A drop-in
// per unit without default dependencies (so no Conflicts=umount.target), on a unit path
// prepended through SYSTEMD_UNIT_PATH (the trailing colon keeps systemd's own paths).
func (d *Daemon) withSystemdKeepMounts(s *specs.Spec, c *container.Container, dests []string) {
	src := filepath.Join(d.store.Dir(c.ID), "systemd")
	for _, dest := range append(dests, systemdUnitDir) {
		unit := strings.ReplaceAll(strings.TrimPrefix(dest, "/"), "/", "-") + ".mount"
		dir := filepath.Join(src, unit+".d")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.log.Warn("systemd drop-in", "id", c.ID, "err", err)
			return
		}
		conf := "# Made by isulad: the engine unmounts this file with the container.\n[Unit]\nDefaultDependencies=no\n"
		if err := atomicfile.Replace(filepath.Join(dir, "isulad.conf"), []byte(conf), 0o644); err != nil {
			d.log.Warn("systemd drop-in", "id", c.ID, "err", err)
			return
		}
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: systemdUnitDir, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "ro"}})
	s.Process.Env = append(s.Process.Env, "SYSTEMD_UNIT_PATH="+systemdUnitDir+":")
}

// sharesHostFile tells whether a container sees the host's own /etc/f, read-only: with --net
// host, unless options ask for its own copy or the host has no such regular file.
func sharesHostFile(hc types.HostConfig, f string) bool {
	if hc.NetworkMode != "host" {
		return false
	}
	switch {
	case f == "hosts" && len(hc.ExtraHosts) > 0:
		return false
	case f == "resolv.conf" && len(hc.DNS)+len(hc.DNSSearch)+len(hc.DNSOptions) > 0:
		return false
	}
	st, err := os.Stat("/etc/" + f)
	return err == nil && st.Mode().IsRegular()
}

// writeHostFiles writes a container's hosts, resolv.conf and hostname (ip: its address on a
// network, or ""); the copies of a container that shares the host's are written too, unused.
func (d *Daemon) writeHostFiles(c *container.Container, ip, networkDNS string) error {
	hc := c.HostConfig
	// The host's files are only a starting point: unreadable, they count as empty.
	hostResolv, err := network.ReadHostFile("/etc/resolv.conf")
	if err != nil {
		d.log.Warn("the host's resolv.conf", "err", err)
	}
	hosts := network.HostsFile(ip, c.Config.Hostname, c.Name, hc.ExtraHosts)
	if hc.NetworkMode == "host" {
		if h, err := network.ReadHostFile("/etc/hosts"); err == nil && len(h) > 0 {
			hosts = append(h, network.ExtraHosts(hc.ExtraHosts)...)
		}
	}
	files := map[string][]byte{
		"hosts":       hosts,
		"resolv.conf": network.ResolvConf(hostResolv, hc.DNS, hc.DNSSearch, hc.DNSOptions, networkDNS),
		"hostname":    []byte(c.Config.Hostname + "\n"),
	}
	// In place on a first start (atomicfile.WriteNew: the runtime, which mounts them, comes
	// later), by rename after that: a running container may be reading them.
	for name, data := range files {
		if err := atomicfile.WriteNew(filepath.Join(d.store.Dir(c.ID), name), data, 0o644, false); err != nil {
			return fmt.Errorf("writing the container's /etc/%s: %w", name, err)
		}
	}
	return nil
}

// networkUp prepares the container's network before the runtime starts it: the host files,
// and on a network its namespace and CNI ADD (or, with container:ID, the other container's
// namespace in the spec). The returned undo tears down what was made.
func (d *Daemon) networkUp(ctx context.Context, c *container.Container) (undo func(), err error) {
	hc := c.HostConfig
	undo = func() {}
	switch {
	case opts.IsBridgeNetwork(hc.NetworkMode):
		ports, err := d.portMappings(c)
		if err != nil {
			return nil, err
		}
		aliases := []string{container.ShortID(c.ID)}
		if h := c.Config.Hostname; h != c.Name && h != container.ShortID(c.ID) {
			aliases = append(aliases, h)
		}
		a, err := d.net.Attach(ctx, network.AttachRequest{ContainerID: c.ID, Name: c.Name, Aliases: aliases,
			Network: hc.NetworkMode, IP: hc.IPv4Address, Ports: ports})
		if err != nil {
			return nil, err
		}
		undo = func() { d.networkDown(c) }
		ip, _, _ := strings.Cut(a.IP, "/")
		if err := d.writeHostFiles(c, ip, a.Gateway); err != nil {
			undo()
			return nil, err
		}
		return undo, nil
	case strings.HasPrefix(hc.NetworkMode, "container:"):
		if err := d.joinNetns(c, strings.TrimPrefix(hc.NetworkMode, "container:")); err != nil {
			return nil, err
		}
	}
	return undo, d.writeHostFiles(c, "", "")
}

// joinNetns points the spec at the network namespace of the running container other.
func (d *Daemon) joinNetns(c *container.Container, otherID string) error {
	other, err := d.store.Get(otherID)
	if err != nil {
		return fmt.Errorf("--network container:%s: %w", otherID, err)
	}
	snap := other.Snapshot()
	if st := other.Status(); st != container.Running && st != container.Paused || snap.Pid <= 0 {
		return fmt.Errorf("--network container:%s: container %s is not running: %w", container.ShortID(otherID), other.Name, errConflict)
	}
	path := fmt.Sprintf("/proc/%d/ns/net", snap.Pid)
	if d.net.Attachment(other.ID) != nil {
		path = d.net.NetnsPath(other.ID)
	}
	s, err := d.loadSpec(c)
	if err != nil {
		return err
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = path
		}
	}
	return d.saveSpec(c, s)
}

// portMappings turns -p and -P into portmap's mappings, with free host ports picked for the
// bindings that name none; every fixed host port must be free on the host now.
func (d *Daemon) portMappings(c *container.Container) ([]network.PortMapping, error) {
	hc := c.HostConfig
	pm := types.PortMap{}
	for k, v := range hc.PortBindings {
		pm[k] = v
	}
	if hc.PublishAllPorts {
		for k := range c.Config.ExposedPorts {
			if _, ok := pm[k]; !ok {
				pm[k] = []types.PortBinding{{}}
			}
		}
	}
	var out []network.PortMapping
	keys := slices.Sorted(maps.Keys(pm))
	for _, k := range keys {
		port, proto, err := opts.ParsePortKey(k)
		if err != nil {
			return nil, err
		}
		for _, b := range pm[k] {
			hp, _ := strconv.Atoi(b.HostPort)
			if hp == 0 {
				if hp, err = network.FreeHostPort(proto, b.HostIP); err != nil {
					return nil, fmt.Errorf("finding a free host port for %s: %w", k, err)
				}
			} else if err := network.CheckHostPort(proto, b.HostIP, hp); err != nil {
				return nil, err
			}
			out = append(out, network.PortMapping{HostPort: hp, ContainerPort: port, Protocol: proto, HostIP: b.HostIP})
		}
	}
	return out, nil
}

// networkDown releases the container's attachment (CNI DEL, namespace). Idempotent.
func (d *Daemon) networkDown(c *container.Container) {
	if !opts.IsBridgeNetwork(c.HostConfig.NetworkMode) && d.net.Attachment(c.ID) == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.net.Detach(ctx, c.ID); err != nil {
		d.log.Error("releasing the container's network", "id", c.ID, "err", err)
	}
}

// networkSettings is the live view of a container's network for inspect.
func (d *Daemon) networkSettings(c *container.Container) *types.NetworkSettings {
	ns := &types.NetworkSettings{Ports: types.PortMap{}, Networks: map[string]*types.EndpointSettings{}}
	a := d.net.Attachment(c.ID)
	if a == nil {
		return ns
	}
	ns.SandboxKey = a.Netns
	ip, bits, _ := strings.Cut(a.IP, "/")
	plen, _ := strconv.Atoi(bits)
	ns.IPAddress, ns.Gateway = ip, a.Gateway
	ns.Networks[a.Network] = &types.EndpointSettings{NetworkID: a.NetworkID, IPAddress: ip, IPPrefixLen: plen,
		Gateway: a.Gateway, MacAddress: a.MAC, Aliases: append([]string{c.Name}, a.Aliases...)}
	for _, p := range a.Ports {
		k := strconv.Itoa(p.ContainerPort) + "/" + p.Protocol
		hip := p.HostIP
		if hip == "" {
			hip = "0.0.0.0"
		}
		ns.Ports[k] = append(ns.Ports[k], types.PortBinding{HostIP: hip, HostPort: strconv.Itoa(p.HostPort)})
	}
	return ns
}

// portsColumn is ps's PORTS: 127.0.0.1:8080->80/tcp, ...
func (d *Daemon) portsColumn(c *container.Container) string {
	a := d.net.Attachment(c.ID)
	if a == nil {
		return ""
	}
	var out []string
	for _, p := range a.Ports {
		hip := p.HostIP
		if hip == "" {
			hip = "0.0.0.0"
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", hip, p.HostPort, p.ContainerPort, p.Protocol))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// networkUsers names the containers that use a network (refusing its removal).
func (d *Daemon) networkUsers(n *network.Network) []string {
	var out []string
	for _, c := range d.store.List() {
		if c.HostConfig.NetworkMode == n.Name {
			out = append(out, c.Name)
		}
	}
	sort.Strings(out)
	return out
}

// saveSpec writes the container's OCI spec back.
func (d *Daemon) saveSpec(c *container.Container, s *specs.Spec) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(d.store.Dir(c.ID), "config.json"), data, 0o600)
}

// cniBinDirs are where the plugins are looked for: cni-bin-dir (colon-separated, as
// iSulad's), else /opt/cni/bin then Debian's /usr/lib/cni.
func (c *Config) cniBinDirs() []string {
	if c.CNIBinDir != "" {
		return filepath.SplitList(c.CNIBinDir)
	}
	return []string{"/opt/cni/bin", "/usr/lib/cni"}
}

func (c *Config) cniConfDir() string {
	if c.CNIConfDir != "" {
		return c.CNIConfDir
	}
	return "/etc/cni/net.d"
}
