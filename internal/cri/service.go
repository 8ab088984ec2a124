package cri

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/errdefs/grpcerr"
)

// Config is the CRI's part of daemon.json and the engine's directories.
type Config struct {
	GraphDir, StateDir string // the CRI keeps <graph>/cri and <state>/cri
	RuntimeName        string // reported by Version ("isulad")
	RuntimeVersion     string
	RuntimeHandlers    []string // the engine's OCI runtimes (runc, crun)
	DefaultRuntime     string
	// RecursiveReadOnly are the runtimes that can make a read-only mount recursively so
	// ("rro" in their `features`): the CRI's recursive_read_only_mounts feature.
	RecursiveReadOnly []string
	// HostChannelRoots are the directories under which a CRI container may have host
	// channels (daemon.json cri-host-channel-roots); none: refused.
	HostChannelRoots []string
	// StreamAddress and StreamPort are where the streaming server listens (daemon.json
	// stream-server-address, stream-server-port).
	StreamAddress string
	StreamPort    string
	Log           *slog.Logger
}

// Service is the CRI v1 RuntimeService over the engine.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	cfg     Config
	engine  Engine
	images  Images
	network PodNetwork
	log     *slog.Logger
	pods    *sandboxStore
	stream  *streamServer

	mu            sync.Mutex
	runtimeConfig *runtimeapi.RuntimeConfig // the last UpdateRuntimeConfig (pod CIDR)
}

// New loads the pods' records and prepares the service; Serve starts the streaming server.
func New(cfg Config, engine Engine, images Images, network PodNetwork) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if network == nil {
		network = LoopbackOnly{}
	}
	if images == nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "CRI: no image store")
	}
	for _, r := range cfg.HostChannelRoots {
		if !filepath.IsAbs(r) || filepath.Clean(r) == "/" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "cri-host-channel-roots: %q: want an absolute directory other than /", r)
		}
	}
	pods, err := newSandboxStore(filepath.Join(cfg.GraphDir, "cri", "sandboxes"), filepath.Join(cfg.StateDir, "cri", "sandboxes"))
	if err != nil {
		return nil, err
	}
	if err := pods.load(cfg.Log); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, engine: engine, images: images, network: network, log: cfg.Log, pods: pods}
	if r, ok := network.(PodNetworkReconciler); ok {
		var networked []string
		for _, sb := range pods.list() {
			if sb.NetworkUp {
				networked = append(networked, sb.ID)
			}
		}
		r.Reconcile(context.Background(), networked)
	}
	if s.stream, err = newStreamServer(s, cfg.StreamAddress, cfg.StreamPort); err != nil {
		return nil, err
	}
	return s, nil
}

// Register puts the RuntimeService and the ImageService on the daemon's gRPC server.
func (s *Service) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	s.registerImages(g)
}

// Serve runs the streaming server until ctx ends.
func (s *Service) Serve(ctx context.Context) error { return s.stream.serve(ctx) }

// gerr turns an error into a gRPC status at this edge.
func gerr(err error) error {
	if err == nil {
		return nil
	}
	return grpcerr.ToGRPC(err)
}

func invalidf(format string, a ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, a...)
}

func (s *Service) Version(ctx context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version: "0.1.0", RuntimeName: s.cfg.RuntimeName, RuntimeVersion: s.cfg.RuntimeVersion,
		RuntimeApiVersion: "v1",
	}, nil
}

func (s *Service) Status(ctx context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	networkReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.network.Ready(); err != nil {
		networkReady.Status = false
		networkReady.Reason = "NetworkPluginNotReady"
		networkReady.Message = err.Error()
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, networkReady}}}
	for _, h := range s.cfg.RuntimeHandlers {
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: h,
			Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: s.recursiveReadOnly(h)}})
	}
	resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: "",
		Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: s.recursiveReadOnly("")}})
	resp.Features = &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}
	if r.Verbose {
		cfg, _ := json.Marshal(map[string]any{"hostChannelRoots": s.cfg.HostChannelRoots, "streamServer": s.stream.addr(),
			"defaultRuntime": s.cfg.DefaultRuntime, "podSandbox": "pinned namespaces, no process"})
		resp.Info = map[string]string{"config": string(cfg)}
	}
	return resp, nil
}

// UpdateRuntimeConfig records the pod CIDR the kubelet gives; the network plugin reads it
// from its CNI config, so nothing else changes.
func (s *Service) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	s.mu.Lock()
	s.runtimeConfig = r.RuntimeConfig
	s.mu.Unlock()
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// RuntimeConfig tells the kubelet the cgroup driver: the engine manages cgroups by path.
func (s *Service) RuntimeConfig(ctx context.Context, r *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

// recursiveReadOnly tells whether the pod runtime handler h ("": the default runtime) makes
// recursive read-only mounts.
func (s *Service) recursiveReadOnly(h string) bool {
	if h == "" {
		h = s.cfg.DefaultRuntime
	}
	return slices.Contains(s.cfg.RecursiveReadOnly, h)
}
