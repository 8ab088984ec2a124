// Package opts holds the strict parsers of user input shared by the client and the daemon:
// -v, --mount, --tmpfs, -m and other sizes, --cpus, signals, restart policies, environment
// lists and files, names, --user-remap, and the checks of a whole create request. The daemon
// re-validates every request with these same functions, so a raw API call is held to the
// same rules as the command line.
//
// Every error is one line that names the flag, the value and what is wanted, and is an
// errdefs.ErrInvalidArgument.
package opts

import (
	"fmt"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Error is the error type of this package:
//
//	invalid <Flag> "<Value>": <Reason> (want <Want>)
type Error struct {
	Flag   string // e.g. "--memory"
	Value  string
	Reason string // optional
	Want   string // optional
}

func (e *Error) Error() string {
	s := fmt.Sprintf("invalid %s %q", e.Flag, e.Value)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Want != "" {
		s += " (want " + e.Want + ")"
	}
	return s
}

// Unwrap makes every Error an errdefs.ErrInvalidArgument.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// WithFlag returns err with its flag name replaced by flag when err is an *Error (for a
// parser used by several flags, e.g. ParseSignal for --stop-signal and kill -s); other
// errors are returned unchanged.
func WithFlag(err error, flag string) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Flag = flag
		return &c
	}
	return err
}

func newErr(flag, value, reason, want string) error {
	return &Error{Flag: flag, Value: value, Reason: reason, Want: want}
}

// invalidf is for errors that are not about one value (combinations of flags).
func invalidf(format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, args...)
}
