// Package registry talks to image registries (the OCI distribution API) through
// go-containerregistry: mirrors with fallback, TLS with certificates from certs.d, plain
// HTTP only where allowed, credentials from `isula login`, and one clear error per failure.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/reference"
)

// Config is the daemon's registry configuration (daemon.json).
type Config struct {
	Mirrors    []string            // registry-mirrors: mirrors of docker.io
	Registries map[string][]string // registries: per upstream host, its mirrors
	Insecure   []string            // insecure-registries: plain HTTP allowed
	CertsDir   string              // /etc/isulad/certs.d
	Auth       *Credentials
}

// Client is a configured registry client.
type Client struct {
	cfg Config
}

// New returns a client for cfg.
func New(cfg Config) *Client { return &Client{cfg: cfg} }

// Platform is the platform images are pulled for: linux and the host's architecture.
func Platform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// endpoint is one place to fetch a repository from.
type endpoint struct {
	host  string // host[:port]
	plain bool   // http:// given explicitly
}

func parseEndpoint(s string) endpoint {
	e := endpoint{host: s}
	if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		e.host, e.plain = u.Host, u.Scheme == "http"
	}
	e.host = strings.TrimSuffix(e.host, "/")
	return e
}

// endpoints lists the mirrors of a registry, then the registry itself.
func (c *Client) endpoints(domain string) []endpoint {
	var out []endpoint
	var mirrors []string
	if domain == "docker.io" {
		mirrors = append(mirrors, c.cfg.Mirrors...)
	}
	mirrors = append(mirrors, c.cfg.Registries[domain]...)
	for _, m := range mirrors {
		out = append(out, parseEndpoint(m))
	}
	up := domain
	if domain == "docker.io" {
		up = "index.docker.io"
	}
	return append(out, endpoint{host: up})
}

// plainAllowed: HTTP without TLS only for loopback hosts and insecure-registries.
func (c *Client) plainAllowed(host string) bool {
	if slices.Contains(c.cfg.Insecure, host) {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// transportFor is an HTTP transport with the host's certificates from certs.d.
func (c *Client) transportFor(host string) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.CertsDir != "" {
		dir := filepath.Join(c.cfg.CertsDir, host)
		if ents, err := os.ReadDir(dir); err == nil {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".crt") {
					pem, err := os.ReadFile(filepath.Join(dir, e.Name()))
					if err != nil || !pool.AppendCertsFromPEM(pem) {
						return nil, fmt.Errorf("certificate %s: not a readable PEM certificate", filepath.Join(dir, e.Name()))
					}
				}
			}
			tc.RootCAs = pool
			cert, key := filepath.Join(dir, "client.cert"), filepath.Join(dir, "client.key")
			if _, err := os.Stat(cert); err == nil {
				pair, err := tls.LoadX509KeyPair(cert, key)
				if err != nil {
					return nil, fmt.Errorf("client certificate %s with %s: %v", cert, key, err)
				}
				tc.Certificates = []tls.Certificate{pair}
			}
		}
	}
	t.TLSClientConfig = tc
	return &schemeGuard{rt: t, allowed: c.plainAllowed}, nil
}

// schemeGuard refuses plain HTTP where it is not allowed: go-containerregistry falls back
// to HTTP for private (RFC 1918) addresses on its own, which must not happen silently.
type schemeGuard struct {
	rt      http.RoundTripper
	allowed func(host string) bool
}

func (g *schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.allowed(r.URL.Host) {
		return nil, fmt.Errorf("plain HTTP to %s refused: the registry is not on loopback nor in insecure-registries", r.URL.Host)
	}
	return g.rt.RoundTrip(r)
}

