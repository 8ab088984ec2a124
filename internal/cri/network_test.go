package cri

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeNetwork is the PodNetwork hook as the network package will fill it (CNI ADD/DEL).
type fakeNetwork struct {
	mu        sync.Mutex
	setups    []PodNetworkConfig
	teardowns int
	fail      error
}

func (n *fakeNetwork) Setup(ctx context.Context, p PodNetworkConfig) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return nil, n.fail
	}
	n.setups = append(n.setups, p)
	return []string{"10.88.0.7", "fd00::7"}, nil
}

func (n *fakeNetwork) Teardown(ctx context.Context, p PodNetworkConfig) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.teardowns++
	return nil
}

func (n *fakeNetwork) Ready() error { return nil }

func TestPodNetworkHook(t *testing.T) {
	s, _ := testService(t, nil)
	net := &fakeNetwork{}
	s.network = net
	ctx := context.Background()
	c := podConfig("web")
	c.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080}}
	c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"ns.svc.cluster.local"}, Options: []string{"ndots:5"}}
	r, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	if len(net.setups) != 1 || net.setups[0].NetNS != filepath.Join(s.pods.pinPath(r.PodSandboxId), "net") ||
		!namespacePinned(net.setups[0].NetNS) || net.setups[0].PortMappings[0].HostPort != 8080 {
		t.Fatalf("network setup got %+v", net.setups)
	}
	st, _ := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: r.PodSandboxId})
	if st.Status.Network.Ip != "10.88.0.7" || len(st.Status.Network.AdditionalIps) != 1 || st.Status.Network.AdditionalIps[0].Ip != "fd00::7" {
		t.Errorf("pod IPs %v", st.Status.Network)
	}
	files := s.pods.filesDir(r.PodSandboxId)
	hosts, _ := os.ReadFile(filepath.Join(files, "hosts"))
	resolv, _ := os.ReadFile(filepath.Join(files, "resolv.conf"))
	if !strings.Contains(string(hosts), "10.88.0.7\tweb\n") || string(resolv) != "nameserver 10.96.0.10\nsearch ns.svc.cluster.local\noptions ndots:5\n" {
		t.Errorf("hosts %q resolv.conf %q", hosts, resolv)
	}
	for i := 0; i < 2; i++ {
		s.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: r.PodSandboxId})
	}
	s.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: r.PodSandboxId})
	if net.teardowns != 1 {
		t.Errorf("%d teardowns for one setup (stop twice, then remove), want 1", net.teardowns)
	}

	// A setup that fails leaves nothing: no record, no pinned namespace, no directory.
	net.fail = errors.New("cni: no IPs left")
	_, err = s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("full")})
	if err == nil || !strings.Contains(err.Error(), "no IPs left") {
		t.Fatalf("failed setup: %v", err)
	}
	for _, d := range []string{s.pods.recordDir, s.pods.pinDir} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("left in %s after a failed setup: %v", d, ents)
		}
	}
	net.fail = nil
	if _, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("full")}); err != nil {
		t.Errorf("the name of a failed pod is not free again: %v", err)
	}
}

// Concurrent RunPodSandbox calls of one pod: one wins, the others are AlreadyExists.
func TestRunPodSandboxConcurrentSameName(t *testing.T) {
	s, _ := testService(t, nil)
	var wg sync.WaitGroup
	codesSeen := make(chan codes.Code, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("same")})
			codesSeen <- status.Code(err)
		}()
	}
	wg.Wait()
	close(codesSeen)
	n := map[codes.Code]int{}
	for c := range codesSeen {
		n[c]++
	}
	if n[codes.OK] != 1 || n[codes.AlreadyExists] != 7 {
		t.Errorf("outcomes %v, want one OK and 7 AlreadyExists", n)
	}
}

func TestStreamServerConfig(t *testing.T) {
	for _, tc := range []struct{ addr, port, want string }{
		{"localhost", "", `stream-server-address "localhost"`},
		{"", "http", `stream-server-port "http"`},
		{"", "70000", `stream-server-port "70000"`},
	} {
		if _, err := newStreamServer(nil, tc.addr, tc.port); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("addr %q port %q: %v, want one naming %s", tc.addr, tc.port, err, tc.want)
		}
	}
	ss, err := newStreamServer(nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	if !strings.HasPrefix(ss.addr(), "127.0.0.1:") {
		t.Errorf("default address %s, want 127.0.0.1 and a free port", ss.addr())
	}
}

// reconcilingNetwork records what New hands a PodNetworkReconciler.
type reconcilingNetwork struct {
	fakeNetwork
	networked [][]string
}

func (n *reconcilingNetwork) Reconcile(ctx context.Context, networked []string) {
	n.networked = append(n.networked, networked)
}

// After a restart New tells the pod network which pods have their network up (a stopped
// pod's is released), so it can release every other attachment.
func TestPodNetworkReconcileAtLoad(t *testing.T) {
	s, e := testService(t, nil)
	s.network = &fakeNetwork{}
	ctx := context.Background()
	up, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("up")})
	if err != nil {
		t.Fatal(err)
	}
	down, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("down")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: down.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	net := &reconcilingNetwork{}
	s2, err := New(s.cfg, e, s.images, net)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.stream.close()
	if len(net.networked) != 1 || len(net.networked[0]) != 1 || net.networked[0][0] != up.PodSandboxId {
		t.Errorf("Reconcile got %v, want once with only %s", net.networked, up.PodSandboxId)
	}
}
