package store

import (
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BlobLayer is a compressed (or plain tar) layer blob that can be opened.
type BlobLayer struct {
	Digest    string
	Size      int64
	MediaType string
	Open      func() (io.ReadCloser, error)
}

// NewBlobImage makes a v1.Image of a raw manifest, a raw config and openable layer blobs:
// what the store, archives and imports hand to Ingest, Push and Save.
func NewBlobImage(manifest, config []byte, mediaType string, layers []BlobLayer) (v1.Image, error) {
	m := map[string]BlobLayer{}
	for _, l := range layers {
		m[l.Digest] = l
	}
	return partial.CompressedToImage(&blobImage{manifest: manifest, config: config, mt: types.MediaType(mediaType), layers: m})
}

type blobImage struct {
	manifest, config []byte
	mt               types.MediaType
	layers           map[string]BlobLayer
}

func (b *blobImage) RawConfigFile() ([]byte, error)      { return b.config, nil }
func (b *blobImage) MediaType() (types.MediaType, error) { return b.mt, nil }
func (b *blobImage) RawManifest() ([]byte, error)        { return b.manifest, nil }
func (b *blobImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, ok := b.layers[h.String()]
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the image", h)
	}
	return &blobLayer{l}, nil
}

type blobLayer struct{ l BlobLayer }

func (b *blobLayer) Digest() (v1.Hash, error)            { return v1.NewHash(b.l.Digest) }
func (b *blobLayer) Compressed() (io.ReadCloser, error)  { return b.l.Open() }
func (b *blobLayer) Size() (int64, error)                { return b.l.Size, nil }
func (b *blobLayer) MediaType() (types.MediaType, error) { return types.MediaType(b.l.MediaType), nil }

// V1Image is a stored image as a v1.Image (for push and save): its own manifest, config
// and layer blobs, byte for byte.
func (s *Store) V1Image(im Image) (v1.Image, error) {
	manifest, err := s.ReadBlob(im.ManifestDigest)
	if err != nil {
		return nil, fmt.Errorf("image %s: its manifest is missing: %w", im.ID, err)
	}
	config, err := s.ReadBlob(im.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: its config is missing: %w", im.ID, err)
	}
	var ls []BlobLayer
	for _, l := range im.Layers {
		p := s.BlobPath(l.Digest)
		ls = append(ls, BlobLayer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	return NewBlobImage(manifest, config, im.ManifestMediaType, ls)
}

// Config is the image's parsed config.
func (s *Store) Config(im Image) (*v1.ConfigFile, error) {
	f, err := os.Open(s.BlobPath(im.ID))
	if err != nil {
		return nil, fmt.Errorf("image %s: its config is missing: %w", im.ID, err)
	}
	defer f.Close()
	return v1.ParseConfigFile(f)
}
