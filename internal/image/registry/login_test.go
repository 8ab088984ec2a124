package registry

import (
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/reference"
)

func TestNewLogin(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name                                 string
		server, user, pass, auth, idt, regtk string
		want                                 *Login
		err                                  string
	}{
		{name: "none"},
		{name: "user and password", user: "u", pass: "p", want: &Login{Username: "u", Password: "p"}},
		{name: "auth field", auth: b64("u:p:with:colons"), want: &Login{Username: "u", Password: "p:with:colons"}},
		{name: "user wins over auth", user: "a", pass: "b", auth: b64("u:p"), want: &Login{Username: "a", Password: "b"}},
		{name: "identity token", idt: "tok", want: &Login{IdentityToken: "tok"}},
		{name: "registry token", regtk: "tok", want: &Login{RegistryToken: "tok"}},
		{name: "server as URL", server: "https://index.docker.io/v1/", user: "u", pass: "p", want: &Login{Server: "index.docker.io", Username: "u", Password: "p"}},
		{name: "server as host", server: "127.0.0.1:5000", user: "u", pass: "p", want: &Login{Server: "127.0.0.1:5000", Username: "u", Password: "p"}},
		{name: "auth not base64", auth: "%%%", err: "not base64"},
		{name: "auth without a colon", auth: b64("up"), err: "not base64 of user:password"},
		{name: "password alone", pass: "p", err: "a password without a user name"},
		{name: "bad server", server: "https://", user: "u", err: "auth server address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLogin(tc.server, tc.user, tc.pass, tc.auth, tc.idt, tc.regtk)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (l == nil) != (tc.want == nil) || (l != nil && *l != *tc.want) {
				t.Errorf("login %+v, want %+v", l, tc.want)
			}
		})
	}
}

// A login for a server goes to that host only (docker.io's names are one); one without goes
// to every endpoint of the pull.
func TestLoginFor(t *testing.T) {
	var none *Login
	if _, ok := none.For("x"); ok {
		t.Error("a nil login applies")
	}
	l := &Login{Server: "index.docker.io", Username: "u", Password: "p"}
	for host, want := range map[string]bool{"index.docker.io": true, "docker.io": true, "registry-1.docker.io": true,
		"mirror.local:5000": false, "127.0.0.1:5000": false} {
		a, ok := l.For(host)
		if ok != want {
			t.Errorf("For(%s) = %v, want %v", host, ok, want)
			continue
		}
		if ok {
			cfg, err := authn.Authorization(t.Context(), a)
			if err != nil || cfg.Username != "u" || cfg.Password != "p" {
				t.Errorf("For(%s): %+v %v", host, cfg, err)
			}
		}
	}
	open := &Login{RegistryToken: "tok"}
	a, ok := open.For("mirror.local:5000")
	if !ok {
		t.Fatal("a login without a server does not apply to a mirror of the pull")
	}
	if cfg, _ := authn.Authorization(t.Context(), a); cfg.RegistryToken != "tok" {
		t.Errorf("registry token lost: %+v", cfg)
	}
}

// authRegistry is an in-memory registry on 127.0.0.1 that wants the basic login kube:s3cret
// or the bearer token tok, with one image at test/img:v1.
func authRegistry(t *testing.T) string {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !(ok && u == "kube" && p == "s3cret") && r.Header.Get("Authorization") != "Bearer tok" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(host+"/test/img:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "kube", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	return host
}

// A pull's login reaches the registry (and a mirror of it) unless it names another server.
func TestGetWithLogin(t *testing.T) {
	host := authRegistry(t)
	// The upstream: a closed port on 127.0.0.1 (no name to resolve).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := l.Addr().String()
	l.Close()
	c := New(Config{Registries: map[string][]string{upstream: {host}}})
	get := func(ref string, l *Login) error {
		r, err := reference.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.GetWith(t.Context(), r, l)
		return err
	}
	basic := &Login{Username: "kube", Password: "s3cret"}
	for _, tc := range []struct {
		name, ref string
		login     *Login
		ok        bool
	}{
		{"no login", host + "/test/img:v1", nil, false},
		{"basic", host + "/test/img:v1", basic, true},
		{"wrong password", host + "/test/img:v1", &Login{Username: "kube", Password: "no"}, false},
		{"registry token", host + "/test/img:v1", &Login{RegistryToken: "tok"}, true},
		{"for this server", host + "/test/img:v1", &Login{Server: host, Username: "kube", Password: "s3cret"}, true},
		{"for another server", host + "/test/img:v1", &Login{Server: "other.example", Username: "kube", Password: "s3cret"}, false},
		{"through a mirror", upstream + "/test/img:v1", basic, true},
		{"a mirror, for the upstream only", upstream + "/test/img:v1", &Login{Server: upstream, Username: "kube", Password: "s3cret"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := get(tc.ref, tc.login); (err == nil) != tc.ok {
				t.Errorf("pull %s: %v, want ok=%v", tc.ref, err, tc.ok)
			}
		})
	}
}

// A mirror's answer (unauthorized) is given when the upstream is unreachable, with both.
func TestGetMirrorAnswerWhenUpstreamDown(t *testing.T) {
	host := authRegistry(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := l.Addr().String()
	l.Close()
	c := New(Config{Registries: map[string][]string{upstream: {host}}})
	r, _ := reference.Parse(upstream + "/test/img:v1")
	_, _, err = c.GetWith(t.Context(), r, nil)
	if errdefs.Kind(err) != errdefs.ErrPermissionDenied || !strings.Contains(err.Error(), "unauthorized at "+host) ||
		!strings.Contains(err.Error(), "registry "+upstream+" is unreachable") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v (kind %v)", err, errdefs.Kind(err))
	}
	// Both down: the upstream's.
	c = New(Config{Registries: map[string][]string{upstream: {upstream}}})
	if _, _, err = c.GetWith(t.Context(), r, nil); errdefs.Kind(err) != errdefs.ErrUnavailable {
		t.Errorf("error %v, want unavailable", err)
	}
}
