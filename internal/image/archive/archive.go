// Package archive reads and writes image archives: docker-archive (what `docker save`
// writes: manifest.json, configs, layer tars) and OCI image layouts (index.json, oci-layout,
// blobs/sha256/...) as a tar, and makes a one-layer image of a rootfs tarball (import).
//
// Reading works on a seekable file: the tar is indexed once and each member is then read
// in place, so a layer streams straight from the archive into the store.
package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/image/layer"
	"github.com/isulad-go/isulad/internal/image/store"
)

// Media types.
const (
	MediaOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaOCIIndex    = "application/vnd.oci.image.index.v1+json"
	MediaOCIConfig   = "application/vnd.oci.image.config.v1+json"
	MediaDockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaDockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
	MediaDockerCfg   = "application/vnd.docker.container.image.v1+json"
)

func invalid(format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, args...)
}

// member is one regular file of the archive.
type member struct{ off, size int64 }

// Archive is an indexed tar file.
type Archive struct {
	f       *os.File
	members map[string]member
}

// Open indexes the tar at p.
func Open(p string) (*Archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	a := &Archive{f: f, members: map[string]member{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, invalid("not a tar archive: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, err
		}
		a.members[cleanName(h.Name)] = member{off: off, size: h.Size}
	}
	return a, nil
}

// Close closes the file.
func (a *Archive) Close() error { return a.f.Close() }

func cleanName(n string) string { return strings.TrimPrefix(path.Clean("/"+n), "/") }

func (a *Archive) reader(name string) (*io.SectionReader, error) {
	m, ok := a.members[cleanName(name)]
	if !ok {
		return nil, invalid("the archive has no file %q", name)
	}
	return io.NewSectionReader(a.f, m.off, m.size), nil
}

func (a *Archive) readAll(name string, limit int64) ([]byte, error) {
	r, err := a.reader(name)
	if err != nil {
		return nil, err
	}
	if r.Size() > limit {
		return nil, invalid("%s is %d bytes: too large for what it should hold", name, r.Size())
	}
	return io.ReadAll(r)
}

// Loaded is one image of an archive with the names the archive gives it.
type Loaded struct {
	Manifest, Config []byte
	MediaType        string
	Layers           []store.BlobLayer
	Names            []string // as written in the archive (docker-archive RepoTags; OCI annotations)
}

// Images reads every image of the archive (docker-archive or OCI layout).
func (a *Archive) Images() ([]Loaded, error) {
	if _, ok := a.members["manifest.json"]; ok {
		return a.dockerImages()
	}
	if _, ok := a.members["index.json"]; ok {
		return a.ociImages()
	}
	return nil, invalid("neither a docker-archive (no manifest.json) nor an OCI layout (no index.json)")
}

// DockerEntry is one element of a docker-archive's manifest.json.
type DockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ParseDockerManifest reads manifest.json; every path must stay inside the archive.
func ParseDockerManifest(data []byte) ([]DockerEntry, error) {
	var es []DockerEntry
	if err := json.Unmarshal(data, &es); err != nil {
		return nil, invalid("manifest.json: %v", err)
	}
	if len(es) == 0 {
		return nil, invalid("manifest.json lists no image")
	}
	for i, e := range es {
		for _, p := range append([]string{e.Config}, e.Layers...) {
			if err := checkMemberPath(p); err != nil {
				return nil, invalid("manifest.json image %d: %v", i, err)
			}
		}
		if len(e.Layers) > 1000 {
			return nil, invalid("manifest.json image %d: %d layers (at most 1000)", i, len(e.Layers))
		}
	}
	return es, nil
}

func checkMemberPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q: want a relative path inside the archive", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("path %q: want a path inside the archive (no ..)", p)
		}
	}
	if cleanName(p) == "" {
		return fmt.Errorf("path %q: want a file inside the archive, not its top", p)
	}
	return nil
}

