package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/isulad-go/isulad/internal/cri"
	"github.com/isulad-go/isulad/internal/network"
)

func TestNetworkPluginConfig(t *testing.T) {
	for _, v := range []string{"flannel", "CNI"} {
		c := Config{Graph: "/g", State: "/s", NetworkPlugin: v}
		if err := c.Finish(); err == nil || !strings.Contains(err.Error(), `network-plugin "`+v+`"`) {
			t.Errorf("network-plugin %q: %v, want one line naming it", v, err)
		}
	}
}

// Without network-plugin pods have loopback only: no CNI, ready.
func TestPodNetworkLoopbackOnly(t *testing.T) {
	d := netTestDaemon(t)
	d.cfg.CNIConfDir = filepath.Join(t.TempDir(), "cni")
	p := newPodNetwork(d)
	if err := p.Ready(); err != nil {
		t.Errorf("Ready without a plugin: %v", err)
	}
	ips, err := p.Setup(context.Background(), cri.PodNetworkConfig{ID: "x", NetNS: "/nonexistent"})
	if err != nil || ips != nil {
		t.Errorf("Setup without a plugin: %v %v, want nothing done", ips, err)
	}
	if err := p.Teardown(context.Background(), cri.PodNetworkConfig{ID: "x"}); err != nil {
		t.Errorf("Teardown of a pod without an attachment: %v", err)
	}
}

// The pod network is the first valid configuration of cni-conf-dir by name, never an engine
// network's conflist; without one, default-network; without that, not ready.
func TestPodNetworkConfigChoice(t *testing.T) {
	d := netTestDaemon(t)
	dir := t.TempDir()
	d.cfg.CNIConfDir, d.cfg.NetworkPlugin = dir, "cni"
	p := newPodNetwork(d)
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := p.Ready()
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "default-network") {
		t.Fatalf("Ready with an empty cni-conf-dir: %v, want one naming the directory and default-network", err)
	}
	if _, err := p.Setup(context.Background(), cri.PodNetworkConfig{ID: "x", NetNS: "/x"}); err == nil {
		t.Fatal("Setup with no pod network succeeded")
	}
	write("isulacni-mine.conflist", `{"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"bridge"}]}`)
	write("01-garbage.conflist", `{"name":`)
	write("02-noplugins.conflist", `{"cniVersion":"1.0.0","name":"empty","plugins":[]}`)
	write("05-notes.txt", `{"cniVersion":"1.0.0","name":"txt","type":"bridge"}`)
	os.Symlink("/etc/passwd", filepath.Join(dir, "03-link.conf"))
	write("10-single.conf", `{"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"cni9"}`)
	write("20-later.conflist", `{"cniVersion":"1.0.0","name":"later","plugins":[{"type":"bridge"}]}`)
	write("06-list.json", `{"cniVersion":"1.0.0","name":"listjson","plugins":[{"type":"bridge"},{"type":"portmap"}]}`)
	name, conf, err := p.podNetworkConfig(false)
	if err != nil || name != "listjson" {
		t.Fatalf("pod network %q %v, want the list in 06-list.json", name, err)
	}
	if list, err := libcni.ConfListFromBytes(conf); err != nil || len(list.Plugins) != 2 {
		t.Errorf("the list in a .json file: %s %v", conf, err)
	}
	os.Remove(filepath.Join(dir, "06-list.json"))
	name, conf, err = p.podNetworkConfig(false)
	if err != nil || name != "single" {
		t.Fatalf("pod network %q %v, want the single-plugin 10-single.conf", name, err)
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "bridge" {
		t.Errorf("the recorded conflist %s: %v", conf, err)
	}
	// Ready only once its plugin is in cni-bin-dir.
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), `CNI plugin "bridge"`) {
		t.Errorf("Ready with a pod network whose plugin is missing: %v", err)
	}
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "bridge"), []byte("#!/bin/sh\n"), 0o755)
	var err2 error
	if d.net, err2 = network.New(network.Config{BinDirs: []string{bin}, ConfDir: filepath.Join(t.TempDir(), "cni"),
		DataDir: filepath.Join(t.TempDir(), "data"), RunDir: filepath.Join(t.TempDir(), "run")}, d.log); err2 != nil {
		t.Fatal(err2)
	}
	if err := p.Ready(); err != nil {
		t.Errorf("Ready with a pod network: %v", err)
	}
	// Only the engine's own conflists there: default-network, an engine network.
	for _, f := range []string{"10-single.conf", "20-later.conflist"} {
		os.Remove(filepath.Join(dir, f))
	}
	d.cfg.DefaultNetwork = "podnet"
	if _, _, err := p.podNetworkConfig(false); err == nil || !strings.Contains(err.Error(), "default-network podnet") {
		t.Errorf("a default-network that does not exist: %v", err)
	}
	// An existing one is covered by test/integration (TestCRIPodDefaultNetwork): creating a
	// network here would add its isolation rules to the host.
}
