package cli

import (
	"encoding/json"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// inspectObject inspects a container or an image: with no --type, a container of that name
// first (as docker), then an image.
func (c *CLI) inspectObject(cl apiv1.ContainersClient, ref, typ string) (*apiv1.JSONResponse, error) {
	var cerr error
	if typ != "image" {
		r, err := cl.Inspect(ctx(), &apiv1.IDRequest{Id: ref})
		if typ == "container" || status.Code(err) != codes.NotFound {
			return r, err
		}
		cerr = err
	}
	icl, err := c.images()
	if err != nil {
		if cerr != nil {
			return nil, cerr // no image API (a test's fake client): the container's answer
		}
		return nil, err
	}
	data, _ := json.Marshal(types.ImageRefRequest{Name: ref})
	r, err := icl.Inspect(ctx(), &apiv1.ImageRequest{Json: data})
	if err != nil {
		if typ == "" && status.Code(err) == codes.NotFound {
			return nil, status.Errorf(codes.NotFound, "no such container or image: %s", ref)
		}
		return nil, err
	}
	return &apiv1.JSONResponse{Json: r.Json}, nil
}
