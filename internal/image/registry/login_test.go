package registry

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
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
