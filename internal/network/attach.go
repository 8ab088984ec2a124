package network

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/fault"
)

// IfName is the container's interface on its network.
const IfName = "eth0"

// Fault points (internal/fault) for crash tests.
const (
	FaultAfterNetns = "network-after-netns" // record and namespace made, CNI ADD not run
	FaultAfterAdd   = "network-after-add"   // CNI ADD done, its result not recorded
	FaultBeforeDel  = "network-before-del"  // a detach begun, CNI DEL not run
	FaultAfterDel   = "network-after-del"   // CNI DEL done, the record not removed
)

// lockContainer serializes attach and detach of one container (a restarted daemon's
// reconciliation may meet an interrupted removal finishing in the background).
func (m *Manager) lockContainer(id string) func() {
	m.mu.Lock()
	l := m.busy[id]
	if l == nil {
		l = &keyedLock{}
		m.busy[id] = l
	}
	l.n++
	m.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		m.mu.Lock()
		if l.n--; l.n == 0 {
			delete(m.busy, id)
		}
		m.mu.Unlock()
	}
}

type keyedLock struct {
	sync.Mutex
	n int // holders and waiters, under Manager.mu
}

// PortMapping is one published port, in portmap's runtimeConfig shape.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Attachment is a container on a network. Its record is written before anything is made
// (namespace, CNI ADD) and deleted after everything is undone, so that the daemon can finish
// an interrupted attach or detach after a crash with the very configuration that was used.
type Attachment struct {
	ContainerID string          `json:"ContainerID"`
	Name        string          `json:"Name"`
	Aliases     []string        `json:"Aliases"`
	Network     string          `json:"Network"`
	NetworkID   string          `json:"NetworkID"`
	Netns       string          `json:"Netns"`
	RequestedIP string          `json:"RequestedIP,omitempty"`
	Ports       []PortMapping   `json:"Ports"`
	Conflist    json.RawMessage `json:"Conflist"`

	// Pod attachments (pod.go) are a CRI pod's: their namespace is the pod's own (not made
	// nor removed here), their conflist may be the cluster admin's, and they carry the
	// kubelet's CNI arguments.
	Pod  bool        `json:"Pod,omitempty"`
	Args [][2]string `json:"Args,omitempty"`

	// Known once ADD succeeded.
	IP      string   `json:"IP,omitempty"`  // CIDR
	IPs     []string `json:"IPs,omitempty"` // every address, CIDR (pods: v4 and v6)
	Gateway string   `json:"Gateway,omitempty"`
	MAC     string   `json:"MAC,omitempty"`
}

// AttachRequest asks for a container's attachment to a network.
type AttachRequest struct {
	ContainerID string
	Name        string
	Aliases     []string
	Network     string
	IP          string // --ip, or ""
	Ports       []PortMapping
}

func (m *Manager) attachmentFile(id string) string {
	return filepath.Join(m.attachmentsDir(), id+".json")
}

func (m *Manager) saveAttachment(a *Attachment) error {
	data, _ := json.MarshalIndent(a, "", "  ")
	return atomicfile.Replace(m.attachmentFile(a.ContainerID), data, 0o600)
}

func (m *Manager) loadAttachments() error {
	ents, err := os.ReadDir(m.attachmentsDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.attachmentsDir(), e.Name()))
		var a Attachment
		if err == nil {
			err = json.Unmarshal(data, &a)
		}
		if err != nil || a.ContainerID != id {
			m.log.Error("skipping an unreadable attachment record", "file", e.Name(), "err", err)
			continue
		}
		m.att[id] = &a
	}
	return nil
}

// Attachment returns a copy of a container's attachment, or nil.
func (m *Manager) Attachment(id string) *Attachment {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.att[id]; a != nil {
		c := *a
		return &c
	}
	return nil
}

