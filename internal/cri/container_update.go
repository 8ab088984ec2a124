package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// UpdateContainerResources changes a container's limits, live when it runs.
func (s *Service) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, _, err := s.container(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	if r.Linux == nil {
		return nil, gerr(invalidf("update of container %s: no Linux resources given", c.ID))
	}
	if err := s.engine.UpdateResources(ctx, c.ID, resourcesOf(r.Linux)); err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog makes the shim reopen the log after the kubelet rotated it.
func (s *Service) ReopenContainerLog(ctx context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.runningContainer(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	if c.LogPath == "" {
		return nil, gerr(errdefs.Errorf(errdefs.ErrConflict, "container %s has no log to reopen", c.ID))
	}
	if err := s.engine.ReopenLog(ctx, c.ID); err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
