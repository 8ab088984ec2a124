package cri

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/network"
)

// FaultRunAfterPin is a fault point (internal/fault): a RunPodSandbox whose namespaces are
// pinned (and pod init started) but whose network and record are not made.
const FaultRunAfterPin = "cri-run-after-pin"

// FaultRunAfterNetwork is a fault point: a RunPodSandbox whose network is set up (CNI ADD done
// and recorded by the network manager) but whose record is not written.
const FaultRunAfterNetwork = "cri-run-after-network"

// RunPodSandbox checks the whole config, then makes the pod: its files, its pinned
// namespaces, its network (the PodNetwork hook), and last its record, the commit point. A
// failure at any step undoes the steps before it.
func (s *Service) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	sb, err := s.sandboxFromConfig(r.GetConfig(), r.RuntimeHandler)
	if err != nil {
		return nil, gerr(err)
	}
	if err := s.pods.reserve(sb.fullName(), sb.ID); err != nil {
		return nil, gerr(err)
	}
	unlock := s.pods.lock(sb.ID)
	defer unlock()
	var undo []func()
	fail := func(err error) (*runtimeapi.RunPodSandboxResponse, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, gerr(err)
	}
	undo = append(undo, func() { s.pods.release(sb.fullName(), sb.ID) })
	files, pins := s.pods.filesDir(sb.ID), s.pods.pinPath(sb.ID)
	if err := os.Mkdir(files, 0o700); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { os.RemoveAll(files) })
	if err := os.Mkdir(pins, 0o700); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { os.RemoveAll(pins) })
	if err := writePodFiles(files, sb); err != nil {
		return fail(err)
	}
	var kinds []nsKind
	if !sb.HostNetwork {
		kinds = append(kinds, nsNet, nsUTS)
	}
	if !sb.HostIPC {
		kinds = append(kinds, nsIPC)
	}
	hostname := sb.Hostname
	if sb.HostNetwork {
		hostname = ""
	}
	// The IPC sysctls now; the network ones once CNI has made the pod's interfaces (a sysctl
	// may name eth0, and the plugins set some of their own).
	ipcSysctls, netSysctls := map[string]string{}, map[string]string{}
	for k, v := range sb.Sysctls {
		if sysctlNamespace(k) == nsNet {
			netSysctls[k] = v
		} else {
			ipcSysctls[k] = v
		}
	}
	sb.Namespaces, err = pinNamespaces(pinRequest{Dir: pins, Kinds: kinds, Hostname: hostname, Sysctls: ipcSysctls})
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { unpinNamespaces(pins) })
	if sb.SharedPID {
		pi, err := startPodInit(pins)
		if err != nil {
			return fail(err)
		}
		sb.Init, sb.Namespaces[nsPID] = pi, filepath.Join(pins, string(nsPID))
		undo = append(undo, func() { killPodInitIn(pins) })
	}
	if err := fault.Point(FaultRunAfterPin); err != nil {
		return fail(err)
	}
	if !sb.HostNetwork {
		// CNI ADD (the daemon's PodNetwork), in the pinned namespace.
		ips, err := s.network.Setup(ctx, sb.networkConfig())
		if err != nil {
			return fail(fmt.Errorf("pod %s: network setup: %w", sb.fullName(), err))
		}
		sb.IPs, sb.NetworkUp = ips, true
		undo = append(undo, func() { s.network.Teardown(context.Background(), sb.networkConfig()) })
		if err := writeSysctlsIn(sb.Namespaces[nsNet], netSysctls); err != nil {
			return fail(err)
		}
		if err := fault.Point(FaultRunAfterNetwork); err != nil {
			return fail(err)
		}
		if len(ips) > 0 {
			// Now that the pod has addresses, its hosts file names them.
			if err := writePodFiles(files, sb); err != nil {
				return fail(err)
			}
		}
	}
	if err := s.pods.save(sb); err != nil {
		return fail(err)
	}
	s.log.Info("pod sandbox ready", "id", sb.ID, "pod", sb.fullName())
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}