func (c *Client) options(ctx context.Context, host string, login *Login) ([]remote.Option, []name.Option, error) {
	rt, err := c.transportFor(host)
	if err != nil {
		return nil, nil, err
	}
	var nopts []name.Option
	if c.plainAllowed(host) {
		nopts = append(nopts, name.Insecure)
	}
	auth := authn.Anonymous
	if a, ok := login.For(host); ok {
		auth = a
	} else if c.cfg.Auth != nil {
		if a, ok := c.cfg.Auth.Get(host); ok {
			auth = a
		}
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(rt), remote.WithAuth(auth), remote.WithPlatform(Platform()), remote.WithJobs(4)}, nopts, nil
}

func nameFor(host string, r reference.Ref, nopts []name.Option) (name.Reference, error) {
	s := host + "/" + r.Path
	if r.Digest != "" {
		return name.NewDigest(s+"@"+r.Digest, nopts...)
	}
	return name.NewTag(s+":"+r.Tag, nopts...)
}

// Get resolves r on its mirrors, then its registry, and returns the image for this
// platform (from a manifest list or OCI index if that is what the tag names). It also
// returns the manifest digest the registry gave.
func (c *Client) Get(ctx context.Context, r reference.Ref) (v1.Image, string, error) {
	return c.GetWith(ctx, r, nil)
}

// GetWith is Get with a login given for this pull only (nil: the stored ones): it is used
// with the hosts login.For accepts, and the stored logins with the others.
func (c *Client) GetWith(ctx context.Context, r reference.Ref, login *Login) (v1.Image, string, error) {
	var errs []error
	eps := c.endpoints(r.Domain)
	for i, ep := range eps {
		img, dgst, err := c.getFrom(ctx, ep, r, login)
		if err == nil {
			return img, dgst, nil
		}
		if ctx.Err() != nil {
			return nil, "", Explain(r.String(), r.Domain, ctx.Err())
		}
		if i == len(eps)-1 {
			// The upstream's answer is the one to give, unless it is unreachable and a
			// mirror answered (unauthorized, not found): then that answer is the news.
			up := Explain(r.String(), ep.host, err)
			if errdefs.Kind(up) == errdefs.ErrUnavailable {
				for j, me := range errs {
					m := Explain(r.String(), eps[j].host, me)
					if k := errdefs.Kind(m); k == errdefs.ErrPermissionDenied || k == errdefs.ErrNotFound {
						return nil, "", errdefs.Errorf(k, "%v (mirror of %s); %s", m, r.Domain,
							strings.TrimPrefix(up.Error(), "image "+r.String()+": "))
					}
				}
			}
			return nil, "", up
		}
		errs = append(errs, err)
	}
	return nil, "", errors.Join(errs...)
}

func (c *Client) getFrom(ctx context.Context, ep endpoint, r reference.Ref, login *Login) (v1.Image, string, error) {
	opts, nopts, err := c.options(ctx, ep.host, login)
	if err != nil {
		return nil, "", err
	}
	if ep.plain {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := nameFor(ep.host, r, nopts)
	if err != nil {
		return nil, "", err
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, "", err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, "", err
	}
	return img, desc.Digest.String(), nil
}

// Push sends img to r's registry (not to a mirror). Blobs the registry has are skipped.
// from names a repository of the same registry the image came from (or ""): its blobs are
// mounted from there rather than uploaded again (the distribution spec's cross-repository
// mount).
func (c *Client) Push(ctx context.Context, r reference.Ref, img v1.Image, from string, updates chan<- v1.Update) error {
	host := r.Domain
	if host == "docker.io" {
		host = "index.docker.io"
	}
	opts, nopts, err := c.options(ctx, host, nil)
	if err != nil {
		return err
	}
	ref, err := nameFor(host, r, nopts)
	if err != nil {
		return err
	}
	if updates != nil {
		opts = append(opts, remote.WithProgress(updates))
	}
	if from != "" {
		if src, err := name.NewRepository(host+"/"+from, nopts...); err == nil {
			img = &mountableImage{Image: img, from: src.Tag("latest")}
		}
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		return Explain(r.String(), r.Domain, err)
	}
	return nil
}

// CheckLogin verifies user and password against the registry at host.
func (c *Client) CheckLogin(ctx context.Context, host, user, password string) error {
	rt, err := c.transportFor(host)
	if err != nil {
		return err
	}
	var nopts []name.Option
	if c.plainAllowed(host) {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "registry %q: %v", host, err)
	}
	auth := &authn.Basic{Username: user, Password: password}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return Explain("", host, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return Explain("", host, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "login to %s: unauthorized: wrong user name or password", host)
	}
	if resp.StatusCode/100 != 2 {
		return errdefs.Errorf(errdefs.ErrUnavailable, "login to %s: the registry answered %s", host, resp.Status)
	}
	return nil
}

