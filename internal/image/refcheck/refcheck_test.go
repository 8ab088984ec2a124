package refcheck

import (
	"errors"
	"strings"
	"testing"
)

func TestPlain(t *testing.T) {
	for _, s := range []string{
		"busybox", "busybox:latest", "library/busybox:1.36", "docker.io/library/debian:bookworm",
		"localhost/img", "localhost:5000/a/b-c/d__e.f:v1.2-rc_3", "127.0.0.1:5000/x", "a-b--c/d",
		"quay.io/org/img@sha256:" + strings.Repeat("ab", 32), "img:TAG_" + strings.Repeat("x", 123),
	} {
		if !Plain(s) {
			t.Errorf("Plain(%q) = false", s)
		}
	}
	for _, s := range []string{
		"", "Busybox", "busybox:", ":tag", "busybox:-x", "a//b", "/a", "a/", "a..b", "a.-b", "_a", "a_",
		"a___b", "img@sha256:abc", "img@md5:" + strings.Repeat("a", 64), strings.Repeat("a", 64),
		"Host.io/a", "host_x.io/a", "host.io:/a", "host.io:123456/a", "[::1]:5000/a", "a b",
		"img:" + strings.Repeat("x", 129), strings.Repeat("a/", 128) + "a",
	} {
		if Plain(s) {
			t.Errorf("Plain(%q) = true", s)
		}
	}
}

func TestCheck(t *testing.T) {
	saved := Full
	defer func() { Full = saved }()
	Full = nil
	if err := Check("busybox"); err != nil {
		t.Errorf("plain without Full: %v", err)
	}
	if err := Check("[::1]:5000/a"); !errors.Is(err, ErrUndecided) {
		t.Errorf("undecided without Full: %v", err)
	}
	bad := errors.New("bad")
	Full = func(string) error { return bad }
	if err := Check("busybox"); err != bad {
		t.Errorf("Full not used: %v", err)
	}
}

func TestIsID(t *testing.T) {
	for s, want := range map[string]bool{"abc": true, "sha256:" + strings.Repeat("0", 64): true, "": false, "xyz": false, strings.Repeat("a", 65): false} {
		if IsID(s) != want {
			t.Errorf("IsID(%q) != %v", s, want)
		}
	}
}
