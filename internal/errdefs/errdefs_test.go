package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestKinds(t *testing.T) {
	for _, k := range Kinds {
		err := Errorf(k, "thing %q is wrong", "x")
		if !errors.Is(err, k) || Kind(err) != k {
			t.Fatalf("%v: errors.Is / Kind failed", k)
		}
		if err.Error() != `thing "x" is wrong` {
			t.Fatalf("message %q", err.Error())
		}
	}
}

func TestFmtWrap(t *testing.T) {
	err := fmt.Errorf("container %q: %w", "a", ErrNotFound)
	if Kind(err) != ErrNotFound || !IsNotFound(err) {
		t.Fatal("fmt wrap not recognised")
	}
	err = fmt.Errorf("outer: %w", Errorf(ErrConflict, "inner"))
	if Kind(err) != ErrConflict || err.Error() != "outer: inner" {
		t.Fatalf("%v %v", Kind(err), err)
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
	if Kind(fmt.Errorf("wait: %w", context.DeadlineExceeded)) != ErrDeadlineExceeded {
		t.Fatal("deadline")
	}
	if Kind(context.Canceled) != ErrCanceled {
		t.Fatal("canceled")
	}
	if Kind(nil) != nil {
		t.Fatal("nil")
	}
}

var errPkg = errors.New("pkg sentinel")

func TestRegister(t *testing.T) {
	Register(errPkg, ErrAlreadyExists)
	err := fmt.Errorf("host path: %w", errPkg)
	if Kind(err) != ErrAlreadyExists || !IsAlreadyExists(err) {
		t.Fatal(Kind(err))
	}
}

func TestOneLine(t *testing.T) {
	if got := OneLine("line1\n  line2\n"); got != "line1; line2" {
		t.Fatalf("%q", got)
	}
	if got := OneLine("  one  "); got != "one" {
		t.Fatalf("%q", got)
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
