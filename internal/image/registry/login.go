package registry

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// Login is a login given with one pull (the CRI's PullImageRequest.Auth, which the kubelet
// takes from the pod's image pull secrets). It is used for that pull only: never stored,
// never logged.
type Login struct {
	// Server is the registry the login is for (a host, host:port or URL, as docker's
	// config.json keys it). Empty: the image's registry and its configured mirrors, as
	// containerd sends it; given: that host only, every other one pulls with the stored
	// logins.
	Server        string
	Username      string
	Password      string
	IdentityToken string // an OAuth2 refresh token (docker's identitytoken)
	RegistryToken string // a bearer token sent to the registry as it is
}

// NewLogin checks a CRI AuthConfig's fields and turns them into a Login. auth is
// base64(user:password), used when no user name is given; all empty is no login (nil).
func NewLogin(server, user, password, auth, identityToken, registryToken string) (*Login, error) {
	l := &Login{Username: user, Password: password, IdentityToken: identityToken, RegistryToken: registryToken}
	if server != "" {
		h := hostOf(server)
		if h == "" || strings.ContainsAny(h, "/ \t\n") {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "auth server address %q: want a registry host[:port] or URL", server)
		}
		l.Server = h
	}
	if user == "" && auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth))
		if err != nil {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "auth: not base64 of user:password")
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok || u == "" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "auth: not base64 of user:password")
		}
		l.Username, l.Password = u, strings.Trim(p, "\x00")
	}
	if l.Username == "" && l.Password == "" && l.IdentityToken == "" && l.RegistryToken == "" {
		if user == "" && password != "" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "auth: a password without a user name")
		}
		return nil, nil
	}
	if l.Username == "" && l.Password != "" {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "auth: a password without a user name")
	}
	return l, nil
}

// hostOf is the host[:port] of a server address: docker's config.json keys are hosts or URLs
// (https://index.docker.io/v1/).
func hostOf(s string) string {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return ""
		}
		return u.Host
	}
	h, _, _ := strings.Cut(s, "/")
	return h
}

// For is the authenticator for host, when the login applies to it.
func (l *Login) For(host string) (authn.Authenticator, bool) {
	if l == nil {
		return nil, false
	}
	if l.Server != "" && canonicalHost(l.Server) != canonicalHost(host) {
		return nil, false
	}
	return authn.FromConfig(authn.AuthConfig{Username: l.Username, Password: l.Password,
		IdentityToken: l.IdentityToken, RegistryToken: l.RegistryToken}), true
}