// Explain turns a registry failure into one line naming the image and the cause, with its
// category.
func Explain(image, host string, err error) error {
	what := "image " + image
	if image == "" {
		what = "registry " + host
	}
	var te *transport.Error
	var ue *url.Error
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ne net.Error
	var oe *net.OpError
	var dnse *net.DNSError
	switch {
	case strings.Contains(err.Error(), "HTTP request to an HTTPS server"):
		// A loopback registry is tried with https, then http: the https failure is the cause.
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s: TLS with %s failed: its certificate is not trusted (put its CA in /etc/isulad/certs.d/%s/ca.crt)", what, host, host)
	case errors.Is(err, context.Canceled):
		return errdefs.Errorf(errdefs.ErrCanceled, "%s: canceled", what)
	case errors.As(err, &te):
		codes := []string{}
		for _, d := range te.Errors {
			codes = append(codes, string(d.Code))
		}
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden ||
			slices.Contains(codes, string(transport.UnauthorizedErrorCode)) || slices.Contains(codes, string(transport.DeniedErrorCode)):
			return errdefs.Errorf(errdefs.ErrPermissionDenied, "%s: unauthorized at %s (log in with `isula login %s`, or check the name)", what, host, host)
		case te.StatusCode == http.StatusNotFound || slices.Contains(codes, string(transport.ManifestUnknownErrorCode)) || slices.Contains(codes, string(transport.NameUnknownErrorCode)):
			return errdefs.Errorf(errdefs.ErrNotFound, "%s: not found at %s (no such repository, tag or digest)", what, host)
		}
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s: registry %s answered: %v", what, host, te)
	case errors.As(err, &ce), errors.As(err, &ua), errors.As(err, &hn),
		strings.Contains(err.Error(), "x509:"), strings.Contains(err.Error(), "tls:"),
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s: TLS with %s failed: %v (put its CA in /etc/isulad/certs.d/%s/ca.crt, or list it in insecure-registries)", what, host, rootCause(err), host)
	case errors.As(err, &dnse), errors.As(err, &oe), errors.As(err, &ne), errors.As(err, &ue):
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s: registry %s is unreachable (%s)", what, host, netCause(rootCause(err).Error()))
	case strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"),
		strings.Contains(err.Error(), "i/o timeout"), strings.Contains(err.Error(), "network is unreachable"),
		strings.Contains(err.Error(), "no route to host"):
		// go-containerregistry's ping joins its https and http attempts into one plain error.
		return errdefs.Errorf(errdefs.ErrUnavailable, "%s: registry %s is unreachable (%s)", what, host, netCause(err.Error()))
	case strings.Contains(err.Error(), "no child with platform"), strings.Contains(err.Error(), "no matching manifest"):
		p := Platform()
		return errdefs.Errorf(errdefs.ErrNotFound, "%s: no variant for platform %s/%s in its manifest list", what, p.OS, p.Architecture)
	case strings.Contains(err.Error(), "plain HTTP to"):
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// netCause is the short cause in a network error's text.
func netCause(s string) string {
	for _, c := range []string{"connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host"} {
		if strings.Contains(s, c) {
			return c
		}
	}
	return s
}

// mountableImage marks every layer as mountable from another repository of the registry.
type mountableImage struct {
	v1.Image
	from name.Reference
}

func (m *mountableImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = &remote.MountableLayer{Layer: l, Reference: m.from}
	}
	return out, nil
}
