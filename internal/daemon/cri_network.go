package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"

	"github.com/isulad-go/isulad/internal/cri"
	"github.com/isulad-go/isulad/internal/network"
)

// The pods' network (cri.PodNetwork) on the engine's network machinery: with daemon.json
// network-plugin "cni", RunPodSandbox attaches the pod's pinned network namespace to the pod
// network through the network manager's pod attachments (internal/network/pod.go: recorded
// before CNI ADD, released by CNI DEL with the recorded conflist and arguments), so a crash
// at any point is undone at the next start. The pod network is, as the kubelet expects of a
// runtime, the first CNI configuration of cni-conf-dir by file name (.conf, .conflist,
// .json; the engine's own isulacni-* network conflists are not candidates); without one,
// daemon.json default-network, an engine network. With network-plugin "" (iSulad's default)
// pods have a loopback interface only.

// maxCNIConfSize is the largest configuration file read (iSulad's limit).
const maxCNIConfSize = 1 << 20

type podNetwork struct {
	d *Daemon

	mu     sync.Mutex
	warned map[string]string // invalid files already logged, with why (Status asks often)
}

func newPodNetwork(d *Daemon) *podNetwork { return &podNetwork{d: d, warned: map[string]string{}} }

// warnOnce logs an invalid configuration file once per file and reason.
func (p *podNetwork) warnOnce(file string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.warned[file] == err.Error() {
		return
	}
	p.warned[file] = err.Error()
	p.d.log.Warn("skipping an invalid CNI configuration", "file", file, "err", err)
}

// podNetworkConfig picks the pod network now (an admin may drop a conflist in at any time):
// its name and conflist.
func (p *podNetwork) podNetworkConfig(ports bool) (string, []byte, error) {
	dir := p.d.cfg.cniConfDir()
	files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return "", nil, fmt.Errorf("cni-conf-dir %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		if network.IsEngineConflist(filepath.Base(f)) {
			continue
		}
		list, err := loadCNIConf(f)
		if err != nil {
			p.warnOnce(f, err)
			continue
		}
		return list.Name, list.Bytes, nil
	}
	if n := p.d.cfg.DefaultNetwork; n != "" {
		conf, err := p.d.net.PodConflist(n, ports)
		if err != nil {
			return "", nil, fmt.Errorf("default-network %s: %w", n, err)
		}
		return n, conf, nil
	}
	return "", nil, fmt.Errorf("network-plugin is cni but cni-conf-dir %s has no CNI configuration (.conflist, .conf or .json) and no default-network is set", dir)
}

// loadCNIConf reads one configuration file as a conflist (a single-plugin .conf or .json
// becomes a list of one; one with "plugins" is a list whatever its extension).
func loadCNIConf(path string) (*libcni.NetworkConfigList, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxCNIConfSize {
		return nil, fmt.Errorf("not a regular file of at most %d bytes", maxCNIConfSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".conflist") {
		// A single plugin's configuration (libcni no longer reads these, the kubelet's
		// runtimes still do): the list of that one plugin, with its name and version.
		var conf map[string]any
		if err := json.Unmarshal(data, &conf); err != nil {
			return nil, err
		}
		if _, isList := conf["plugins"]; !isList {
			data, _ = json.Marshal(map[string]any{"cniVersion": conf["cniVersion"], "name": conf["name"], "plugins": []any{conf}})
		}
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 || list.Name == "" {
		return nil, fmt.Errorf("no name or no plugins")
	}
	return list, nil
}

func (p *podNetwork) Setup(ctx context.Context, pod cri.PodNetworkConfig) ([]string, error) {
	if p.d.cfg.NetworkPlugin == "" {
		return nil, nil
	}
	var ports []network.PortMapping
	for _, pm := range pod.PortMappings {
		// The kubelet passes the container ports it was told of, published or not.
		if pm.HostPort > 0 {
			ports = append(ports, network.PortMapping{HostPort: int(pm.HostPort), ContainerPort: int(pm.ContainerPort),
				Protocol: pm.Protocol, HostIP: pm.HostIP})
		}
	}
	name, conf, err := p.podNetworkConfig(len(ports) > 0)
	if err != nil {
		return nil, err
	}
	var aliases []string
	if pod.Hostname != "" {
		aliases = append(aliases, pod.Hostname)
	}
	a, err := p.d.net.AttachPod(ctx, network.PodAttachRequest{
		PodID: pod.ID, Name: pod.Namespace + "/" + pod.Name, Netns: pod.NetNS, Network: name,
		Conflist: conf, Ports: ports, Aliases: aliases,
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name}, {"K8S_POD_INFRA_CONTAINER_ID", pod.ID}, {"K8S_POD_UID", pod.UID}},
	})
	if err != nil {
		return nil, err
	}
	return a.PlainIPs(), nil
}

// Teardown is CNI DEL with what the ADD used; a pod without an attachment has nothing to
// release, whatever network-plugin is now.
func (p *podNetwork) Teardown(ctx context.Context, pod cri.PodNetworkConfig) error {
	if p.d.net.Attachment(pod.ID) == nil {
		return nil
	}
	return p.d.net.Detach(ctx, pod.ID)
}

func (p *podNetwork) Ready() error {
	if p.d.cfg.NetworkPlugin == "" {
		return nil
	}
	_, conf, err := p.podNetworkConfig(false)
	if err != nil {
		return err
	}
	return p.d.net.CheckPlugins(conf)
}

// Reconcile runs once the CRI has loaded its pods after a start: the attachments of pods
// without a networked record (a RunPodSandbox or a removal cut short) are released; the
// others take their host ports again.
func (p *podNetwork) Reconcile(ctx context.Context, networked []string) {
	for _, id := range p.d.net.AttachedPods() {
		if slices.Contains(networked, id) {
			if err := p.d.net.ReclaimPod(id); err != nil {
				p.d.log.Warn("pod's host ports conflict after restart", "id", id, "err", err)
			}
			continue
		}
		p.d.log.Info("releasing the network of a pod that has no record", "id", id)
		if err := p.d.net.Detach(ctx, id); err != nil {
			p.d.log.Error("releasing a stale pod network attachment", "id", id, "err", err)
		}
	}
}
