package cri

import (
	"context"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// StopPodSandbox kills the pod's containers, releases its network and its namespaces, and
// marks it NOTREADY. A pod already stopped or already removed is not an error.
func (s *Service) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.pods.get(r.PodSandboxId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, gerr(err)
	}
	unlock := s.pods.lock(sb.ID)
	defer unlock()
	if err := s.stopSandbox(ctx, sb.ID); err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopSandbox does StopPodSandbox's work under the pod's lock.
func (s *Service) stopSandbox(ctx context.Context, id string) error {
	sb, err := s.pods.get(id)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range s.podContainers(sb.ID) {
		if err := s.engine.StopContainer(ctx, c.ID, 0); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stopping container %s: %w", c.ID, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if sb.NetworkUp {
		// The network hook: CNI DEL once the networking package lands.
		if err := s.network.Teardown(ctx, sb.networkConfig()); err != nil {
			return fmt.Errorf("pod %s: network teardown: %w", sb.fullName(), err)
		}
		sb.NetworkUp = false
	}
	// The pod init last: killing it kills whatever is still in the pod's PID namespace.
	killPodInitIn(s.pods.pinPath(sb.ID))
	if err := unpinNamespaces(s.pods.pinPath(sb.ID)); err != nil {
		return err
	}
	sb.Stopped = true
	return s.pods.save(sb)
}

// RemovePodSandbox stops the pod if needed, removes its containers, then the pod. A pod
// already removed is not an error.
func (s *Service) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.pods.get(r.PodSandboxId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, gerr(err)
	}
	unlock := s.pods.lock(sb.ID)
	defer unlock()
	if sb, err = s.pods.get(sb.ID); errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil // removed while we waited
	}
	if !sb.Stopped || sb.NetworkUp {
		if err := s.stopSandbox(ctx, sb.ID); err != nil {
			return nil, gerr(err)
		}
	}
	for _, c := range s.podContainers(sb.ID) {
		if err := s.engine.RemoveContainer(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			return nil, gerr(fmt.Errorf("removing container %s of pod %s: %w", c.ID, sb.fullName(), err))
		}
	}
	if err := s.pods.delete(sb); err != nil {
		return nil, gerr(err)
	}
	s.log.Info("pod sandbox removed", "id", sb.ID, "pod", sb.fullName())
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
