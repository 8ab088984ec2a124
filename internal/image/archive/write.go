package archive

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/isulad-go/isulad/internal/image/reference"
	"github.com/isulad-go/isulad/internal/image/store"
)

// Item is one image to write, with its blobs and names (normalized repo:tag).
type Item struct {
	Manifest, Config []byte
	MediaType        string
	ConfigDigest     string
	Layers           []store.BlobLayer
	Names            []string
}

type tarOut struct {
	tw   *tar.Writer
	seen map[string]bool
}

func (t *tarOut) file(name string, data []byte) error {
	if t.seen[name] {
		return nil
	}
	t.seen[name] = true
	if err := t.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

func (t *tarOut) dir(name string) error {
	if t.seen[name] {
		return nil
	}
	t.seen[name] = true
	return t.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)})
}

func (t *tarOut) blob(name string, l store.BlobLayer) error {
	if t.seen[name] {
		return nil
	}
	t.seen[name] = true
	r, err := l.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := t.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: l.Size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, r)
	if err == nil && n != l.Size {
		err = fmt.Errorf("blob %s: %d bytes, want %d", l.Digest, n, l.Size)
	}
	return err
}

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

// WriteDocker writes a docker-archive (docker load and skopeo's docker-archive: read it):
// manifest.json, each config as <id>.json, each layer blob as <digest>.tar[.gz|.zst].
func WriteDocker(w io.Writer, items []Item) error {
	t := &tarOut{tw: tar.NewWriter(w), seen: map[string]bool{}}
	var entries []DockerEntry
	for _, it := range items {
		e := DockerEntry{Config: hexOf(it.ConfigDigest) + ".json", RepoTags: []string{}}
		for _, n := range it.Names {
			e.RepoTags = append(e.RepoTags, reference.Familiar(n))
		}
		if err := t.file(e.Config, it.Config); err != nil {
			return err
		}
		for _, l := range it.Layers {
			name := hexOf(l.Digest) + ".tar"
			switch {
			case strings.HasSuffix(l.MediaType, "gzip"):
				name += ".gz"
			case strings.HasSuffix(l.MediaType, "zstd"):
				name += ".zst"
			}
			if err := t.blob(name, l); err != nil {
				return err
			}
			e.Layers = append(e.Layers, name)
		}
		entries = append(entries, e)
	}
	m, _ := json.Marshal(entries)
	if err := t.file("manifest.json", m); err != nil {
		return err
	}
	return t.tw.Close()
}

// ociLayerType maps docker layer media types to OCI ones.
func ociLayerType(mt string) string {
	switch mt {
	case "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return "application/vnd.oci.image.layer.v1.tar+gzip"
	case "application/vnd.docker.image.rootfs.diff.tar":
		return "application/vnd.oci.image.layer.v1.tar"
	case "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return "application/vnd.oci.image.layer.v1.tar+zstd"
	}
	return mt
}

// WriteOCI writes an OCI image layout as a tar (skopeo's oci-archive). A docker schema 2
// manifest is rewritten with OCI media types over the same config and blobs (the image ID
// stays). Each name is an index entry annotated with io.containerd.image.name (the full
// name) and org.opencontainers.image.ref.name (its familiar form).
func WriteOCI(w io.Writer, items []Item) error {
	t := &tarOut{tw: tar.NewWriter(w), seen: map[string]bool{}}
	t.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	t.dir("blobs/")
	t.dir("blobs/sha256/")
	idx := Index{SchemaVersion: 2, MediaType: MediaOCIIndex, Manifests: []Descriptor{}}
	for _, it := range items {
		manifest := it.Manifest
		if it.MediaType != MediaOCIManifest {
			var m Manifest
			if err := json.Unmarshal(it.Manifest, &m); err != nil {
				return err
			}
			m.MediaType = MediaOCIManifest
			m.Config.MediaType = MediaOCIConfig
			for i := range m.Layers {
				m.Layers[i].MediaType = ociLayerType(m.Layers[i].MediaType)
			}
			manifest, _ = json.Marshal(m)
		}
		md := digestOf(manifest)
		if err := t.file(blobPath(md), manifest); err != nil {
			return err
		}
		if err := t.file(blobPath(it.ConfigDigest), it.Config); err != nil {
			return err
		}
		for _, l := range it.Layers {
			if err := t.blob(blobPath(l.Digest), l); err != nil {
				return err
			}
		}
		d := Descriptor{MediaType: MediaOCIManifest, Digest: md, Size: int64(len(manifest))}
		if len(it.Names) == 0 {
			idx.Manifests = append(idx.Manifests, d)
		}
		for _, n := range it.Names {
			d.Annotations = map[string]string{"io.containerd.image.name": n, "org.opencontainers.image.ref.name": reference.Familiar(n)}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	ib, _ := json.Marshal(idx)
	if err := t.file("index.json", ib); err != nil {
		return err
	}
	return t.tw.Close()
}
