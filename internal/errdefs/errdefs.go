// Package errdefs defines the error categories of the engine. Every error that crosses the API
// carries at most one category; the daemon maps it to a gRPC status code at its edge
// (grpcerr.ToGRPC) and the client maps the status back (grpcerr.FromGRPC), so that both sides
// can test errors with errors.Is and users see one plain line. This package does not import
// gRPC (the light client, cmd/isula, links it): a raw gRPC status error has no category here
// until grpcerr.FromGRPC turns it into one.
//
// Categories are sentinel errors. Wrap them either with fmt.Errorf:
//
//	fmt.Errorf("container %q: %w", name, errdefs.ErrNotFound)   // "container "x": not found"
//
// or, to keep the message free of the category's own text, with Errorf / Wrap:
//
//	errdefs.Errorf(errdefs.ErrNotFound, "no such container: %s", name)  // "no such container: x"
package errdefs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// The categories.
var (
	// ErrInvalidArgument: the request is wrong (syntax, range, combination). InvalidArgument.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the named object does not exist. NotFound.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the object (name, path) is taken. AlreadyExists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object is not in a state that allows the operation (remove a running
	// container without -f, pause a stopped one...). FailedPrecondition.
	ErrConflict = errors.New("conflict")
	// ErrFailedPrecondition is ErrConflict under its gRPC name.
	ErrFailedPrecondition = ErrConflict
	// ErrUnavailable: the service (daemon, shim, runtime) cannot be reached. Unavailable.
	ErrUnavailable = errors.New("unavailable")
	// ErrPermissionDenied: the caller may not do this. PermissionDenied.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotImplemented: the feature does not exist (yet). Unimplemented.
	ErrNotImplemented = errors.New("not implemented")
	// ErrDeadlineExceeded: a timeout. DeadlineExceeded.
	ErrDeadlineExceeded = errors.New("deadline exceeded")
	// ErrCanceled: the caller gave up. Canceled.
	ErrCanceled = errors.New("canceled")
	// ErrResourceExhausted: out of a resource (memory, ids, disk). ResourceExhausted.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrInternal: a bug or an unexpected failure of the engine. Internal.
	ErrInternal = errors.New("internal error")
	// ErrUnknown: no category (what a plain error becomes). Unknown.
	ErrUnknown = errors.New("unknown error")
)

// Kinds are the categories, in the order Kind tests them.
var Kinds = []error{
	ErrInvalidArgument, ErrNotFound, ErrAlreadyExists, ErrConflict, ErrUnavailable,
	ErrPermissionDenied, ErrNotImplemented, ErrDeadlineExceeded, ErrCanceled,
	ErrResourceExhausted, ErrInternal, ErrUnknown,
}

// kindError is an error whose message is its own, and whose category is kind.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// Errorf returns an error of category kind with the formatted message (the category's own
// text is not added). %w in format works as with fmt.Errorf.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

// New returns an error of category kind with message msg.
func New(kind error, msg string) error {
	return &kindError{kind: kind, err: errors.New(msg)}
}

// Wrap gives err the category kind, keeping its message (and what it wraps). A nil err
// stays nil.
func Wrap(kind error, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

var (
	regMu    sync.RWMutex
	registry []struct{ target, kind error }
)

// Register makes every error that matches target (errors.Is) count as category kind, for
// packages that have their own sentinels (e.g. hostchannel.ErrInvalid -> ErrInvalidArgument).
// Call it from an init function or before serving.
func Register(target, kind error) {
	regMu.Lock()
	defer regMu.Unlock()
	registry = append(registry, struct{ target, kind error }{target, kind})
}

// Kind returns the category of err: one of the sentinels above, or nil when err is nil or
// has no category (grpcerr.Code maps that to codes.Unknown). context.DeadlineExceeded and
// context.Canceled count as ErrDeadlineExceeded and ErrCanceled.
func Kind(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range Kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	regMu.RLock()
	defer regMu.RUnlock()
	for _, r := range registry {
		if errors.Is(err, r.target) {
			return r.kind
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ErrDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	}
	return nil
}

// OneLine joins the lines of a message with "; " and trims it.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// Helpers.

// IsInvalidArgument reports whether err is of category ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return Kind(err) == ErrInvalidArgument }

// IsNotFound reports whether err is of category ErrNotFound.
func IsNotFound(err error) bool { return Kind(err) == ErrNotFound }

// IsAlreadyExists reports whether err is of category ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return Kind(err) == ErrAlreadyExists }

// IsConflict reports whether err is of category ErrConflict.
func IsConflict(err error) bool { return Kind(err) == ErrConflict }

// IsUnavailable reports whether err is of category ErrUnavailable.
func IsUnavailable(err error) bool { return Kind(err) == ErrUnavailable }
