package registry

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// Credentials are the logins the daemon keeps, in a root-only (0600) file in docker's
// config.json shape ({"auths": {"host": {"auth": base64(user:password)}}}). They are never
// printed or logged.
type Credentials struct {
	path string
	mu   sync.Mutex
}

type authFile struct {
	Auths map[string]struct {
		Auth string `json:"auth"`
	} `json:"auths"`
}

// NewCredentials uses the file at path.
func NewCredentials(path string) *Credentials { return &Credentials{path: path} }

func (c *Credentials) load() (authFile, error) {
	var f authFile
	data, err := os.ReadFile(c.path)
	if os.IsNotExist(err) {
		return authFile{Auths: map[string]struct {
			Auth string `json:"auth"`
		}{}}, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, errdefs.Errorf(errdefs.ErrInternal, "credentials file %s is damaged", c.path)
	}
	if f.Auths == nil {
		f.Auths = map[string]struct {
			Auth string `json:"auth"`
		}{}
	}
	return f, nil
}

// Get returns the login for host.
func (c *Credentials) Get(host string) (authn.Authenticator, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.load()
	if err != nil {
		return nil, false
	}
	a, ok := f.Auths[canonicalHost(host)]
	if !ok {
		return nil, false
	}
	raw, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil {
		return nil, false
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	return &authn.Basic{Username: user, Password: pass}, true
}

// Set stores a login for host.
func (c *Credentials) Set(host, user, password string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.load()
	if err != nil {
		return err
	}
	f.Auths[canonicalHost(host)] = struct {
		Auth string `json:"auth"`
	}{base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	data, _ := json.MarshalIndent(f, "", "  ")
	return atomicfile.Replace(c.path, data, 0o600)
}

// Delete forgets the login for host; it reports whether there was one.
func (c *Credentials) Delete(host string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.load()
	if err != nil {
		return false, err
	}
	if _, ok := f.Auths[canonicalHost(host)]; !ok {
		return false, nil
	}
	delete(f.Auths, canonicalHost(host))
	data, _ := json.MarshalIndent(f, "", "  ")
	return true, atomicfile.Replace(c.path, data, 0o600)
}

// canonicalHost: docker.io and its API host are one login.
func canonicalHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h = strings.TrimSuffix(h, "/")
	if h == "index.docker.io" || h == "registry-1.docker.io" {
		return "docker.io"
	}
	return h
}
