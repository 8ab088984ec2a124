package daemon

import (
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
)

func TestMergeUpdate(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	base := types.HostConfig{Memory: 64 << 20, MemorySwap: 0, CPUShares: 512, RestartPolicy: types.RestartPolicy{Name: "no"}}
	for _, c := range []struct {
		u    types.UpdateConfig
		err  string
		want func(types.HostConfig) bool
	}{
		{types.UpdateConfig{Memory: 128 << 20}, "", func(h types.HostConfig) bool { return h.Memory == 128<<20 && h.CPUShares == 512 }},
		{types.UpdateConfig{NanoCPUs: 5e8, PidsLimit: i64(20)}, "", func(h types.HostConfig) bool { return h.NanoCPUs == 5e8 && *h.PidsLimit == 20 && h.Memory == 64<<20 }},
		{types.UpdateConfig{RestartPolicy: &types.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}}, "", func(h types.HostConfig) bool { return h.RestartPolicy.MaximumRetryCount == 3 }},
		{types.UpdateConfig{Memory: 1 << 20}, "minimum memory limit", nil},
		{types.UpdateConfig{MemorySwap: 32 << 20}, "must be at least --memory", nil},
		{types.UpdateConfig{CPUShares: 1}, "--cpu-shares", nil},
		{types.UpdateConfig{PidsLimit: i64(-5)}, "--pids-limit", nil},
		{types.UpdateConfig{RestartPolicy: &types.RestartPolicy{Name: "sometimes"}}, "sometimes", nil},
	} {
		got, err := mergeUpdate(base, c.u)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !isErr(err, errInvalid) {
				t.Errorf("%+v: got %v, want %q", c.u, err, c.err)
			}
			continue
		}
		if err != nil || !c.want(got) {
			t.Errorf("%+v: %+v %v", c.u, got, err)
		}
	}
	// Swap follows memory as at create (twice it) unless set; pids <= 0 lifts the limit.
	h, _ := mergeUpdate(base, types.UpdateConfig{Memory: 100 << 20, PidsLimit: i64(-1)})
	r, err := resourcesOf(h)
	if err != nil || *r.Memory.Limit != 100<<20 || *r.Memory.Swap != 200<<20 || *r.Pids.Limit != -1 {
		t.Fatalf("resources %+v %v", r, err)
	}
}
