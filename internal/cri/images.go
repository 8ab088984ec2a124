package cri

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// imageService is the CRI ImageService over the ImageResolver. Without one (until the image
// package lands) it answers, so that clients that check for it (crictl) work, and lists nothing.
type imageService struct {
	runtimeapi.UnimplementedImageServiceServer
	s *Service
}

// registerImages puts the ImageService on the daemon's gRPC server.
func (s *Service) registerImages(g *grpc.Server) {
	runtimeapi.RegisterImageServiceServer(g, &imageService{s: s})
}

func errNoImages(ref string) error {
	return errdefs.Errorf(errdefs.ErrNotImplemented, "image %q: images are not served by this engine yet (issue 11)", ref)
}

func criImage(img Image) *runtimeapi.Image {
	size := img.Size
	if size == 0 {
		size = 1 // the CRI wants a size above zero
	}
	out := &runtimeapi.Image{Id: img.ID, RepoTags: img.Names, Size: size}
	if u := img.User; u != "" {
		uid := strings.SplitN(u, ":", 2)[0]
		if n, ok := parseUint(uid); ok {
			out.Uid = &runtimeapi.Int64Value{Value: n}
		} else {
			out.Username = uid
		}
	}
	return out
}

func parseUint(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<40 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (i *imageService) ListImages(ctx context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	resp := &runtimeapi.ListImagesResponse{}
	if i.s.images == nil {
		return resp, nil
	}
	imgs, err := i.s.images.List(ctx)
	if err != nil {
		return nil, gerr(err)
	}
	want := r.GetFilter().GetImage().GetImage()
	for _, img := range imgs {
		if want != "" {
			if got, err := i.s.images.Resolve(ctx, want); err != nil || got.ID != img.ID {
				continue
			}
		}
		resp.Images = append(resp.Images, criImage(img))
	}
	return resp, nil
}

// ImageStatus answers a missing image with no image and no error, as the CRI asks.
func (i *imageService) ImageStatus(ctx context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := r.GetImage().GetImage()
	if i.s.images == nil {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	img, err := i.s.images.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.ImageStatusResponse{Image: criImage(img)}, nil
}

func (i *imageService) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := r.GetImage().GetImage()
	if i.s.images == nil {
		return nil, gerr(errNoImages(ref))
	}
	img, err := i.s.images.Pull(ctx, ref)
	if err != nil {
		return nil, gerr(err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

func (i *imageService) RemoveImage(ctx context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := r.GetImage().GetImage()
	if i.s.images == nil {
		return nil, gerr(errNoImages(ref))
	}
	if err := i.s.images.Remove(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
		return nil, gerr(err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

func (i *imageService) ImageFsInfo(ctx context.Context, r *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{}, nil
}