func (a *Archive) dockerImages() ([]Loaded, error) {
	data, err := a.readAll("manifest.json", 16<<20)
	if err != nil {
		return nil, err
	}
	es, err := ParseDockerManifest(data)
	if err != nil {
		return nil, err
	}
	var out []Loaded
	for _, e := range es {
		config, err := a.readAll(e.Config, 16<<20)
		if err != nil {
			return nil, err
		}
		var ls []store.BlobLayer
		var descs []map[string]any
		for _, lp := range e.Layers {
			bl, err := a.blobLayer(lp)
			if err != nil {
				return nil, err
			}
			ls = append(ls, bl)
			descs = append(descs, map[string]any{"mediaType": bl.MediaType, "digest": bl.Digest, "size": bl.Size})
		}
		// docker-archive has no manifest: make an OCI one for the same config and blobs.
		manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaOCIManifest,
			"config": map[string]any{"mediaType": MediaOCIConfig, "digest": digestOf(config), "size": len(config)}, "layers": descs})
		out = append(out, Loaded{Manifest: manifest, Config: config, MediaType: MediaOCIManifest, Layers: ls, Names: e.RepoTags})
	}
	return out, nil
}

// blobLayer hashes a member and tells its compression.
func (a *Archive) blobLayer(name string) (store.BlobLayer, error) {
	r, err := a.reader(name)
	if err != nil {
		return store.BlobLayer{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return store.BlobLayer{}, err
	}
	head := make([]byte, 4)
	n, _ := r.ReadAt(head, 0)
	mt := "application/vnd.oci.image.layer.v1.tar"
	switch {
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		mt += "+gzip"
	case n >= 4 && bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		mt += "+zstd"
	}
	return a.withOpen(store.BlobLayer{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: r.Size(), MediaType: mt}, name), nil
}

// withOpen makes the layer readable from the archive member name.
func (a *Archive) withOpen(bl store.BlobLayer, name string) store.BlobLayer {
	m := a.members[cleanName(name)]
	bl.Open = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(a.f, m.off, m.size)), nil }
	return bl
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant,omitempty"`
	} `json:"platform,omitempty"`
}

// Index is an OCI index (or docker manifest list), and Manifest an image manifest.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// ParseIndex reads an index.json; every digest must be a sha256.
func ParseIndex(data []byte) (*Index, error) {
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, invalid("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 {
		return nil, invalid("index.json: schemaVersion %d (want 2)", idx.SchemaVersion)
	}
	for _, d := range idx.Manifests {
		if !validDigest(d.Digest) {
			return nil, invalid("index.json: digest %q (want sha256:<64 hex>)", d.Digest)
		}
	}
	return &idx, nil
}

func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

func blobPath(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

// readBlob reads a blob and checks its digest.
func (a *Archive) readBlob(d Descriptor) ([]byte, error) {
	if !validDigest(d.Digest) {
		return nil, invalid("digest %q (want sha256:<64 hex>)", d.Digest)
	}
	b, err := a.readAll(blobPath(d.Digest), 16<<20)
	if err != nil {
		return nil, err
	}
	if digestOf(b) != d.Digest {
		return nil, invalid("blob %s: digest mismatch (content is %s)", d.Digest, digestOf(b))
	}
	return b, nil
}

func (a *Archive) ociImages() ([]Loaded, error) {
	data, err := a.readAll("index.json", 16<<20)
	if err != nil {
		return nil, err
	}
	idx, err := ParseIndex(data)
	if err != nil {
		return nil, err
	}
	var out []Loaded
	for _, d := range idx.Manifests {
		names := []string{}
		if n := d.Annotations["io.containerd.image.name"]; n != "" {
			names = append(names, n)
		} else if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			names = append(names, n)
		}
		md := d
		if d.MediaType == MediaOCIIndex || d.MediaType == MediaDockerList {
			if md, err = a.pickPlatform(d); err != nil {
				return nil, err
			}
		}
		l, err := a.ociImage(md)
		if err != nil {
			return nil, err
		}
		l.Names = names
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, invalid("index.json lists no image")
	}
	return out, nil
}

