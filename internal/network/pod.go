package network

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Pod attachments: a CRI pod sandbox on a CNI network. They follow the container
// attachments' crash-safety pattern (the record, with the conflist and the CNI arguments,
// is written before CNI ADD and removed only after a successful DEL), with two differences:
// the network namespace is the pod's own, pinned by the CRI (never made nor removed here),
// and the conflist is whatever the pod network is (the cluster admin's from cni-conf-dir,
// or an engine network's).

// PodAttachRequest asks for a pod's attachment.
type PodAttachRequest struct {
	PodID    string        // the sandbox ID: CNI's container ID
	Name     string        // namespace/name, for messages and dnsname's aliases
	Netns    string        // the pod's pinned network namespace
	Network  string        // the conflist's name
	Conflist []byte        // the conflist, kept for the DEL
	Args     [][2]string   // CNI_ARGS (K8S_POD_NAMESPACE, ...)
	Ports    []PortMapping // portmap's portMappings
	Aliases  []string      // dnsname's aliases on an engine network
}

// AttachPod runs CNI ADD for a pod in its namespace. Its host ports are claimed against the
// other pods' and containers' and must be free on the host. On error nothing is left.
func (m *Manager) AttachPod(ctx context.Context, req PodAttachRequest) (*Attachment, error) {
	if !isNetns(req.Netns) {
		return nil, fmt.Errorf("pod %s: %s is not a network namespace: %w", req.Name, req.Netns, ErrInvalid)
	}
	// A plugin missing from cni-bin-dir would fail the ADD half-way, and then the DEL before
	// it reaches the plugins that did their part: refused before anything.
	if err := m.CheckPlugins(req.Conflist); err != nil {
		return nil, err
	}
	unlock := m.lockContainer(req.PodID)
	defer unlock()
	m.mu.Lock()
	stale := m.att[req.PodID] != nil
	m.mu.Unlock()
	if stale {
		if err := m.detachLocked(ctx, req.PodID); err != nil {
			return nil, err
		}
	}
	claims := PortClaims(req.Ports)
	if err := m.Claim(req.PodID, "pod "+req.Name, claims); err != nil {
		return nil, err
	}
	for _, c := range claims {
		if c.Proto != "tcp" && c.Proto != "udp" {
			continue // sctp: no socket to try here
		}
		if err := CheckHostPort(c.Proto, c.HostIP, c.HostPort); err != nil {
			m.Release(req.PodID)
			return nil, err
		}
	}
	var netID string
	if n, err := m.Get(req.Network); err == nil {
		netID = n.ID
	}
	a := &Attachment{ContainerID: req.PodID, Name: req.Name, Aliases: req.Aliases, Network: req.Network,
		NetworkID: netID, Netns: req.Netns, Ports: req.Ports, Conflist: req.Conflist, Pod: true, Args: req.Args}
	if a.Ports == nil {
		a.Ports = []PortMapping{}
	}
	if a.Aliases == nil {
		a.Aliases = []string{}
	}
	if err := m.saveAttachment(a); err != nil {
		m.Release(req.PodID)
		return nil, err
	}
	m.setAttachment(a)
	fail := func(err error) (*Attachment, error) {
		// The same DEL as a stop's; it releases the claims too.
		if derr := m.detachLocked(context.WithoutCancel(ctx), a.ContainerID); derr != nil {
			// The record stays for the next start's DEL; the host ports go now: the pod
			// will not exist.
			m.log.Error("undoing a failed pod attach", "pod", req.Name, "err", derr)
			m.Release(req.PodID)
		}
		return nil, err
	}
	if err := m.add(ctx, a); err != nil {
		return fail(err)
	}
	if err := m.saveAttachment(a); err != nil {
		return fail(err)
	}
	m.setAttachment(a)
	c := *a
	return &c, nil
}

// CheckPlugins tells whether every plugin of a conflist is in the plugin directories.
func (m *Manager) CheckPlugins(conflist []byte) error {
	list, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		return fmt.Errorf("CNI configuration: %v: %w", err, ErrInvalid)
	}
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.cfg.BinDirs); err != nil {
			return errdefs.Errorf(errdefs.ErrFailedPrecondition, "network %s: CNI plugin %q is in none of the cni-bin-dir directories %s",
				list.Name, p.Network.Type, strings.Join(m.cfg.BinDirs, ":"))
		}
	}
	return nil
}

// ReclaimPod takes a pod's host ports again after a daemon restart.
func (m *Manager) ReclaimPod(id string) error {
	a := m.Attachment(id)
	if a == nil || !a.Pod {
		return nil
	}
	return m.Claim(id, "pod "+a.Name, PortClaims(a.Ports))
}

// PortClaims are the host ports of port mappings, as claims.
func PortClaims(ports []PortMapping) []Claim {
	var out []Claim
	for _, p := range ports {
		if p.HostPort > 0 {
			out = append(out, Claim{Proto: p.Protocol, HostIP: p.HostIP, HostPort: p.HostPort})
		}
	}
	return out
}

// PlainIPs are an attachment's addresses without their prefix lengths, IPv4 first.
func (a *Attachment) PlainIPs() []string {
	var v4, v6 []string
	for _, c := range a.IPs {
		ip, _, err := net.ParseCIDR(c)
		if err != nil {
			continue
		}
		if ip.To4() != nil {
			v4 = append(v4, ip.String())
		} else {
			v6 = append(v6, ip.String())
		}
	}
	return append(v4, v6...)
}

// PodConflist is the conflist a pod gets on an engine network (daemon.json default-network
// when cni-conf-dir has no conflist of the admin's).
func (m *Manager) PodConflist(name string, ports bool) ([]byte, error) {
	n, err := m.Get(name)
	if err != nil {
		return nil, err
	}
	return m.conflistFor(n, ports)
}

// IsEngineConflist tells whether a file name of cni-conf-dir is one of the engine's own
// network conflists (never a pod network: those are the admin's).
func IsEngineConflist(name string) bool { return strings.HasPrefix(name, "isulacni-") }