func (a *Attachment) runtimeConf() *libcni.RuntimeConf {
	caps := map[string]any{
		"portMappings": a.Ports,
		"aliases":      map[string][]string{a.Network: a.Aliases},
	}
	if a.RequestedIP != "" {
		caps["ips"] = []string{a.RequestedIP}
	}
	ns := a.Netns
	if !isNetns(ns) {
		ns = "" // gone: the plugins release what they can without it
	}
	args := a.Args
	if args == nil {
		args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", a.Name}}
	}
	return &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: ns, IfName: IfName, Args: args, CapabilityArgs: caps}
}

// Attach makes the container's network namespace and runs CNI ADD in it. On error nothing
// is left (the same teardown as Detach).
func (m *Manager) Attach(ctx context.Context, req AttachRequest) (*Attachment, error) {
	unlock := m.lockContainer(req.ContainerID)
	defer unlock()
	m.mu.Lock()
	n, err := m.getLocked(req.Network)
	stale := m.att[req.ContainerID] != nil
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if stale {
		// A container being started has no live attachment: this one is left from a run
		// whose detach did not finish (a crash). Release it first.
		m.log.Warn("releasing a stale attachment before attaching again", "id", req.ContainerID)
		if err := m.detachLocked(ctx, req.ContainerID); err != nil {
			return nil, err
		}
	}
	conf, err := m.conflistFor(n, len(req.Ports) > 0)
	if err != nil {
		return nil, err
	}
	a := &Attachment{ContainerID: req.ContainerID, Name: req.Name, Aliases: req.Aliases,
		Network: n.Name, NetworkID: n.ID, Netns: m.NetnsPath(req.ContainerID),
		RequestedIP: req.IP, Ports: req.Ports, Conflist: conf}
	if a.Ports == nil {
		a.Ports = []PortMapping{}
	}
	// The intent first: from here on a crash is undone by the next daemon's Reconcile.
	if err := m.saveAttachment(a); err != nil {
		return nil, err
	}
	m.setAttachment(a)
	fail := func(err error) (*Attachment, error) {
		if derr := m.detachLocked(context.WithoutCancel(ctx), a.ContainerID); derr != nil {
			m.log.Error("undoing a failed attach", "id", a.ContainerID, "err", derr)
		}
		return nil, err
	}
	if err := newNetns(a.Netns); err != nil {
		return fail(err)
	}
	if err := fault.Point(FaultAfterNetns); err != nil {
		return fail(err)
	}
	if err := m.add(ctx, a); err != nil {
		return fail(err)
	}
	if a.Gateway == "" {
		a.Gateway = n.Gateway
	}
	if err := m.saveAttachment(a); err != nil {
		return fail(err)
	}
	m.setAttachment(a)
	c := *a
	return &c, nil
}

// setAttachment makes a copy of a the one in memory (readers copy it under m.mu, while the
// attach goes on filling in a).
func (m *Manager) setAttachment(a *Attachment) {
	c := *a
	m.mu.Lock()
	m.att[a.ContainerID] = &c
	m.mu.Unlock()
}

// add runs CNI ADD of a recorded attachment and fills in its addresses from the result (the
// caller saves it). The first IPv4 address is the attachment's IP; a pod keeps every one.
func (m *Manager) add(ctx context.Context, a *Attachment) error {
	list, err := libcni.ConfListFromBytes(a.Conflist)
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := m.cni.AddNetworkList(ctx, list, a.runtimeConf())
	m.log.Debug("CNI ADD", "id", a.ContainerID, "network", a.Network, "took", time.Since(t0), "err", err)
	if err != nil {
		return fmt.Errorf("network %s: %s", a.Network, cniMessage(err))
	}
	if err := fault.Point(FaultAfterAdd); err != nil {
		return err
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("network %s: CNI result: %w", a.Network, err)
	}
	for _, ip := range r.IPs {
		a.IPs = append(a.IPs, ip.Address.String())
		if ip.Address.IP.To4() == nil || a.IP != "" {
			continue
		}
		a.IP = ip.Address.String()
		if ip.Gateway != nil {
			a.Gateway = ip.Gateway.String()
		}
		if ip.Interface != nil && *ip.Interface < len(r.Interfaces) {
			a.MAC = r.Interfaces[*ip.Interface].Mac
		}
	}
	if a.IP == "" && (!a.Pod || len(a.IPs) == 0) {
		return fmt.Errorf("network %s: the plugins gave no IPv4 address", a.Network)
	}
	return nil
}

