// Package cri is the engine's Kubernetes edge: the CRI v1 RuntimeService and ImageService
// served on the daemon's gRPC socket. It translates CRI calls onto the
// engine's own containers through the Engine interface that the daemon implements: a pod's
// containers are ordinary engine containers with Kubernetes labels, visible to `isula ps`.
// A pod sandbox itself is a record plus namespaces pinned by bind mounts (no process); see
// docs/cri.md for why. The CRI types stop here: nothing below imports k8s.io/cri-api.
package cri
