package reference

import (
	"strings"
	"testing"

	"github.com/isulad-go/isulad/internal/image/refcheck"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"myrepo/img:v1", "docker.io/myrepo/img:v1", "myrepo/img:v1"},
		{"127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest"},
		{"localhost/x:y", "localhost/x:y", "localhost/x:y"},
		{"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"},
		{"busybox@sha256:" + strings.Repeat("a", 64), "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64), "busybox@sha256:" + strings.Repeat("a", 64)},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if r.String() != tc.want {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, r.String(), tc.want)
		}
		if f := Familiar(r.String()); f != tc.familiar {
			t.Errorf("Familiar(%q) = %q, want %q", r.String(), f, tc.familiar)
		}
	}
	for _, bad := range []string{"", "UPPER", "a b", "busybox:", ":tag", "busybox@sha256:12", "a/../b", "-x", strings.Repeat("a", 2000)} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "invalid image reference") {
			t.Errorf("Parse(%q) = %v, want an invalid reference error", bad, err)
		}
	}
}

func TestIsID(t *testing.T) {
	for s, want := range map[string]bool{"abc123": true, "sha256:abc": true, "busybox": false, "": false, strings.Repeat("a", 65): false, "ABC": false} {
		if IsID(s) != want {
			t.Errorf("IsID(%q) = %v", s, !want)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts round-trips through String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"busybox", "a/b:c", "127.0.0.1:5000/x@sha256:" + strings.Repeat("0", 64), "docker.io/library/x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		r2, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its String %q is rejected: %v", s, r.String(), err)
		}
		if r2 != r {
			t.Fatalf("round trip of %q: %+v != %+v", s, r2, r)
		}
		_ = Familiar(r.String())
	})
}

// What refcheck.Plain accepts (the front's check) distribution's grammar accepts too, and
// refcheck.Full is this package's parser.
func TestPlainIsASubsetOfTheGrammar(t *testing.T) {
	if refcheck.Full == nil {
		t.Fatal("refcheck.Full not set by this package")
	}
	parts := []string{"a", "b0", "x-y", "x--y", "x.y", "x_y", "x__y", "x___y", "X", "_", "-", ".", "/", ":", "@",
		"localhost", "host.io", "host.io:5000", "1.2.3.4", "h-o.st", ":1", ":v1", ":V_1.2-x", "@sha256:" + strings.Repeat("c", 64)}
	n := 0
	var build func(prefix string, depth int)
	build = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, p := range parts {
			s := prefix + p
			if refcheck.Plain(s) {
				n++
				if _, err := Parse(s); err != nil {
					t.Errorf("Plain(%q) but the grammar refuses it: %v", s, err)
				}
				if err := refcheck.Full(s); err != nil {
					t.Errorf("Full(%q): %v", s, err)
				}
			}
			build(s, depth-1)
		}
	}
	build("", 4)
	if n < 1000 {
		t.Fatalf("only %d plain references generated", n)
	}
}