// cniMessage turns a plugin's error into one line, naming the address when host-local
// refuses a taken --ip.
func cniMessage(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if strings.Contains(s, "has been allocated") {
		return "the requested IP address is already in use: " + s
	}
	return s
}

// Detach runs CNI DEL (with the configuration the ADD used), removes the namespace and then
// the record. Idempotent: a container with no attachment only loses a stray namespace file.
// When DEL fails the record stays, for the next daemon start to retry.
func (m *Manager) Detach(ctx context.Context, id string) error {
	unlock := m.lockContainer(id)
	defer unlock()
	return m.detachLocked(ctx, id)
}

func (m *Manager) detachLocked(ctx context.Context, id string) error {
	m.mu.Lock()
	a := m.att[id]
	m.mu.Unlock()
	if a == nil {
		return removeNetns(m.NetnsPath(id))
	}
	if err := fault.Point(FaultBeforeDel); err != nil {
		return err
	}
	var delErr error
	if list, err := libcni.ConfListFromBytes(a.Conflist); err != nil {
		delErr = err
	} else {
		t0 := time.Now()
		err := m.cni.DelNetworkList(ctx, list, a.runtimeConf())
		m.log.Debug("CNI DEL", "id", a.ContainerID, "network", a.Network, "took", time.Since(t0), "err", err)
		if err != nil {
			delErr = fmt.Errorf("CNI DEL of container %s on network %s: %s", a.Name, a.Network, cniMessage(err))
		}
	}
	if !a.Pod {
		if err := removeNetns(a.Netns); err != nil {
			return err
		}
	}
	if delErr != nil {
		return delErr
	}
	if err := fault.Point(FaultAfterDel); err != nil {
		return err
	}
	if err := os.Remove(m.attachmentFile(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	m.mu.Lock()
	delete(m.att, id)
	m.mu.Unlock()
	if a.Pod {
		m.Release(id)
	}
	return nil
}

// AttachedIDs lists the containers with an attachment record (pods not included: see
// AttachedPods).
func (m *Manager) AttachedIDs() []string { return m.attachedIDs(false) }

// AttachedPods lists the CRI pods with an attachment record.
func (m *Manager) AttachedPods() []string { return m.attachedIDs(true) }

func (m *Manager) attachedIDs(pods bool) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, a := range m.att {
		if a.Pod == pods {
			ids = append(ids, id)
		}
	}
	return ids
}

// RemoveStrays releases what belongs to no attachment after a restart (the daemon first
// detaches the attachments of containers that are not running): namespace files,
// host-local addresses and libcni cache entries. An attach in progress has its record
// already, so nothing of it counts as stray.
func (m *Manager) RemoveStrays() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ents, err := os.ReadDir(m.cfg.RunDir); err == nil {
		for _, e := range ents {
			if m.att[e.Name()] == nil {
				m.log.Info("removing a stray network namespace", "name", e.Name())
				removeNetns(filepath.Join(m.cfg.RunDir, e.Name()))
			}
		}
	}
	// host-local: <ipam>/<network>/<ip> holds "<container ID>\r\n<ifname>".
	nets, _ := os.ReadDir(m.IPAMDir())
	for _, nd := range nets {
		files, _ := os.ReadDir(filepath.Join(m.IPAMDir(), nd.Name()))
		for _, f := range files {
			if _, err := netip.ParseAddr(f.Name()); err != nil {
				continue // last_reserved_ip.0, lock
			}
			p := filepath.Join(m.IPAMDir(), nd.Name(), f.Name())
			owner := firstLine(p)
			if owner != "" && m.att[owner] == nil {
				m.log.Info("releasing a stray IPAM address", "network", nd.Name(), "ip", f.Name(), "owner", owner)
				os.Remove(p)
			}
		}
	}
	cache := filepath.Join(m.cfg.DataDir, "cache", "results")
	files, _ := os.ReadDir(cache)
	for _, f := range files {
		owned := false
		for id := range m.att {
			if strings.Contains(f.Name(), id) {
				owned = true
				break
			}
		}
		if !owned {
			os.Remove(filepath.Join(cache, f.Name()))
		}
	}
}

