// Package grpcerr maps the error categories of errdefs to gRPC status codes and back: the
// daemon's API edge turns errors into status errors (ToGRPC), the full client turns them back
// (FromGRPC). It is apart from errdefs so that errdefs (and what uses it, such as the light
// client) does not link gRPC.
package grpcerr

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/isulad-go/isulad/internal/errdefs"
)

var kinds = []struct {
	err  error
	code codes.Code
}{
	{errdefs.ErrInvalidArgument, codes.InvalidArgument},
	{errdefs.ErrNotFound, codes.NotFound},
	{errdefs.ErrAlreadyExists, codes.AlreadyExists},
	{errdefs.ErrConflict, codes.FailedPrecondition},
	{errdefs.ErrUnavailable, codes.Unavailable},
	{errdefs.ErrPermissionDenied, codes.PermissionDenied},
	{errdefs.ErrNotImplemented, codes.Unimplemented},
	{errdefs.ErrDeadlineExceeded, codes.DeadlineExceeded},
	{errdefs.ErrCanceled, codes.Canceled},
	{errdefs.ErrResourceExhausted, codes.ResourceExhausted},
	{errdefs.ErrInternal, codes.Internal},
	{errdefs.ErrUnknown, codes.Unknown},
}

// Kind is errdefs.Kind, and a gRPC status error (wrapped or not) counts as the category of
// its code.
func Kind(err error) error {
	if k := errdefs.Kind(err); k != nil {
		return k
	}
	if s, ok := status.FromError(err); ok && err != nil {
		return kindOf(s.Code())
	}
	return nil
}

// Code returns the gRPC code of err's category (codes.OK for nil).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	k := Kind(err)
	for _, e := range kinds {
		if e.err == k {
			return e.code
		}
	}
	// An error of no category that a context ended is that context's end, as gRPC's own.
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

func kindOf(c codes.Code) error {
	for _, k := range kinds {
		if k.code == c {
			return k.err
		}
	}
	switch c {
	case codes.Aborted:
		return errdefs.ErrConflict
	case codes.OutOfRange:
		return errdefs.ErrInvalidArgument
	case codes.DataLoss:
		return errdefs.ErrInternal
	case codes.Unauthenticated:
		return errdefs.ErrPermissionDenied
	}
	return errdefs.ErrUnknown
}

// ToGRPC turns err into a gRPC status error carrying the category's code and err's message
// (made one line). nil stays nil. Use it at the daemon's API edge.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		// Already a status error, passed through unchanged.
		return s.(error)
	}
	return status.Error(Code(err), errdefs.OneLine(err.Error()))
}

// FromGRPC turns a gRPC status error back into an error of the right category whose message
// is the status message only (no "rpc error: code = ..." prefix). Errors that are not status
// errors are returned unchanged; nil stays nil.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := s.Message()
	if msg == "" {
		msg = kindOf(s.Code()).Error()
	}
	return errdefs.New(kindOf(s.Code()), errdefs.OneLine(msg))
}
