package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/hostchannel"
)

// Issue 10, item 16: a legacy HostChannel that disagrees with HostChannels was dropped
// silently; it is refused with one line, and one that equals the list's first is accepted.
func TestValidateHostChannelMix(t *testing.T) {
	tmp := t.TempDir()
	store, err := container.NewStore(filepath.Join(tmp, "graph", "containers"))
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	channels, err := hostchannel.NewManager(filepath.Join(tmp, "graph", "hostchannels"), filepath.Join(tmp, "state", "hostchannels"), discard)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{store: store, channels: channels, log: discard,
		cfg: Config{Graph: filepath.Join(tmp, "graph"), State: filepath.Join(tmp, "state"), DefaultRuntime: "runc",
			Runtimes: map[string]RuntimeConfig{"runc": {Path: "/usr/bin/runc"}}}}
	rootfs := t.TempDir()
	a := types.HostChannel{PathOnHost: filepath.Join(tmp, "a"), PathInContainer: "/a", Permissions: "rw", Size: 1 << 20}
	b := types.HostChannel{PathOnHost: filepath.Join(tmp, "b"), PathInContainer: "/b", Permissions: "rw", Size: 1 << 20}
	req := func(legacy *types.HostChannel, list ...types.HostChannel) *types.CreateRequest {
		return &types.CreateRequest{
			Config:     types.Config{Image: "none", Cmd: []string{"true"}},
			HostConfig: types.HostConfig{ExternalRootfs: rootfs, HostChannel: legacy, HostChannels: list},
		}
	}
	if _, err := d.validate(req(&b, a)); err == nil || !strings.Contains(err.Error(), "given together with HostChannels") || strings.Contains(err.Error(), "\n") {
		t.Errorf("HostChannel b with HostChannels [a]: %v, want one refusal line", err)
	}
	p, err := d.validate(req(&a, a, b))
	if err != nil {
		t.Fatalf("HostChannel equal to HostChannels[0]: %v", err)
	}
	if got := p.req.HostConfig.HostChannels; len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("channels = %+v, want [a b]", got)
	}
	if p, err := d.validate(req(&a)); err != nil || len(p.req.HostConfig.HostChannels) != 1 {
		t.Errorf("HostChannel alone: %v", err)
	}
}

// Issue 10, item 1, for containers created before channels had backing mounts: start makes
// their OCI spec bind the channel from its backing mount instead of the host path.
func TestBindChannelsFromBacking(t *testing.T) {
	tmp := t.TempDir()
	store, err := container.NewStore(filepath.Join(tmp, "graph", "containers"))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := hostchannel.NewManager(filepath.Join(tmp, "graph", "hostchannels"), filepath.Join(tmp, "state", "hostchannels"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{store: store, channels: hc, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ch := types.HostChannel{PathOnHost: "/srv/ch", PathInContainer: "/c", Permissions: "rw", Size: 1 << 20}
	c := &container.Container{ID: "0123456789ab", HostConfig: types.HostConfig{HostChannels: []types.HostChannel{ch}}}
	if err := os.MkdirAll(store.Dir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	old := specs.Spec{Process: &specs.Process{Args: []string{"true"}}, Mounts: []specs.Mount{
		{Destination: "/c", Type: "bind", Source: "/srv/ch", Options: []string{"rbind"}},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind"}},
	}}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(store.Dir(c.ID), "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time is a no-op
		if err := d.bindChannelsFromBacking(c); err != nil {
			t.Fatal(err)
		}
		s, err := d.loadSpec(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := hc.SpecMounts([]types.HostChannel{ch})[0].Source; s.Mounts[0].Source != want || !strings.HasPrefix(want, filepath.Join(tmp, "state", "hostchannels")) {
			t.Errorf("channel bind source %q, want the backing mount %q", s.Mounts[0].Source, want)
		}
		if s.Mounts[1].Source != "/srv/data" {
			t.Errorf("another bind was changed: %+v", s.Mounts[1])
		}
	}
}