func firstLine(p string) string {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}

// Claim is something a container holds alone: a fixed IP on a network, or a host port.
type Claim struct {
	Network  string
	IP       string
	Proto    string
	HostIP   string
	HostPort int
}

type heldClaim struct {
	Claim
	owner, ownerName string
}

func (a Claim) conflicts(b Claim) bool {
	if a.IP != "" && b.IP != "" {
		return a.Network == b.Network && a.IP == b.IP
	}
	if a.HostPort != 0 && b.HostPort != 0 {
		anyIP := func(s string) bool { return s == "" || s == "0.0.0.0" }
		return a.Proto == b.Proto && a.HostPort == b.HostPort && (a.HostIP == b.HostIP || anyIP(a.HostIP) || anyIP(b.HostIP))
	}
	return false
}

func (a Claim) String() string {
	if a.IP != "" {
		return fmt.Sprintf("IP address %s on network %s", a.IP, a.Network)
	}
	ip := a.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("host port %s:%d/%s", ip, a.HostPort, a.Proto)
}

// Claim records the claims of a container or pod, all or none: one already held by another
// is refused with an error naming it (ownerName: "container NAME", "pod NAMESPACE/NAME").
func (m *Manager) Claim(owner, ownerName string, cs []Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range cs {
		for _, h := range m.heldClaims {
			if h.owner != owner && c.conflicts(h.Claim) {
				return fmt.Errorf("%s is already taken by %s: %w", c, h.ownerName, ErrConflict)
			}
		}
		for _, d := range cs[:i] {
			if c.conflicts(d) {
				return fmt.Errorf("%s is asked for twice: %w", c, ErrInvalid)
			}
		}
	}
	for _, c := range cs {
		m.heldClaims = append(m.heldClaims, heldClaim{Claim: c, owner: owner, ownerName: ownerName})
	}
	return nil
}

// Release drops every claim of a container.
func (m *Manager) Release(owner string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.heldClaims[:0]
	for _, h := range m.heldClaims {
		if h.owner != owner {
			kept = append(kept, h)
		}
	}
	m.heldClaims = kept
}

// CheckHostPort tells whether a host port can be bound now (nothing on the host uses it, and
// the host has the address).
func CheckHostPort(proto, hostIP string, port int) error {
	addr := net.JoinHostPort(hostIPOrAny(hostIP), strconv.Itoa(port))
	family := "4"
	if ip := net.ParseIP(hostIP); ip != nil && ip.To4() == nil {
		family = "6"
	}
	busy := func(err error) error {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("host port %s/%s: the host has no address %s: %w", addr, proto, hostIP, ErrInvalid)
		}
		return fmt.Errorf("host port %s/%s is in use on the host: %w", addr, proto, ErrConflict)
	}
	if proto == "udp" {
		c, err := net.ListenPacket("udp"+family, addr)
		if err != nil {
			return busy(err)
		}
		return c.Close()
	}
	l, err := net.Listen("tcp"+family, addr)
	if err != nil {
		return busy(err)
	}
	return l.Close()
}

// FreeHostPort asks the kernel for a free port (for -P and -p CONTAINERPORT).
func FreeHostPort(proto, hostIP string) (int, error) {
	addr := net.JoinHostPort(hostIPOrAny(hostIP), "0")
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func hostIPOrAny(s string) string {
	if s == "" {
		return "0.0.0.0"
	}
	return s
}