func (sb *sandbox) networkConfig() PodNetworkConfig {
	return PodNetworkConfig{ID: sb.ID, Name: sb.Name, Namespace: sb.Namespace, UID: sb.UID,
		NetNS: sb.Namespaces[nsNet], Hostname: sb.Hostname, PortMappings: sb.Ports, DNS: sb.DNS,
		CgroupParent: sb.CgroupParent}
}

// hostnameRe is an RFC 1123 host name, as Kubernetes makes them.
var hostnameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

// sandboxFromConfig checks a PodSandboxConfig and makes the pod's record from it. Every
// error is one line naming the field and the value.
func (s *Service) sandboxFromConfig(c *runtimeapi.PodSandboxConfig, handler string) (*sandbox, error) {
	md := c.GetMetadata()
	if md == nil || md.Name == "" || md.Namespace == "" || md.Uid == "" {
		return nil, invalidf("pod sandbox config: metadata name, namespace and uid are required (got %v)", md)
	}
	for _, f := range [][2]string{{"name", md.Name}, {"namespace", md.Namespace}, {"uid", md.Uid}} {
		field, v := f[0], f[1]
		// They become CNI_ARGS (K8S_POD_NAME=...;...): a ';' or '=' would add arguments of
		// the pod author's choosing, such as host-local's IP=.
		if len(v) > 253 || strings.ContainsFunc(v, func(r rune) bool { return r == ';' || r == '=' || r <= ' ' || r == 0x7f }) {
			return nil, invalidf("pod metadata %s %q: want at most 253 characters without ';', '=', spaces or control characters", field, v)
		}
	}
	if handler != "" && !slices.Contains(s.cfg.RuntimeHandlers, handler) {
		return nil, invalidf("runtime handler %q: not configured (have %s)", handler, strings.Join(s.cfg.RuntimeHandlers, ", "))
	}
	sb := &sandbox{ID: newID(), Name: md.Name, Namespace: md.Namespace, UID: md.Uid, Attempt: md.Attempt,
		Labels: c.Labels, Annotations: c.Annotations, Created: time.Now().UTC(), Hostname: c.Hostname,
		LogDirectory: c.LogDirectory, RuntimeName: handler}
	if sb.Hostname != "" && (len(sb.Hostname) > 64 || !hostnameRe.MatchString(sb.Hostname)) {
		return nil, invalidf("pod hostname %q: want an RFC 1123 host name of at most 64 characters", sb.Hostname)
	}
	if sb.LogDirectory != "" && !filepath.IsAbs(sb.LogDirectory) {
		return nil, invalidf("pod log directory %q: want an absolute path", sb.LogDirectory)
	}
	lx := c.GetLinux()
	if p := lx.GetCgroupParent(); p != "" {
		if strings.HasSuffix(p, ".slice") {
			return nil, invalidf("pod cgroup parent %q: a systemd slice, but the engine's cgroup driver is cgroupfs (set the kubelet's cgroupDriver: cgroupfs)", p)
		}
		if strings.IndexByte(p, 0) >= 0 || slices.Contains(strings.Split(p, "/"), "..") {
			return nil, invalidf("pod cgroup parent %q: want a cgroup path without .. components", p)
		}
		sb.CgroupParent = path.Clean("/" + p)
	}
	ns := lx.GetSecurityContext().GetNamespaceOptions()
	switch ns.GetNetwork() {
	case runtimeapi.NamespaceMode_NODE:
		sb.HostNetwork = true
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, invalidf("pod network namespace mode %v: want POD or NODE", ns.GetNetwork())
	}
	switch ns.GetIpc() {
	case runtimeapi.NamespaceMode_NODE:
		sb.HostIPC = true
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, invalidf("pod IPC namespace mode %v: want POD or NODE", ns.GetIpc())
	}
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		sb.HostPID = true
	case runtimeapi.NamespaceMode_CONTAINER:
	case runtimeapi.NamespaceMode_POD:
		// Shared by the pod's containers: held by a pod init (podinit_linux.go).
		sb.SharedPID = true
	default:
		return nil, invalidf("pod PID namespace mode %v: want POD, CONTAINER or NODE", ns.GetPid())
	}
	if len(lx.GetSysctls()) > 0 {
		sb.Sysctls = map[string]string{}
	}
	for k, v := range lx.GetSysctls() {
		if strings.ContainsAny(v, "\n\x00") {
			return nil, invalidf("sysctl %s=%q: the value may not hold a newline", k, v)
		}
		switch sysctlNamespace(k) {
		case nsNet:
			if sb.HostNetwork {
				return nil, invalidf("sysctl %s: a network sysctl in a pod on the host's network would change the node", k)
			}
		case nsIPC:
			if sb.HostIPC {
				return nil, invalidf("sysctl %s: an IPC sysctl in a pod on the host's IPC namespace would change the node", k)
			}
		default:
			return nil, invalidf("sysctl %s: not namespaced (want net.*, kernel.shm*, kernel.msg*, kernel.sem or fs.mqueue.*)", k)
		}
		sb.Sysctls[k] = v
	}
	if d := c.GetDnsConfig(); d != nil {
		for _, sv := range d.Servers {
			if net.ParseIP(sv) == nil {
				return nil, invalidf("pod DNS server %q: want an IP address", sv)
			}
		}
		for _, x := range append(slices.Clone(d.Searches), d.Options...) {
			if x == "" || strings.ContainsAny(x, " \t\r\n\x00") {
				return nil, invalidf("pod DNS search or option %q: want one word", x)
			}
		}
		sb.DNS = DNSConfig{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	for _, pm := range c.PortMappings {
		proto := strings.ToLower(pm.Protocol.String())
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 || pm.HostPort < 0 || pm.HostPort > 65535 {
			return nil, invalidf("pod port mapping %d->%d: want ports in 1-65535", pm.HostPort, pm.ContainerPort)
		}
		if pm.HostIp != "" && net.ParseIP(pm.HostIp) == nil {
			return nil, invalidf("pod port mapping host IP %q: want an IP address", pm.HostIp)
		}
		sb.Ports = append(sb.Ports, PortMapping{Protocol: proto, ContainerPort: pm.ContainerPort, HostPort: pm.HostPort, HostIP: pm.HostIp})
	}
	return sb, nil
}

// writePodFiles writes the files every container of the pod binds: /etc/hostname,
// /etc/hosts and /etc/resolv.conf. A pod on the host's network gets copies of the host's
// hosts and (without a DNS config) resolv.conf, as the kubelet expects; a pod of its own
// network gets loopback entries and its addresses under its hostname, and the host's
// resolv.conf without loopback nameservers (unreachable from its namespace).
func writePodFiles(dir string, sb *sandbox) error {
	hostname := sb.Hostname
	if sb.HostNetwork || hostname == "" {
		hostname, _ = os.Hostname()
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, ip := range sb.IPs {
		hosts += ip + "\t" + hostname + "\n"
	}
	hostResolv, _ := network.ReadHostFile("/etc/resolv.conf")
	if sb.HostNetwork {
		if h, err := network.ReadHostFile("/etc/hosts"); err == nil && len(h) > 0 {
			hosts = string(h)
		}
	}
	var resolv string
	switch {
	case len(sb.DNS.Servers)+len(sb.DNS.Searches)+len(sb.DNS.Options) > 0:
		var b strings.Builder
		for _, sv := range sb.DNS.Servers {
			b.WriteString("nameserver " + sv + "\n")
		}
		if len(sb.DNS.Searches) > 0 {
			b.WriteString("search " + strings.Join(sb.DNS.Searches, " ") + "\n")
		}
		if len(sb.DNS.Options) > 0 {
			b.WriteString("options " + strings.Join(sb.DNS.Options, " ") + "\n")
		}
		resolv = b.String()
	case sb.HostNetwork:
		resolv = string(hostResolv)
	default:
		resolv = string(network.ResolvConf(hostResolv, nil, nil, nil, ""))
	}
	for name, data := range map[string]string{"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv} {
		if err := atomicfile.Replace(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return fmt.Errorf("pod %s: writing %s: %w", sb.fullName(), name, err)
		}
	}
	return nil
}
