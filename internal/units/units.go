// Package units parses byte sizes written with binary units: the one syntax behind --memory,
// --memory-swap, tmpfs sizes, --log-opt max-size and the size field of --host-channel.
package units

import (
	"errors"
	"math/big"
	"regexp"
	"strings"
	"sync"
)

// Multipliers of the units, for Parse's largest.
const (
	KiB int64 = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
	PiB
)

// Why a value was refused; Parse wraps one of them.
var (
	ErrSyntax = errors.New("not a size")
	ErrUnit   = errors.New("unknown unit")
	ErrRange  = errors.New("too large")
)

// UnitError is an ErrUnit that names the unit.
type UnitError struct{ Unit string }

func (e *UnitError) Error() string { return "unknown unit " + `"` + e.Unit + `"` }
func (e *UnitError) Unwrap() error { return ErrUnit }

// sizeRe: digits, an optional fraction with digits on both sides of the point, an optional
// unit. No space, sign or exponent.
var sizeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?([A-Za-z]*)$`) })

var multipliers = map[string]int64{
	"": 1, "b": 1,
	"k": KiB, "kb": KiB, "kib": KiB,
	"m": MiB, "mb": MiB, "mib": MiB,
	"g": GiB, "gb": GiB, "gib": GiB,
	"t": TiB, "tb": TiB, "tib": TiB,
	"p": PiB, "pb": PiB, "pib": PiB,
}

// Parse reads a non-negative size: digits with an optional fraction (`1.5`, not `.5` or
// `1.`), then an optional unit among b, k, m, g, t, p, each alone or followed by b or ib,
// case-insensitive and all binary (32m = 33554432). Units above largest (KiB ... PiB) are
// unknown. A fraction is rounded down to whole bytes. Errors wrap ErrSyntax, ErrUnit (a
// *UnitError) or ErrRange (more than an int64).
func Parse(s string, largest int64) (int64, error) {
	m := sizeRe().FindStringSubmatch(s)
	if m == nil {
		return 0, ErrSyntax
	}
	mult, ok := multipliers[strings.ToLower(m[3])]
	if !ok || mult > largest {
		return 0, &UnitError{Unit: m[3]}
	}
	// Beyond 40 digits the value is out of range whatever the unit; stop before big.Int work.
	if len(m[1])+len(m[2]) > 40 {
		return 0, ErrRange
	}
	// Exact arithmetic: (int.frac) * mult / 10^len(frac), rounded down.
	num, _ := new(big.Int).SetString(m[1]+m[2], 10)
	num.Mul(num, big.NewInt(mult))
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(m[2]))), nil)
	num.Quo(num, den)
	if !num.IsInt64() {
		return 0, ErrRange
	}
	return num.Int64(), nil
}
