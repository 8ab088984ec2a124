package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/isulad-go/isulad/internal/errdefs"
)

// DirImages is an ImageResolver over a directory of root filesystem trees, named after the
// images they stand in for: busybox or busybox:latest or docker.io/library/busybox:latest is
// <dir>/busybox, registry.k8s.io/pause:3.10 is <dir>/registry.k8s.io/pause:3.10. It is a
// development and test aid until the image package (issue 11) resolves pulled images: an image
// it stands in for has no config (the CRI config must give the command).
type DirImages struct{ Dir string }

// imageRefRe is a docker reference without a digest: lowercase path components, a tag.
var imageRefRe = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)

// dirImageName is the directory name of a reference.
func dirImageName(ref string) (string, error) {
	if !imageRefRe.MatchString(ref) {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "image %q: not an image reference (want name[:tag])", ref)
	}
	n := strings.TrimPrefix(ref, "docker.io/")
	n = strings.TrimPrefix(n, "library/")
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') && n[i+1:] == "latest" {
		n = n[:i]
	}
	return n, nil
}

func (d DirImages) Resolve(ctx context.Context, ref string) (Image, error) {
	n, err := dirImageName(ref)
	if err != nil {
		return Image{}, err
	}
	p := filepath.Join(d.Dir, n)
	// Lstat, not Stat: a symbolic link in the stand-in directory is not followed.
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() {
		return Image{}, errdefs.Errorf(errdefs.ErrNotFound, "image %q: no stand-in root filesystem %s (pulled images wait for the image service, issue 11)", ref, p)
	}
	return Image{ID: fmt.Sprintf("dir:%s", n), Names: []string{fullImageName(n)}, Rootfs: p}, nil
}

// List is every stand-in: the directories of Dir, and those one level down in a directory
// named like a registry host (with a dot or a port).
func (d DirImages) List(ctx context.Context) ([]Image, error) {
	ents, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil, err
	}
	var out []Image
	add := func(name string) {
		if img, err := d.Resolve(ctx, name); err == nil {
			out = append(out, img)
		}
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if strings.Contains(e.Name(), ".") {
			subs, _ := os.ReadDir(filepath.Join(d.Dir, e.Name()))
			for _, s := range subs {
				if s.IsDir() {
					add(e.Name() + "/" + s.Name())
				}
			}
			continue
		}
		add(e.Name())
	}
	return out, nil
}

// Pull cannot fetch anything: stand-ins are made by hand (or by the tests).
func (d DirImages) Pull(ctx context.Context, ref string) (Image, error) {
	return Image{}, errdefs.Errorf(errdefs.ErrNotImplemented, "image %q: pulling waits for the image service (issue 11); stand-in root filesystems are read from %s", ref, d.Dir)
}

// Remove leaves the stand-ins alone.
func (d DirImages) Remove(ctx context.Context, ref string) error {
	return errdefs.Errorf(errdefs.ErrNotImplemented, "image %q: stand-in root filesystems in %s are not removed through the CRI", ref, d.Dir)
}

// fullImageName is a short name in full, as docker expands it: busybox is
// docker.io/library/busybox:latest.
func fullImageName(n string) string {
	first, _, more := strings.Cut(n, "/")
	switch {
	case !more:
		n = "docker.io/library/" + n
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		n = "docker.io/" + n
	}
	if i := strings.LastIndexByte(n, ':'); i < strings.LastIndexByte(n, '/') {
		n += ":latest"
	}
	return n
}