// Platform is what images are chosen for (set by the caller: linux and the host's arch).
var Platform = struct{ OS, Architecture string }{"linux", "amd64"}

func (a *Archive) pickPlatform(d Descriptor) (Descriptor, error) {
	b, err := a.readBlob(d)
	if err != nil {
		return Descriptor{}, err
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return Descriptor{}, err
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == Platform.OS && m.Platform.Architecture == Platform.Architecture {
			return m, nil
		}
	}
	return Descriptor{}, errdefs.Errorf(errdefs.ErrNotFound, "no image for platform %s/%s in the archive's index %s", Platform.OS, Platform.Architecture, d.Digest)
}

func (a *Archive) ociImage(d Descriptor) (Loaded, error) {
	mb, err := a.readBlob(d)
	if err != nil {
		return Loaded{}, err
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return Loaded{}, invalid("manifest %s: %v", d.Digest, err)
	}
	config, err := a.readBlob(m.Config)
	if err != nil {
		return Loaded{}, err
	}
	var ls []store.BlobLayer
	for _, l := range m.Layers {
		if !validDigest(l.Digest) {
			return Loaded{}, invalid("manifest %s: layer digest %q", d.Digest, l.Digest)
		}
		if _, ok := a.members[blobPath(l.Digest)]; !ok {
			return Loaded{}, invalid("manifest %s: layer %s is not in the archive", d.Digest, l.Digest)
		}
		ls = append(ls, a.withOpen(store.BlobLayer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}, blobPath(l.Digest)))
	}
	mt := m.MediaType
	if mt == "" {
		mt = d.MediaType
	}
	return Loaded{Manifest: mb, Config: config, MediaType: mt, Layers: ls}, nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Import makes a one-layer image of a rootfs tarball (plain, gzip or zstd) at p: the file
// is the layer blob, as given.
func Import(p string, cfg map[string]any) (Loaded, error) {
	f, err := os.Open(p)
	if err != nil {
		return Loaded{}, err
	}
	defer f.Close()
	st, _ := f.Stat()
	bh := sha256.New()
	tr, err := layer.Decompress(io.TeeReader(f, bh))
	if err != nil {
		return Loaded{}, invalid("import: %v", err)
	}
	dh := sha256.New()
	// Read it as a tar to refuse what is not one.
	t := tar.NewReader(io.TeeReader(tr, dh))
	for {
		if _, err := t.Next(); err == io.EOF {
			break
		} else if err != nil {
			return Loaded{}, invalid("import: not a tar archive: %v", err)
		}
	}
	io.Copy(dh, tr)
	io.Copy(io.Discard, f) // the blob digest covers the whole file
	bl := store.BlobLayer{Digest: "sha256:" + hex.EncodeToString(bh.Sum(nil)), Size: st.Size(), MediaType: "application/vnd.oci.image.layer.v1.tar"}
	head := make([]byte, 4)
	f.ReadAt(head, 0)
	if head[0] == 0x1f && head[1] == 0x8b {
		bl.MediaType += "+gzip"
	} else if bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		bl.MediaType += "+zstd"
	}
	bl.Open = func() (io.ReadCloser, error) { return os.Open(p) }
	cfg["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(dh.Sum(nil))}}
	config, _ := json.Marshal(cfg)
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaOCIManifest,
		"config": map[string]any{"mediaType": MediaOCIConfig, "digest": digestOf(config), "size": len(config)},
		"layers": []map[string]any{{"mediaType": bl.MediaType, "digest": bl.Digest, "size": bl.Size}}})
	return Loaded{Manifest: manifest, Config: config, MediaType: MediaOCIManifest, Layers: []store.BlobLayer{bl}}, nil
}
