// Package reference parses image names the way docker does: "busybox" is
// docker.io/library/busybox:latest, a digest pins the content, and the familiar form drops
// what docker.io implies.
package reference

import (
	"fmt"
	"strings"

	dref "github.com/distribution/reference"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/refcheck"
)

// Ref is a parsed, normalized image reference.
type Ref struct {
	Domain string // registry host[:port]: docker.io, 127.0.0.1:5000
	Path   string // repository path: library/busybox
	Tag    string // "" when only a digest is given
	Digest string // sha256:...; "" when not pinned
}

// Parse normalizes s. A name without tag or digest gets "latest". An image ID (64 hex
// digits) is not a reference: callers look IDs up before calling Parse.
func Parse(s string) (Ref, error) {
	if s == "" || len(s) > 1024 || strings.ContainsAny(s, " \t\n\x00") {
		return Ref{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid image reference %q (want NAME[:TAG|@DIGEST])", s)
	}
	n, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid image reference %q: %v (want NAME[:TAG|@DIGEST], lower-case name)", s, err)
	}
	r := Ref{Domain: dref.Domain(n), Path: dref.Path(n)}
	if t, ok := n.(dref.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := n.(dref.Digested); ok {
		r.Digest = d.Digest().String()
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Repo is the normalized repository: docker.io/library/busybox.
func (r Ref) Repo() string { return r.Domain + "/" + r.Path }

// String is the normalized full reference: docker.io/library/busybox:latest, or
// repo@sha256:... when pinned by digest (the tag, if any, is then only informative).
func (r Ref) String() string {
	if r.Digest != "" {
		if r.Tag != "" {
			return r.Repo() + ":" + r.Tag + "@" + r.Digest
		}
		return r.Repo() + "@" + r.Digest
	}
	return r.Repo() + ":" + r.Tag
}

// TagString is repo:tag (what an image record lists as a name); "" without a tag.
func (r Ref) TagString() string {
	if r.Tag == "" {
		return ""
	}
	return r.Repo() + ":" + r.Tag
}

// DigestString is repo@digest; "" without a digest.
func (r Ref) DigestString() string {
	if r.Digest == "" {
		return ""
	}
	return r.Repo() + "@" + r.Digest
}

// Familiar drops what docker.io implies: docker.io/library/busybox:latest -> busybox:latest.
func Familiar(full string) string {
	n, err := dref.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return dref.FamiliarString(n)
}

// FamiliarRepo is the familiar repository of a normalized name: busybox, 127.0.0.1:5000/x.
func FamiliarRepo(full string) string {
	n, err := dref.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return dref.FamiliarName(dref.TrimNamed(n))
}

// IsID tells whether s looks like an image ID or a prefix of one (hex, optionally
// "sha256:"), as rmi and inspect accept them.
func IsID(s string) bool { return refcheck.IsID(s) }

// The whole grammar for internal/opts' image check wherever this package is linked.
func init() {
	refcheck.Full = func(s string) error {
		_, err := Parse(s)
		return err
	}
}

// WithTag returns r retagged (the digest dropped).
func (r Ref) WithTag(tag string) Ref {
	r.Tag, r.Digest = tag, ""
	return r
}

// Validate is Parse for error messages that must name a flag.
func Validate(flag, s string) error {
	if _, err := Parse(s); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}
