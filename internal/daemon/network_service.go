package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/network"
)

// networkService is the gRPC edge of networks.
type networkService struct {
	apiv1.UnimplementedNetworksServer
	d *Daemon
}

func (s *networkService) Create(ctx context.Context, r *apiv1.NetworkCreateRequest) (*apiv1.NetworkCreateResponse, error) {
	var req types.NetworkCreateRequest
	if err := decodeStrict(r.ConfigJson, &req); err != nil {
		return nil, gerr(fmt.Errorf("network create request: %v: %w", err, errInvalid))
	}
	n, err := s.d.net.Create(req)
	if err != nil {
		return nil, gerr(err)
	}
	return &apiv1.NetworkCreateResponse{Id: n.ID, Name: n.Name}, nil
}

// networkFilter matches a network against ls/prune filters: name (substring), driver, id
// (prefix), label (KEY or KEY=VALUE).
func networkFilter(filters []*apiv1.NetworkFilter) (func(*network.Network) bool, error) {
	by := map[string][]string{}
	for _, f := range filters {
		switch f.Key {
		case "name", "driver", "id", "label":
		default:
			return nil, fmt.Errorf("--filter %q: unknown filter (want name, driver, id or label): %w", f.Key, errInvalid)
		}
		by[f.Key] = append(by[f.Key], f.Value)
	}
	any := func(key string, ok func(string) bool) bool {
		vs, given := by[key]
		if !given {
			return true
		}
		for _, v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return func(n *network.Network) bool {
		return any("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
			any("driver", func(v string) bool { return n.Driver == v }) &&
			any("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
			any("label", func(v string) bool {
				k, val, hasVal := strings.Cut(v, "=")
				got, ok := n.Labels[k]
				return ok && (!hasVal || got == val)
			})
	}, nil
}

func (s *networkService) List(ctx context.Context, r *apiv1.NetworkListRequest) (*apiv1.NetworkJSON, error) {
	match, err := networkFilter(r.Filters)
	if err != nil {
		return nil, gerr(err)
	}
	out := []types.NetworkResource{}
	for _, n := range s.d.net.List() {
		if match(n) {
			out = append(out, s.d.net.Resource(n))
		}
	}
	data, _ := json.Marshal(out)
	return &apiv1.NetworkJSON{Json: data}, nil
}

func (s *networkService) Inspect(ctx context.Context, r *apiv1.NetworkNameRequest) (*apiv1.NetworkJSON, error) {
	n, err := s.d.net.Get(r.Name)
	if err != nil {
		return nil, gerr(err)
	}
	data, _ := json.Marshal(s.d.net.Resource(n))
	return &apiv1.NetworkJSON{Json: data}, nil
}

func (s *networkService) Remove(ctx context.Context, r *apiv1.NetworkNameRequest) (*apiv1.NetworkEmpty, error) {
	s.d.netMu.Lock()
	defer s.d.netMu.Unlock()
	return &apiv1.NetworkEmpty{}, gerr(s.d.net.Remove(r.Name, s.d.networkUsers))
}

func (s *networkService) Prune(ctx context.Context, r *apiv1.NetworkPruneRequest) (*apiv1.NetworkPruneResponse, error) {
	match, err := networkFilter(r.Filters)
	if err != nil {
		return nil, gerr(err)
	}
	s.d.netMu.Lock()
	defer s.d.netMu.Unlock()
	resp := &apiv1.NetworkPruneResponse{}
	for _, n := range s.d.net.List() {
		if !match(n) || len(s.d.networkUsers(n)) > 0 {
			continue
		}
		if err := s.d.net.Remove(n.Name, s.d.networkUsers); err == nil {
			resp.Removed = append(resp.Removed, n.Name)
		}
	}
	return resp, nil
}
