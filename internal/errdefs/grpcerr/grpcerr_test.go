package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/isulad-go/isulad/internal/errdefs"
)

func TestRoundTrip(t *testing.T) {
	if len(kinds) != len(errdefs.Kinds) {
		t.Fatalf("%d codes for %d categories", len(kinds), len(errdefs.Kinds))
	}
	for _, k := range kinds {
		err := errdefs.Errorf(k.err, "thing %q is wrong", "x")
		g := ToGRPC(err)
		s, ok := status.FromError(g)
		if !ok || s.Code() != k.code || s.Message() != `thing "x" is wrong` {
			t.Fatalf("%v: status %v", k.err, g)
		}
		back := FromGRPC(g)
		if !errors.Is(back, k.err) {
			t.Fatalf("%v: FromGRPC lost the kind: %v", k.err, back)
		}
		if back.Error() != `thing "x" is wrong` || strings.Contains(back.Error(), "rpc error") {
			t.Fatalf("FromGRPC message %q", back.Error())
		}
	}
}

func TestFmtWrap(t *testing.T) {
	if Code(fmt.Errorf("container %q: %w", "a", errdefs.ErrNotFound)) != codes.NotFound {
		t.Fatal("fmt wrap not recognised")
	}
	if Code(fmt.Errorf("outer: %w", errdefs.Errorf(errdefs.ErrConflict, "inner"))) != codes.FailedPrecondition {
		t.Fatal("conflict")
	}
}

func TestPlainAndContext(t *testing.T) {
	if Code(errors.New("x")) != codes.Unknown {
		t.Fatal("plain")
	}
	if Code(fmt.Errorf("wait: %w", context.DeadlineExceeded)) != codes.DeadlineExceeded {
		t.Fatal("deadline")
	}
	if Code(context.Canceled) != codes.Canceled {
		t.Fatal("canceled")
	}
	if Code(nil) != codes.OK || ToGRPC(nil) != nil || FromGRPC(nil) != nil || Kind(nil) != nil {
		t.Fatal("nil")
	}
}

var errPkg = errors.New("pkg sentinel")

func TestRegister(t *testing.T) {
	errdefs.Register(errPkg, errdefs.ErrAlreadyExists)
	if c := Code(fmt.Errorf("host path: %w", errPkg)); c != codes.AlreadyExists {
		t.Fatal(c)
	}
}

func TestStatusPassThroughAndOneLine(t *testing.T) {
	s := status.Error(codes.Aborted, "busy")
	if ToGRPC(s) != s {
		t.Fatal("status not passed through")
	}
	if !errdefs.IsConflict(FromGRPC(s)) {
		t.Fatal("aborted -> conflict")
	}
	g := ToGRPC(errdefs.Errorf(errdefs.ErrInternal, "line1\n  line2\n"))
	if st, _ := status.FromError(g); st.Message() != "line1; line2" {
		t.Fatalf("%q", st.Message())
	}
	plain := errors.New("not grpc")
	if FromGRPC(plain) != plain {
		t.Fatal("non-status changed")
	}
	if e := FromGRPC(status.Error(codes.Unavailable, "")); e.Error() != "unavailable" || !errdefs.IsUnavailable(e) {
		t.Fatal(e)
	}
	// a wrapped status (e.g. from a shim call) keeps its code
	w := fmt.Errorf("shim: %w", status.Error(codes.NotFound, "gone"))
	if Code(w) != codes.NotFound || Kind(w) != errdefs.ErrNotFound {
		t.Fatal(Code(w))
	}
	// errdefs alone does not know gRPC: the status has no category there
	if errdefs.Kind(w) != nil {
		t.Fatal("errdefs.Kind of a status error")
	}
}
