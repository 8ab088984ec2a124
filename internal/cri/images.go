package cri

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// imageService is the CRI ImageService over the engine's image store (Images): the images
// `isula pull` and `isula images` see, pulled through the daemon's registry client.
type imageService struct {
	runtimeapi.UnimplementedImageServiceServer
	s *Service
}

// registerImages puts the ImageService on the daemon's gRPC server.
func (s *Service) registerImages(g *grpc.Server) {
	runtimeapi.RegisterImageServiceServer(g, &imageService{s: s})
}

// criImage is an image as the CRI shows it: the user's uid when the config's User is
// numeric, its name otherwise (the kubelet's runAsNonRoot check reads them).
func criImage(img Image) *runtimeapi.Image {
	size := img.Size
	if size == 0 {
		size = 1 // the CRI wants a size above zero
	}
	out := &runtimeapi.Image{Id: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Size: size,
		Spec: &runtimeapi.ImageSpec{Image: img.ID}}
	if u, _, _ := strings.Cut(img.User, ":"); u != "" {
		if n, err := strconv.ParseInt(u, 10, 64); err == nil && n >= 0 {
			out.Uid = &runtimeapi.Int64Value{Value: n}
		} else {
			out.Username = u
		}
	}
	return out
}

// imageRef is the reference of a request, checked.
func imageRef(spec *runtimeapi.ImageSpec, call string) (string, error) {
	ref := spec.GetImage()
	if ref == "" {
		return "", invalidf("%s: no image given", call)
	}
	return ref, nil
}

func (i *imageService) ListImages(ctx context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	resp := &runtimeapi.ListImagesResponse{}
	if want := r.GetFilter().GetImage().GetImage(); want != "" {
		img, err := i.s.images.Resolve(ctx, want)
		if errdefs.IsNotFound(err) || errdefs.Kind(err) == errdefs.ErrInvalidArgument {
			return resp, nil // nothing matches
		}
		if err != nil {
			return nil, gerr(err)
		}
		resp.Images = append(resp.Images, criImage(img))
		return resp, nil
	}
	imgs, err := i.s.images.List(ctx)
	if err != nil {
		return nil, gerr(err)
	}
	for _, img := range imgs {
		resp.Images = append(resp.Images, criImage(img))
	}
	return resp, nil
}

// ImageStatus answers a missing image with no image and no error, as the CRI asks.
func (i *imageService) ImageStatus(ctx context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref, err := imageRef(r.GetImage(), "image status")
	if err != nil {
		return nil, gerr(err)
	}
	img, err := i.s.images.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, gerr(err)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if r.Verbose {
		info := map[string]any{"id": img.ID, "repoTags": img.RepoTags, "repoDigests": img.RepoDigests}
		if len(img.Config) > 0 {
			info["imageSpec"] = json.RawMessage(img.Config)
		}
		data, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(data)}
	}
	return resp, nil
}

// PullImage pulls through the engine's registry client (daemon.json registries,
// registry-mirrors, insecure-registries, certs.d), with the request's login if it has one;
// the answer is the image's ID, which the kubelet then gives CreateContainer.
func (i *imageService) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref, err := imageRef(r.GetImage(), "pull")
	if err != nil {
		return nil, gerr(err)
	}
	var auth *PullAuth
	if a := r.GetAuth(); a != nil {
		auth = &PullAuth{ServerAddress: a.ServerAddress, Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	}
	start := time.Now()
	img, err := i.s.images.Pull(ctx, ref, auth)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			// The caller's deadline or cancel ended the pull: say that (a kubelet's pull
			// timeout, critest's), not what it looked like inside.
			return nil, status.FromContextError(cerr).Err()
		}
		return nil, gerr(err)
	}
	i.s.log.Info("CRI image pulled", "image", ref, "id", img.ID, "took", time.Since(start).Round(time.Millisecond))
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// RemoveImage removes the image with all its names; an image the node does not have is
// removed already (the CRI asks for idempotence). One a container uses is refused.
func (i *imageService) RemoveImage(ctx context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref, err := imageRef(r.GetImage(), "remove image")
	if err != nil {
		return nil, gerr(err)
	}
	if err := i.s.images.Remove(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
		return nil, gerr(err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo is the image store's usage: bytes and inodes of its layers and blobs, and
// the directory they are in.
func (i *imageService) ImageFsInfo(ctx context.Context, r *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	u, err := i.s.images.FsInfo(ctx)
	if err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		Timestamp: time.Now().UnixNano(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
		UsedBytes: &runtimeapi.UInt64Value{Value: u.UsedBytes}, InodesUsed: &runtimeapi.UInt64Value{Value: u.InodesUsed},
	}}}, nil
}
