package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// container finds one of the CRI's containers by ID (or unique prefix).
func (s *Service) container(id string) (ContainerState, containerMeta, error) {
	c, err := s.engine.Container(id)
	if err != nil {
		return ContainerState{}, containerMeta{}, err
	}
	m, ok := metaOf(c)
	if !ok {
		// The engine's own containers are not the kubelet's to drive.
		return ContainerState{}, containerMeta{}, errdefs.Errorf(errdefs.ErrNotFound, "container %q is not a CRI container", id)
	}
	return c, m, nil
}

func (s *Service) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, m, err := s.container(r.ContainerId)
	if err != nil {
		return nil, gerr(err)
	}
	// Under the pod's lock: a StopPodSandbox running at the same time either sees the
	// container started, and stops it, or finds the pod stopped first.
	unlock := s.pods.lock(m.SandboxID)
	defer unlock()
	sb, err := s.pods.get(m.SandboxID)
	if err != nil {
		return nil, gerr(err)
	}
	if !sb.ready() {
		return nil, gerr(errdefs.Errorf(errdefs.ErrConflict, "container %s: its pod sandbox %s is not ready", c.ID, sb.ID))
	}
	if c.Status != "created" {
		return nil, gerr(errdefs.Errorf(errdefs.ErrConflict, "container %s is %s: only a created container can be started", c.ID, c.Status))
	}
	if err := s.engine.StartContainer(ctx, c.ID); err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a container with the grace period the kubelet gives; an exited or
// removed container is not an error.
func (s *Service) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, _, err := s.container(r.ContainerId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, gerr(err)
	}
	if err := s.engine.StopContainer(ctx, c.ID, time.Duration(r.Timeout)*time.Second); err != nil && !errdefs.IsNotFound(err) {
		return nil, gerr(err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, killing it if it runs; a removed one is not an error.
func (s *Service) RemoveContainer(ctx context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, _, err := s.container(r.ContainerId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, gerr(err)
	}
	if err := s.engine.RemoveContainer(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
		return nil, gerr(err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}
