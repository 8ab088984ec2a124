package opts

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/isulad-go/isulad/internal/units"
)

const sizeWant = "bytes, or a number with a binary unit b, k, m, g or t, e.g. 512m or 1.5g"

// parseSize parses a non-negative size with docker's units (all binary: 1k = 1024, up to p),
// case-insensitive, with an optional fraction rounded down to whole bytes.
func parseSize(flag, s string) (int64, error) {
	n, err := units.Parse(s, units.PiB)
	var ue *units.UnitError
	switch {
	case err == nil:
		return n, nil
	case errors.As(err, &ue):
		return 0, newErr(flag, s, "unknown unit "+quote(ue.Unit), sizeWant)
	case errors.Is(err, units.ErrRange):
		return 0, newErr(flag, s, "too large", sizeWant)
	default:
		return 0, newErr(flag, s, "", sizeWant)
	}
}

// ParseMemory parses a memory size like docker's -m: "16m", "1g", "512k", "1.5g" or plain
// bytes; units b, k, m, g, t, p (also kb/kib...) are binary and case-insensitive. Signs,
// spaces and exponents are refused. The error names --memory; use WithFlag for other flags.
func ParseMemory(s string) (int64, error) {
	return parseSize("--memory", s)
}

// ParseMemorySwap is ParseMemory for --memory-swap, which also takes -1 (unlimited swap).
func ParseMemorySwap(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	n, err := parseSize("--memory-swap", s)
	if err != nil {
		return 0, newErr("--memory-swap", s, "", "-1 for unlimited, "+sizeWant)
	}
	return n, nil
}

var cpusRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?$`) })

const cpusWant = "a decimal number of CPUs such as 0.5 or 2, at most 9 decimals"

// ParseCPUs parses --cpus ("1.5", "2", "0.25") into nano-CPUs. 0 means no limit. Signs,
// exponents and more than 9 decimals are refused.
func ParseCPUs(s string) (int64, error) {
	m := cpusRe().FindStringSubmatch(s)
	if m == nil {
		return 0, newErr("--cpus", s, "", cpusWant)
	}
	frac := strings.TrimRight(m[2], "0")
	if len(frac) > 9 {
		return 0, newErr("--cpus", s, "too precise", cpusWant)
	}
	ip := strings.TrimLeft(m[1], "0")
	if len(ip) > 9 {
		return 0, newErr("--cpus", s, "too large", cpusWant)
	}
	var n int64
	for _, c := range ip {
		n = n*10 + int64(c-'0')
	}
	n *= 1e9
	f := frac + strings.Repeat("0", 9-len(frac))
	var fn int64
	for _, c := range f {
		fn = fn*10 + int64(c-'0')
	}
	return n + fn, nil
}

func quote(s string) string { return strconv.Quote(s) }
