package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/image/store"
)

// imageService is the gRPC edge of the image side.
type imageService struct {
	apiv1.UnimplementedImagesServer
	d *Daemon
}

func decodeImageReq(data []byte, v any) error {
	if err := decodeStrict(data, v); err != nil {
		return fmt.Errorf("image request: %v: %w", err, errInvalid)
	}
	return nil
}

func reply(v any, err error) (*apiv1.ImageReply, error) {
	if err != nil {
		return nil, gerr(err)
	}
	data, err := json.Marshal(v)
	return &apiv1.ImageReply{Json: data}, gerr(err)
}

// eventSender serialises progress events onto a stream (layers report from several
// goroutines).
type eventSender struct {
	mu  sync.Mutex
	srv grpc.ServerStreamingServer[apiv1.ImageEvent]
}

func (e *eventSender) progress(p store.Progress) {
	data, _ := json.Marshal(types.ImageProgress{Layer: p.Layer, Status: p.Status, Current: p.Current, Total: p.Total})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.srv.Send(&apiv1.ImageEvent{ProgressJson: data})
}

func (e *eventSender) result(im store.Image, digest string) error {
	data, _ := json.Marshal(types.ImagePullResult{ID: im.ID, Names: familiar(im.Names), Digest: digest})
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srv.Send(&apiv1.ImageEvent{ResultJson: data})
}

func (s *imageService) Pull(r *apiv1.ImageRequest, srv grpc.ServerStreamingServer[apiv1.ImageEvent]) error {
	var req types.ImageRefRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return gerr(err)
	}
	ev := &eventSender{srv: srv}
	im, err := s.d.PullImage(srv.Context(), req.Name, ev.progress)
	if err != nil {
		return gerr(err)
	}
	return ev.result(im, im.ManifestDigest)
}

func (s *imageService) Push(r *apiv1.ImageRequest, srv grpc.ServerStreamingServer[apiv1.ImageEvent]) error {
	var req types.ImageRefRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return gerr(err)
	}
	ev := &eventSender{srv: srv}
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			ev.progress(store.Progress{Status: "Pushing", Current: u.Complete, Total: u.Total})
		}
	}()
	im, err := s.d.PushImage(srv.Context(), req.Name, updates)
	<-done // remote.Write closes updates when it returns
	if err != nil {
		return gerr(err)
	}
	return ev.result(im, im.ManifestDigest)
}

func (s *imageService) List(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.ImageListRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(s.d.ListImages(req))
}

func (s *imageService) Inspect(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.ImageRefRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(s.d.InspectImage(req.Name))
}

func (s *imageService) Remove(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.ImageRemoveRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(s.d.RemoveImages(req.Names, req.Force))
}

func (s *imageService) Tag(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.ImageTagRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(struct{}{}, s.d.TagImage(req.Source, req.Target))
}

func (s *imageService) Prune(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.ImagePruneRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(s.d.PruneImages(req.All))
}

func (s *imageService) DiskUsage(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	return reply(s.d.DiskUsage(), nil)
}

func (s *imageService) Login(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.LoginRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(struct{}{}, s.d.Login(ctx, req))
}

func (s *imageService) Logout(ctx context.Context, r *apiv1.ImageRequest) (*apiv1.ImageReply, error) {
	var req types.LoginRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return nil, gerr(err)
	}
	return reply(struct{}{}, s.d.Logout(req.Server))
}

// imageChunkWriter sends what is written as ImageChunk messages.
type imageChunkWriter struct {
	srv grpc.ServerStreamingServer[apiv1.ImageChunk]
}

func (w *imageChunkWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 1 << 20 {
		end := min(off+1<<20, len(p))
		if err := w.srv.Send(&apiv1.ImageChunk{Data: p[off:end]}); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// imageChunkReader reads the data of a client stream of ImageChunks.
type imageChunkReader struct {
	recv func() (*apiv1.ImageChunk, error)
	buf  []byte
}

func (r *imageChunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		c, err := r.recv()
		if err != nil {
			return 0, err // io.EOF at the end
		}
		r.buf = c.Data
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// firstChunk reads the request that opens a Load or Import stream.
func firstChunk(recv func() (*apiv1.ImageChunk, error), v any) (*imageChunkReader, error) {
	c, err := recv()
	if err != nil {
		return nil, fmt.Errorf("reading the request: %v: %w", err, errInvalid)
	}
	if err := decodeImageReq(c.Json, v); err != nil {
		return nil, err
	}
	return &imageChunkReader{recv: recv, buf: c.Data}, nil
}

func (s *imageService) Load(srv grpc.BidiStreamingServer[apiv1.ImageChunk, apiv1.ImageEvent]) error {
	var req types.ImageLoadRequest
	r, err := firstChunk(srv.Recv, &req)
	if err != nil {
		return gerr(err)
	}
	ev := &eventSender{srv: srv}
	ims, err := s.d.LoadImages(srv.Context(), r, req.Tag, ev.progress)
	if err != nil {
		return gerr(err)
	}
	for _, im := range ims {
		if err := ev.result(im, ""); err != nil {
			return err
		}
	}
	return nil
}

func (s *imageService) Import(srv grpc.ClientStreamingServer[apiv1.ImageChunk, apiv1.ImageReply]) error {
	var req types.ImageImportRequest
	r, err := firstChunk(srv.Recv, &req)
	if err != nil {
		return gerr(err)
	}
	im, err := s.d.ImportImage(srv.Context(), r, req.Ref, req.Message)
	if err != nil {
		return gerr(err)
	}
	out, err := reply(types.ImagePullResult{ID: im.ID, Names: familiar(im.Names)}, nil)
	if err != nil {
		return err
	}
	return srv.SendAndClose(out)
}

func (s *imageService) Save(r *apiv1.ImageRequest, srv grpc.ServerStreamingServer[apiv1.ImageChunk]) error {
	var req types.ImageSaveRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return gerr(err)
	}
	return gerr(s.d.SaveImages(&imageChunkWriter{srv: srv}, req.Names, req.Format))
}

func (s *imageService) Export(r *apiv1.ImageRequest, srv grpc.ServerStreamingServer[apiv1.ImageChunk]) error {
	var req types.ImageRefRequest
	if err := decodeImageReq(r.Json, &req); err != nil {
		return gerr(err)
	}
	c, err := s.d.store.Get(req.Name)
	if err != nil {
		return gerr(err)
	}
	return gerr(s.d.ExportContainer(srv.Context(), c, &imageChunkWriter{srv: srv}))
}
