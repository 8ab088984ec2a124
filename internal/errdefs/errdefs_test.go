package errdefs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRoundTrip(t *testing.T) {
	for _, k := range kinds {
		err := Errorf(k.err, "thing %q is wrong", "x")
		if !errors.Is(err, k.err) {
			t.Fatalf("%v: errors.Is failed", k.err)
		}
		if err.Error() != `thing "x" is wrong` {
			t.Fatalf("message %q", err.Error())
		}
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
	err := fmt.Errorf("container %q: %w", "a", ErrNotFound)
	if Code(err) != codes.NotFound || !IsNotFound(err) {
		t.Fatal("fmt wrap not recognised")
	}
	err = fmt.Errorf("outer: %w", Errorf(ErrConflict, "inner"))
	if Code(err) != codes.FailedPrecondition || err.Error() != "outer: inner" {
		t.Fatalf("%v %v", Code(err), err)
	}
	if !errors.Is(ErrFailedPrecondition, ErrConflict) {
		t.Fatal("alias")
	}
}

func TestWrapKeepsChain(t *testing.T) {
	base := errors.New("base")
	err := Wrap(ErrInvalidArgument, fmt.Errorf("ctx: %w", base))
	if !errors.Is(err, base) || !errors.Is(err, ErrInvalidArgument) || err.Error() != "ctx: base" {
		t.Fatal(err)
	}
	if Wrap(ErrNotFound, nil) != nil {
		t.Fatal("nil")
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
	Register(errPkg, ErrAlreadyExists)
	err := fmt.Errorf("host path: %w", errPkg)
	if Code(err) != codes.AlreadyExists || !IsAlreadyExists(err) {
		t.Fatal(Code(err))
	}
}

func TestStatusPassThroughAndOneLine(t *testing.T) {
	s := status.Error(codes.Aborted, "busy")
	if ToGRPC(s) != s {
		t.Fatal("status not passed through")
	}
	if !IsConflict(FromGRPC(s)) {
		t.Fatal("aborted -> conflict")
	}
	g := ToGRPC(Errorf(ErrInternal, "line1\n  line2\n"))
	if st, _ := status.FromError(g); st.Message() != "line1; line2" {
		t.Fatalf("%q", st.Message())
	}
	plain := errors.New("not grpc")
	if FromGRPC(plain) != plain {
		t.Fatal("non-status changed")
	}
	if e := FromGRPC(status.Error(codes.Unavailable, "")); e.Error() != "unavailable" || !IsUnavailable(e) {
		t.Fatal(e)
	}
	// a wrapped status (e.g. from a shim call) keeps its code
	w := fmt.Errorf("shim: %w", status.Error(codes.NotFound, "gone"))
	if Code(w) != codes.NotFound {
		t.Fatal(Code(w))
	}
}

func TestKindNilForPlain(t *testing.T) {
	if Kind(errors.New("x")) != nil {
		t.Fatal("a plain error has no category")
	}
	if Kind(Errorf(ErrUnknown, "x")) != ErrUnknown {
		t.Fatal("explicit unknown")
	}
}
