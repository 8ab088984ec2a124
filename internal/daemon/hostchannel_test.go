package daemon

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
)

// Issue 10, item 16: a legacy HostChannel that disagrees with HostChannels was dropped
// silently; it is refused with one line, and one that equals the list's first is accepted.
func TestValidateHostChannelMix(t *testing.T) {
	tmp := t.TempDir()
	store, err := container.NewStore(filepath.Join(tmp, "graph", "containers"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{store: store, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
