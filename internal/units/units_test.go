package units

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	ok := map[string]int64{
		"0": 0, "512": 512, "1b": 1, "1k": 1024, "1KiB": 1024, "32M": 32 << 20, "32mb": 32 << 20,
		"1.5g": 3 << 29, "1.5": 1, "0.9k": 921, "8T": 8 << 40, "2pib": 2 << 50,
		"0000000000000000000000000000000000001k": 1024,
	}
	for in, want := range ok {
		if got, err := Parse(in, PiB); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]error{
		"": ErrSyntax, "-1": ErrSyntax, " 1": ErrSyntax, "1 m": ErrSyntax, ".5": ErrSyntax, "1.": ErrSyntax,
		"1e3": ErrSyntax, "1x": ErrUnit, "1mm": ErrUnit,
		"9223372036854775808": ErrRange, "8192p": ErrRange, "12345678901234567890123456789012345678901": ErrRange,
	}
	for in, want := range bad {
		if got, err := Parse(in, PiB); !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %d, %v; want %v", in, got, err, want)
		}
	}
	// A unit above largest is unknown, and named.
	_, err := Parse("1P", TiB)
	var ue *UnitError
	if !errors.As(err, &ue) || ue.Unit != "P" {
		t.Errorf("Parse(1P, TiB) = %v, want unknown unit \"P\"", err)
	}
	if n, err := Parse("1T", TiB); err != nil || n != TiB {
		t.Errorf("Parse(1T, TiB) = %d, %v", n, err)
	}
}
