// Package store keeps images under the graph directory: a content-addressed blob store
// (manifests, configs, compressed layers), unpacked layers stored once by diff ID and shared
// by every image that has them, and one record per image with its names.
//
// Layout under root (graph/images):
//
//	blobs/sha256/<hex>        manifests, configs, compressed layers (verified on write)
//	layers/<diffid hex>/diff  an unpacked layer in overlay's format
//	layers/<diffid hex>/layer.json
//	records/<image id hex>.json
//	tmp/                      work in progress; emptied at open
//
// Commit points: a blob or a layer exists once it is renamed from tmp/ into place (after
// fsync / syncfs); an image exists once its record is written (atomically). A crash before a
// record leaves only blobs and layers no record names, which Open's caller collects (GC).
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/atomicfile"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/fault"
	"github.com/isulad-go/isulad/internal/image/layer"
	"github.com/isulad-go/isulad/internal/image/reference"
)

// Fault points (see internal/fault).
const (
	FaultIngestAfterLayer = "image-ingest-after-layer" // a layer committed, the image record not written
	FaultRemoveAfterUntag = "image-remove-after-untag" // record deleted, space not reclaimed
)

// LayerInfo is one layer of an image, in the manifest's order (base first).
type LayerInfo struct {
	DiffID    string `json:"DiffID"`
	Digest    string `json:"Digest"`
	MediaType string `json:"MediaType"`
	Size      int64  `json:"Size"` // compressed
}

// Image is an image record.
type Image struct {
	ID                string      `json:"ID"` // sha256:<config digest>
	Names             []string    `json:"Names"`
	Digests           []string    `json:"Digests"`
	ManifestDigest    string      `json:"ManifestDigest"`
	ManifestMediaType string      `json:"ManifestMediaType"`
	Layers            []LayerInfo `json:"Layers"`
	Size              int64       `json:"Size"` // unpacked
	Created           time.Time   `json:"Created"`
	Loaded            time.Time   `json:"Loaded"`
}

// Progress reports the work on one layer.
type Progress struct {
	Layer          string // short digest
	Status         string
	Current, Total int64
}

// Store is the image store.
type Store struct {
	root   string
	layerL keyedMutex

	mu      sync.Mutex
	records map[string]*Image // by ID
	pins    map[string]int    // blobs and layers an ingest in progress needs
}

// Open opens (creating) the store at root and removes what an interrupted operation left
// in tmp/. Layers and blobs that no record names stay until GC.
func Open(root string) (*Store, error) {
	s := &Store{root: root, records: map[string]*Image{}, pins: map[string]int{}}
	os.RemoveAll(s.path("tmp"))
	for _, d := range []string{"blobs/sha256", "layers", "records", "tmp"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return nil, err
		}
	}
	ents, err := os.ReadDir(s.path("records"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			os.Remove(s.path("records", e.Name())) // an atomic write's temporary file
			continue
		}
		data, err := os.ReadFile(s.path("records", e.Name()))
		if err != nil {
			return nil, err
		}
		var im Image
		if err := json.Unmarshal(data, &im); err != nil || im.ID == "" {
			return nil, fmt.Errorf("image record %s is damaged: %v", e.Name(), err)
		}
		s.records[im.ID] = &im
	}
	return s, nil
}

func (s *Store) path(p ...string) string { return filepath.Join(append([]string{s.root}, p...)...) }

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	return ok && len(h) == 64 && reference.IsID(h)
}

// BlobPath is where a blob is stored.
func (s *Store) BlobPath(digest string) string { return s.path("blobs/sha256", hexOf(digest)) }

// LayerDir is the unpacked layer of a diff ID (its diff directory).
func (s *Store) LayerDir(diffID string) string { return s.path("layers", hexOf(diffID), "diff") }

// ReadBlob reads a blob.
func (s *Store) ReadBlob(digest string) ([]byte, error) {
	if !validDigest(digest) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid digest %q", digest)
	}
	return os.ReadFile(s.BlobPath(digest))
}

func (s *Store) hasBlob(digest string) bool {
	_, err := os.Stat(s.BlobPath(digest))
	return err == nil
}

func (s *Store) hasLayer(diffID string) bool {
	_, err := os.Stat(s.path("layers", hexOf(diffID), "layer.json"))
	return err == nil
}

// WriteBlob stores data under its digest (want, if given, must match).
func (s *Store) WriteBlob(data []byte, want string) (string, error) {
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if want != "" && want != d {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "digest mismatch: content is %s, want %s", d, want)
	}
	if s.hasBlob(d) {
		return d, nil
	}
	return d, atomicfile.Write(s.BlobPath(d), data, 0o600)
}

