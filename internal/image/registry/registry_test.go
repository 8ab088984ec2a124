package registry

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/isulad-go/isulad/internal/errdefs"
)

func TestEndpoints(t *testing.T) {
	c := New(Config{Mirrors: []string{"https://m1.example", "http://127.0.0.1:5000/"}, Registries: map[string][]string{
		"docker.io": {"m2.example"}, "registry.k8s.io": {"127.0.0.1:5001"}}})
	var got []string
	for _, e := range c.endpoints("docker.io") {
		got = append(got, e.host)
	}
	if strings.Join(got, " ") != "m1.example 127.0.0.1:5000 m2.example index.docker.io" {
		t.Fatalf("docker.io endpoints: %v", got)
	}
	if e := c.endpoints("docker.io")[1]; !e.plain {
		t.Fatal("an http:// mirror is not plain HTTP")
	}
	if e := c.endpoints("registry.k8s.io"); len(e) != 2 || e[0].host != "127.0.0.1:5001" || e[1].host != "registry.k8s.io" {
		t.Fatalf("per-host mirrors: %+v", e)
	}
}

func TestPlainAllowed(t *testing.T) {
	c := New(Config{Insecure: []string{"reg.lan:5000"}})
	for host, want := range map[string]bool{"127.0.0.1:5000": true, "localhost:80": true, "[::1]:5000": true, "reg.lan:5000": true,
		"10.0.0.1:5000": false, "192.168.1.2": false, "registry.example": false, "reg.lan:5001": false} {
		if c.plainAllowed(host) != want {
			t.Errorf("plainAllowed(%s) = %v", host, !want)
		}
	}
	g := &schemeGuard{rt: http.DefaultTransport, allowed: c.plainAllowed}
	req, _ := http.NewRequest("GET", "http://10.0.0.1:5000/v2/", nil)
	if _, err := g.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "plain HTTP to 10.0.0.1:5000 refused") {
		t.Fatalf("plain HTTP to a private address: %v", err)
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind error
		want string
	}{
		{&transport.Error{StatusCode: 401}, errdefs.ErrPermissionDenied, "unauthorized"},
		{&transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, errdefs.ErrNotFound, "not found"},
		{errors.New(`Get "https://h/v2/": dial tcp 127.0.0.1:1: connect: connection refused`), errdefs.ErrUnavailable, "unreachable (connection refused)"},
		{errors.New("x509: certificate signed by unknown authority"), errdefs.ErrUnavailable, "TLS"},
		{errors.New("no child with platform linux/amd64 in index x"), errdefs.ErrNotFound, "platform linux/"},
	} {
		e := Explain("img:v1", "h", tc.err)
		if errdefs.Kind(e) != tc.kind || !strings.Contains(e.Error(), tc.want) || !strings.HasPrefix(e.Error(), "image img:v1: ") {
			t.Errorf("Explain(%v) = %v (%v)", tc.err, e, errdefs.Kind(e))
		}
	}
}

func TestCredentials(t *testing.T) {
	p := filepath.Join(t.TempDir(), "auths.json")
	c := NewCredentials(p)
	if err := c.Set("https://index.docker.io/", "u", "p:w"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	a, ok := c.Get("docker.io")
	if !ok {
		t.Fatal("no login for docker.io")
	}
	cfg, _ := a.Authorization()
	if cfg.Username != "u" || cfg.Password != "p:w" {
		t.Fatalf("%+v", cfg)
	}
	if ok, _ := c.Delete("docker.io"); !ok {
		t.Fatal("delete")
	}
	if _, ok := c.Get("docker.io"); ok {
		t.Fatal("still logged in")
	}
}
