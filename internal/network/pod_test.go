package network

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/internal/testenv"
)

// fakePlugin is a CNI plugin that logs each call (command, CNI_ARGS, the configuration on
// stdin) in its directory and answers ADD with two addresses; it fails ADD while a file
// "fail" is there.
const fakePlugin = `#!/bin/sh
d=$(dirname "$0")
cfg=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_ARGS" >> "$d/calls"
printf '%s\n' "$cfg" > "$d/stdin.$CNI_COMMAND"
case "$CNI_COMMAND" in
ADD)
	if [ -e "$d/fail" ]; then
		echo '{"cniVersion":"1.0.0","code":11,"msg":"no addresses left"}'
		exit 1
	fi
	echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:01","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"fd00::5/64","interface":0},{"address":"10.99.0.5/24","gateway":"10.99.0.1","interface":0}]}' ;;
VERSION)
	echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
`

func podTestManager(t *testing.T) (*Manager, string) {
	t.Helper()
	testenv.Root(t, "a pod attachment needs a network namespace")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.WriteFile(filepath.Join(bin, "fakecni"), []byte(fakePlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{BinDirs: []string{bin}, ConfDir: filepath.Join(dir, "cni"), DataDir: filepath.Join(dir, "data"),
		RunDir: filepath.Join(dir, "run")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return m, bin
}

// podNetns is a pinned network namespace standing in for a pod's.
func podNetns(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := newNetns(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetns(p) })
	return p
}

const fakeConflist = `{"cniVersion":"1.0.0","name":"podnet","plugins":[{"type":"fakecni","capabilities":{"portMappings":true}}]}`

func TestAttachPod(t *testing.T) {
	m, bin := podTestManager(t)
	ctx := context.Background()
	port, err := FreeHostPort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	args := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "web"},
		{"K8S_POD_INFRA_CONTAINER_ID", "pod1"}, {"K8S_POD_UID", "u1"}}
	req := PodAttachRequest{PodID: "pod1", Name: "ns/web", Netns: podNetns(t, "pod1"), Network: "podnet",
		Conflist: []byte(fakeConflist), Args: args,
		Ports: []PortMapping{{HostPort: port, ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"}}}
	a, err := m.AttachPod(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.PlainIPs(); strings.Join(got, " ") != "10.99.0.5 fd00::5" {
		t.Errorf("pod IPs %v, want IPv4 first", got)
	}
	calls, _ := os.ReadFile(filepath.Join(bin, "calls"))
	wantArgs := "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=u1"
	if string(calls) != "ADD pod1 eth0 "+wantArgs+"\n" {
		t.Errorf("plugin calls %q, want one ADD with %s", calls, wantArgs)
	}
	var conf struct {
		RuntimeConfig struct {
			PortMappings []PortMapping `json:"portMappings"`
		} `json:"runtimeConfig"`
	}
	stdin, _ := os.ReadFile(filepath.Join(bin, "stdin.ADD"))
	json.Unmarshal(stdin, &conf)
	if pm := conf.RuntimeConfig.PortMappings; len(pm) != 1 || pm[0] != req.Ports[0] {
		t.Errorf("portMappings given to the plugin: %+v (config %s)", pm, stdin)
	}
	if rec := m.Attachment("pod1"); rec == nil || !rec.Pod || len(m.AttachedPods()) != 1 || len(m.AttachedIDs()) != 0 {
		t.Errorf("attachment %+v, pods %v, containers %v", rec, m.AttachedPods(), m.AttachedIDs())
	}

	// Another pod on the same host port: refused before any plugin runs, naming the holder.
	other := req
	other.PodID, other.Name, other.Netns = "pod2", "ns/other", podNetns(t, "pod2")
	if _, err := m.AttachPod(ctx, other); err == nil || !strings.Contains(err.Error(), "already taken by pod ns/web") {
		t.Errorf("second pod on the host port: %v", err)
	}

	// DEL with the same arguments and the cached result; the pod's namespace stays (the CRI's).
	if err := m.Detach(ctx, "pod1"); err != nil {
		t.Fatal(err)
	}
	calls, _ = os.ReadFile(filepath.Join(bin, "calls"))
	if !strings.HasSuffix(string(calls), "DEL pod1 eth0 "+wantArgs+"\n") {
		t.Errorf("plugin calls %q, want a DEL with the ADD's arguments", calls)
	}
	if stdin, _ := os.ReadFile(filepath.Join(bin, "stdin.DEL")); !strings.Contains(string(stdin), `"prevResult"`) || !strings.Contains(string(stdin), "10.99.0.5/24") {
		t.Errorf("DEL's configuration has no cached result: %s", stdin)
	}
	if !isNetns(req.Netns) {
		t.Error("the pod's network namespace was removed by the network manager")
	}
	if _, err := os.Stat(m.attachmentFile("pod1")); !os.IsNotExist(err) || m.Attachment("pod1") != nil {
		t.Errorf("the attachment record is left: %v", err)
	}
	if err := m.Detach(ctx, "pod1"); err != nil {
		t.Errorf("second detach: %v", err)
	}
	if calls2, _ := os.ReadFile(filepath.Join(bin, "calls")); string(calls2) != string(calls) {
		t.Errorf("a second detach ran the plugin again: %q", calls2)
	}

	// The port is free again; a failed ADD is undone (DEL), leaves no record and frees it.
	os.WriteFile(filepath.Join(bin, "fail"), nil, 0o644)
	if _, err := m.AttachPod(ctx, other); err == nil || !strings.Contains(err.Error(), "no addresses left") {
		t.Fatalf("a failing ADD: %v", err)
	}
	calls, _ = os.ReadFile(filepath.Join(bin, "calls"))
	if !strings.HasSuffix(string(calls), "ADD pod2 eth0 "+wantArgs+"\nDEL pod2 eth0 "+wantArgs+"\n") {
		t.Errorf("plugin calls %q, want the failed ADD undone by a DEL", calls)
	}
	if m.Attachment("pod2") != nil || len(m.AttachedPods()) != 0 {
		t.Error("a failed attach left its record")
	}
	os.Remove(filepath.Join(bin, "fail"))
	if _, err := m.AttachPod(ctx, other); err != nil {
		t.Errorf("the host port is not free again after a failed attach: %v", err)
	}
	m.Detach(ctx, "pod2")

	// A conflist naming a plugin that is not there is refused before any plugin runs.
	before, _ := os.ReadFile(filepath.Join(bin, "calls"))
	missing := other
	missing.Conflist = []byte(`{"cniVersion":"1.0.0","name":"podnet","plugins":[{"type":"fakecni"},{"type":"nosuchcni"}]}`)
	if _, err := m.AttachPod(ctx, missing); err == nil || !strings.Contains(err.Error(), `CNI plugin "nosuchcni"`) || !strings.Contains(err.Error(), bin) {
		t.Errorf("a missing plugin: %v, want one line naming it and cni-bin-dir", err)
	}
	if after, _ := os.ReadFile(filepath.Join(bin, "calls")); string(after) != string(before) || m.Attachment("pod2") != nil {
		t.Errorf("a conflist with a missing plugin ran plugins (%q) or left a record", after)
	}

	// A namespace that is not one is refused before anything.
	bad := req
	bad.Netns = filepath.Join(t.TempDir(), "nothing")
	if _, err := m.AttachPod(ctx, bad); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
		t.Errorf("attach to a missing namespace: %v", err)
	}
}

func TestCheckHostPort(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := CheckHostPort("tcp", "127.0.0.1", port); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a bound port: %v", err)
	}
	// 203.0.113.77 (TEST-NET-3) is not this host's: binding it fails, no packet is sent.
	local := false
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.ParseIP("203.0.113.77")) {
			local = true
		}
	}
	if err := CheckHostPort("tcp", "203.0.113.77", port); !local && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no address 203.0.113.77")) {
		t.Errorf("an address the host lacks: %v", err)
	}
	if err := CheckHostPort("udp", "::1", port); err != nil && !strings.Contains(err.Error(), "[::1]") {
		t.Errorf("an IPv6 host address: %v", err)
	}
}