// List returns copies of every record, newest first.
func (s *Store) List() []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Image, 0, len(s.records))
	for _, im := range s.records {
		out = append(out, im.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Loaded.Equal(out[j].Loaded) {
			return out[i].Loaded.After(out[j].Loaded)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Lookup finds an image by full or prefix ID (with or without sha256:), by name (busybox,
// busybox:1, docker.io/library/busybox:latest) or by repo@digest.
func (s *Store) Lookup(key string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, err := s.lookupLocked(key)
	if err != nil {
		return Image{}, err
	}
	return im.clone(), nil
}

// clone is a copy of a record that shares nothing with it: the store edits its records'
// lists in place (a name taken by another image), under its lock, while callers read theirs.
func (im *Image) clone() Image {
	c := *im
	c.Names, c.Digests, c.Layers = slices.Clone(im.Names), slices.Clone(im.Digests), slices.Clone(im.Layers)
	return c
}

func (s *Store) lookupLocked(key string) (*Image, error) {
	if r, err := reference.Parse(key); err == nil {
		want := r.TagString()
		if r.Digest != "" {
			want = r.DigestString()
		}
		for _, im := range s.records {
			if slices.Contains(im.Names, want) || slices.Contains(im.Digests, want) {
				return im, nil
			}
		}
		// repo@digest also matches an image whose manifest digest it is, pulled by tag.
		if r.Digest != "" {
			for _, im := range s.records {
				if im.ManifestDigest == r.Digest && slices.ContainsFunc(im.Names, func(n string) bool { return strings.HasPrefix(n, r.Repo()+":") }) {
					return im, nil
				}
			}
		}
	}
	if reference.IsID(key) {
		h := strings.TrimPrefix(key, "sha256:")
		var found *Image
		for id, im := range s.records {
			if strings.HasPrefix(hexOf(id), h) {
				if found != nil {
					return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "image ID prefix %q is ambiguous (want more digits)", key)
				}
				found = im
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, errdefs.Errorf(errdefs.ErrNotFound, "no such image: %s", key)
}

func (s *Store) saveLocked(im *Image) error {
	data, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(s.path("records", hexOf(im.ID)+".json"), data, 0o600)
}

// Tag gives the image a name (repo:tag), taking it from any image that had it.
func (s *Store) Tag(key, name string) error {
	r, err := reference.Parse(name)
	if err != nil {
		return err
	}
	if r.Digest != "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "tag %q: a target name cannot have a digest (want NAME[:TAG])", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im, err := s.lookupLocked(key)
	if err != nil {
		return err
	}
	return s.nameLocked(im, []string{r.TagString()}, nil)
}

// nameLocked adds names and digests to im and takes the names from other images, saving
// what changed; im's record is written last (it may be new: that write is its commit).
func (s *Store) nameLocked(im *Image, names, digests []string) error {
	for _, n := range names {
		for _, other := range s.records {
			if other.ID != im.ID && slices.Contains(other.Names, n) {
				other.Names = slices.DeleteFunc(other.Names, func(x string) bool { return x == n })
				if err := s.saveLocked(other); err != nil {
					return err
				}
			}
		}
		if !slices.Contains(im.Names, n) {
			im.Names = append(im.Names, n)
		}
	}
	for _, d := range digests {
		if !slices.Contains(im.Digests, d) {
			im.Digests = append(im.Digests, d)
		}
	}
	if err := s.saveLocked(im); err != nil {
		return err
	}
	s.records[im.ID] = im
	return nil
}

// Untag removes one name; the image stays (maybe without names).
func (s *Store) Untag(name string) (Image, error) {
	r, err := reference.Parse(name)
	if err != nil {
		return Image{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := r.TagString()
	for _, im := range s.records {
		if i := slices.Index(im.Names, n); i >= 0 {
			im.Names = slices.Delete(im.Names, i, i+1)
			return im.clone(), s.saveLocked(im)
		}
	}
	return Image{}, errdefs.Errorf(errdefs.ErrNotFound, "no such image: %s", name)
}

// Delete removes an image's record. Its layers and blobs go with the next GC.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[id]; !ok {
		return errdefs.Errorf(errdefs.ErrNotFound, "no such image: %s", id)
	}
	if err := os.Remove(s.path("records", hexOf(id)+".json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	delete(s.records, id)
	return nil
}

// GC removes layers and blobs that no record, no ingest in progress and no container
// (inUse: diff IDs of layers containers are mounted on) needs. It returns the bytes freed.
func (s *Store) GC(inUse []string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	for k := range s.pins {
		live[hexOf(k)] = true
	}
	for _, d := range inUse {
		live[hexOf(d)] = true
	}
	// Whatever an overlay on this host has as a lower layer stays, whoever mounted it.
	for _, l := range mountedLayers(s.path("layers")) {
		live[l] = true
	}
	for _, im := range s.records {
		live[hexOf(im.ID)] = true
		live[hexOf(im.ManifestDigest)] = true
		for _, l := range im.Layers {
			live[hexOf(l.DiffID)] = true
			live[hexOf(l.Digest)] = true
		}
	}
	var freed int64
	var errs []error
	for _, dir := range []string{"layers", "blobs/sha256"} {
		ents, err := os.ReadDir(s.path(dir))
		if err != nil {
			return freed, err
		}
		for _, e := range ents {
			if live[e.Name()] {
				continue
			}
			p := s.path(dir, e.Name())
			n := DiskUsage(p)
			// Out of the way first (one rename), then deleted: a crash between leaves it in tmp/.
			trash, err := os.MkdirTemp(s.path("tmp"), "gc-")
			if err == nil {
				err = os.Rename(p, filepath.Join(trash, "x"))
			}
			if err == nil {
				err = os.RemoveAll(trash)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			freed += n
		}
	}
	return freed, errors.Join(errs...)
}

// DiskUsage is the bytes of the regular files under p (each inode once).
func DiskUsage(p string) int64 {
	var n int64
	seen := map[uint64]bool{}
	filepath.Walk(p, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// Usage is the space the store uses: unpacked layers and blobs.
func (s *Store) Usage() (layers, blobs int64) {
	return DiskUsage(s.path("layers")), DiskUsage(s.path("blobs"))
}

// LayerSize is the unpacked size recorded for a layer.
func (s *Store) LayerSize(diffID string) int64 {
	data, err := os.ReadFile(s.path("layers", hexOf(diffID), "layer.json"))
	if err != nil {
		return 0
	}
	var m struct{ Size int64 }
	json.Unmarshal(data, &m)
	return m.Size
}

func (s *Store) pin(keys []string, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.pins[k] += delta
		if s.pins[k] <= 0 {
			delete(s.pins, k)
		}
	}
}

// Ingest stores img (from a registry, an archive, an import): its manifest and config,
// and each layer unpacked unless the store has it. names (repo:tag) and digests
// (repo@digest) are given to the image once every part is on disk; until then nothing is
// listed. Two ingests of one layer share the work: the second waits for the first.
func (s *Store) Ingest(ctx context.Context, img v1.Image, names, digests []string, progress func(Progress)) (Image, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return Image{}, fmt.Errorf("reading the manifest: %w", err)
	}
	mt, _ := img.MediaType()
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("reading the image config: %w", err)
	}
	configName, err := img.ConfigName()
	if err != nil {
		return Image{}, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return Image{}, fmt.Errorf("image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return Image{}, fmt.Errorf("reading the layer list: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return Image{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "the manifest has %d layers but the config %d diff IDs", len(layers), len(cfg.RootFS.DiffIDs))
	}
	infos := make([]LayerInfo, len(layers))
	var pins []string
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return Image{}, err
		}
		lmt, _ := l.MediaType()
		size, _ := l.Size()
		infos[i] = LayerInfo{DiffID: cfg.RootFS.DiffIDs[i].String(), Digest: d.String(), MediaType: string(lmt), Size: size}
		if !validDigest(infos[i].DiffID) || !validDigest(infos[i].Digest) {
			return Image{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "layer %d: unsupported digest %s / %s (want sha256)", i, infos[i].Digest, infos[i].DiffID)
		}
		pins = append(pins, infos[i].DiffID, infos[i].Digest)
	}
	sum := sha256.Sum256(rawManifest)
	manifestDigest := "sha256:" + hex.EncodeToString(sum[:])
	pins = append(pins, configName.String(), manifestDigest)
	s.pin(pins, 1)
	defer s.pin(pins, -1)

	if _, err := s.WriteBlob(rawConfig, configName.String()); err != nil {
		return Image{}, fmt.Errorf("image config: %w", err)
	}
	if _, err := s.WriteBlob(rawManifest, ""); err != nil {
		return Image{}, err
	}
	// Layers in parallel (a few at a time): downloads overlap, each unpacks as it arrives.
	errc := make(chan error, len(layers))
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := s.ensureLayer(ctx, l, infos[i], progress); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return Image{}, err
	}
	if err := fault.Point(FaultIngestAfterLayer); err != nil {
		return Image{}, err
	}
	var total int64
	for _, li := range infos {
		total += s.LayerSize(li.DiffID)
	}
	im := &Image{
		ID: configName.String(), ManifestDigest: manifestDigest, ManifestMediaType: string(mt),
		Layers: infos, Size: total, Created: cfg.Created.Time.UTC(), Loaded: time.Now().UTC(),
		Names: []string{}, Digests: []string{},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.records[im.ID]; ok {
		im.Names, im.Digests, im.Loaded = old.Names, old.Digests, old.Loaded
		if old.ManifestDigest != "" {
			im.ManifestDigest, im.ManifestMediaType, im.Layers = old.ManifestDigest, old.ManifestMediaType, old.Layers
		}
	}
	if err := s.nameLocked(im, names, digests); err != nil {
		return Image{}, err
	}
	return im.clone(), nil
}

// ensureLayer makes the layer present: unpacked (by diff ID) and its blob stored.
func (s *Store) ensureLayer(ctx context.Context, l v1.Layer, li LayerInfo, progress func(Progress)) error {
	short := hexOf(li.Digest)[:12]
	s.layerL.Lock(li.DiffID)
	defer s.layerL.Unlock(li.DiffID)
	haveLayer, haveBlob := s.hasLayer(li.DiffID), s.hasBlob(li.Digest)
	if haveLayer && haveBlob {
		progress(Progress{Layer: short, Status: "Already exists"})
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", short, err)
	}
	defer rc.Close()
	pr := &progressReader{r: rc, total: li.Size, f: func(cur, total int64) {
		progress(Progress{Layer: short, Status: "Downloading", Current: cur, Total: total})
	}}
	blobTmp, err := os.CreateTemp(s.path("tmp"), "blob-")
	if err != nil {
		return err
	}
	defer os.Remove(blobTmp.Name())
	defer blobTmp.Close()
	work, err := os.MkdirTemp(s.path("tmp"), "layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var res layer.Result
	if haveLayer {
		// Only the blob is missing (the layer came with another compression).
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(blobTmp, h), pr); err != nil {
			return layerErr(short, err)
		}
		res.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		res.DiffID = li.DiffID
	} else {
		if err := os.Mkdir(filepath.Join(work, "diff"), 0o755); err != nil {
			return err
		}
		if res, err = layer.Unpack(ctx, filepath.Join(work, "diff"), pr, blobTmp); err != nil {
			return layerErr(short, err)
		}
	}
	if res.Digest != li.Digest {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "layer %s: digest mismatch: the blob is %s, the manifest says %s", short, res.Digest, li.Digest)
	}
	if res.DiffID != li.DiffID {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "layer %s: digest mismatch: its content is %s, the config says %s", short, res.DiffID, li.DiffID)
	}
	if err := blobTmp.Sync(); err != nil {
		return layerErr(short, err)
	}
	if !haveLayer {
		if err := syncfs(work); err != nil {
			return layerErr(short, err)
		}
		meta, _ := json.Marshal(map[string]any{"DiffID": res.DiffID, "Size": res.Size})
		if err := atomicfile.Write(filepath.Join(work, "layer.json"), meta, 0o600); err != nil {
			return err
		}
		if err := os.Rename(work, s.path("layers", hexOf(li.DiffID))); err != nil {
			return err
		}
	}
	if err := os.Rename(blobTmp.Name(), s.BlobPath(li.Digest)); err != nil {
		return err
	}
	progress(Progress{Layer: short, Status: "Pull complete", Current: li.Size, Total: li.Size})
	return nil
}

func layerErr(short string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return errdefs.Errorf(errdefs.ErrResourceExhausted, "layer %s: no space left on the device of the graph directory", short)
	}
	return fmt.Errorf("layer %s: %w", short, err)
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

type progressReader struct {
	r          io.Reader
	cur, total int64
	last       time.Time
	f          func(cur, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.cur += int64(n)
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.f(p.cur, p.total)
	}
	return n, err
}

// TempFile is a new temporary file in the store's tmp directory (emptied at every open),
// for archives being loaded or imported.
func (s *Store) TempFile() (*os.File, error) {
	return os.CreateTemp(s.path("tmp"), "spool-")
}

// AddDigest records that the image is at repo@digest (after a push).
func (s *Store) AddDigest(id, repoDigest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.records[id]
	if !ok || slices.Contains(im.Digests, repoDigest) {
		return nil
	}
	im.Digests = append(im.Digests, repoDigest)
	return s.saveLocked(im)
}

// mountedLayers lists the layers (diff ID hex) under layersDir that some overlay mount of
// this host uses as a lower directory.
func mountedLayers(layersDir string) []string {
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("overlay"))
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range ms {
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			k, v, _ := strings.Cut(opt, "=")
			if k != "lowerdir" && k != "lowerdir+" {
				continue
			}
			for _, dir := range strings.Split(v, ":") {
				if rel, ok := strings.CutPrefix(dir, layersDir+"/"); ok {
					out = append(out, strings.SplitN(rel, "/", 2)[0])
				}
			}
		}
	}
	return out
}
