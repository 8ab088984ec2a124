package grpcerr

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// An error of no category that wraps a context's end maps to that end's gRPC code; a
// categorised one keeps its category.
func TestCodeOfContextErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("pull x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("pull x: %w", context.Canceled), codes.Canceled},
		{errdefs.Errorf(errdefs.ErrNotFound, "image x: %v", context.DeadlineExceeded), codes.NotFound},
		{fmt.Errorf("plain"), codes.Unknown},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
