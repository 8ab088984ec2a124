package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/errdefs"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// testLayer is a gzip layer with one file.
func testLayer(t *testing.T, file, body string) (blob []byte, diffID string) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw.Bytes())
	w.Close()
	return gz.Bytes(), digest(raw.Bytes())
}

// testImage builds an OCI image of the given layers.
func testImage(t *testing.T, cmd string, layers ...[2]string) (manifest, config []byte, ls []BlobLayer) {
	var diffIDs []string
	var descs []map[string]any
	for _, l := range layers {
		blob, diffID := testLayer(t, l[0], l[1])
		diffIDs = append(diffIDs, diffID)
		d := digest(blob)
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(blob)})
		ls = append(ls, BlobLayer{Digest: d, Size: int64(len(blob)), MediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }})
	}
	config, _ = json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Cmd": []string{cmd}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	manifest, _ = json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": descs})
	return
}

func ingest(t *testing.T, s *Store, name, cmd string, layers ...[2]string) Image {
	m, c, ls := testImage(t, cmd, layers...)
	img, err := NewBlobImage(m, c, "application/vnd.oci.image.manifest.v1+json", ls)
	if err != nil {
		t.Fatal(err)
	}
	im, err := s.Ingest(context.Background(), img, []string{name}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestIngestShareAndGC(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	a := ingest(t, s, "docker.io/library/a:latest", "a", [2]string{"base", "base"}, [2]string{"a", "a"})
	b := ingest(t, s, "docker.io/library/b:latest", "b", [2]string{"base", "base"}, [2]string{"b", "b"})
	if a.Layers[0].DiffID != b.Layers[0].DiffID {
		t.Fatal("the shared base has two diff IDs")
	}
	ents, _ := os.ReadDir(filepath.Join(root, "layers"))
	if len(ents) != 3 {
		t.Fatalf("%d layer directories, want 3 (base stored once)", len(ents))
	}
	if got, err := s.Lookup("a"); err != nil || got.ID != a.ID {
		t.Fatalf("Lookup(a) = %v, %v", got.ID, err)
	}
	if got, err := s.Lookup(a.ID[7:19]); err != nil || got.ID != a.ID {
		t.Fatalf("Lookup(prefix) = %v, %v", got.ID, err)
	}
	if b, err := os.ReadFile(filepath.Join(s.LayerDir(a.Layers[1].DiffID), "a")); err != nil || string(b) != "a" {
		t.Fatalf("layer content: %q %v", b, err)
	}
	// Tag moves a name.
	if err := s.Tag(b.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup("a"); got.ID != b.ID {
		t.Fatal("tag did not move the name a to b")
	}
	if err := s.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.LayerDir(b.Layers[0].DiffID)); err != nil {
		t.Fatal("the base layer shared with b was removed with a")
	}
	if _, err := os.Stat(s.LayerDir(a.Layers[1].DiffID)); !os.IsNotExist(err) {
		t.Fatal("a's own layer survived the GC")
	}
	if _, err := os.Stat(s.BlobPath(a.ManifestDigest)); !os.IsNotExist(err) {
		t.Fatal("a's manifest survived the GC")
	}
	// Reopen: the record is there, a's is not.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if l := s2.List(); len(l) != 1 || l[0].ID != b.ID {
		t.Fatalf("after reopen: %+v", l)
	}
	if _, err := s2.Lookup("nosuch"); !errdefs.IsNotFound(err) {
		t.Fatalf("Lookup(nosuch) = %v", err)
	}
}

func TestIngestDigestMismatch(t *testing.T) {
	s, _ := Open(t.TempDir())
	m, c, ls := testImage(t, "x", [2]string{"f", "good"})
	evil, _ := testLayer(t, "f", "evil")
	ls[0].Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(evil)), nil }
	img, _ := NewBlobImage(m, c, "application/vnd.oci.image.manifest.v1+json", ls)
	_, err := s.Ingest(context.Background(), img, []string{"docker.io/library/x:latest"}, nil, nil)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("digest mismatch")) {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	if len(s.List()) != 0 {
		t.Fatal("a half-ingested image is listed")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.root, "layers")); len(ents) != 0 {
		t.Fatalf("layers left: %v", ents)
	}
}

// TestConcurrentIngest: two ingests of one image unpack each layer once.
func TestConcurrentIngest(t *testing.T) {
	s, _ := Open(t.TempDir())
	m, c, ls := testImage(t, "x", [2]string{"f", "1"}, [2]string{"g", "2"})
	var mu sync.Mutex
	opens := 0
	for i := range ls {
		o := ls[i].Open
		ls[i].Open = func() (io.ReadCloser, error) { mu.Lock(); opens++; mu.Unlock(); return o() }
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, _ := NewBlobImage(m, c, "application/vnd.oci.image.manifest.v1+json", ls)
			if _, err := s.Ingest(context.Background(), img, []string{"docker.io/library/x:latest"}, nil, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if opens != 2 {
		t.Fatalf("layers fetched %d times, want 2 (once each)", opens)
	}
	if len(s.List()) != 1 {
		t.Fatal(s.List())
	}
}

// TestGCKeepsMountedLayers: a layer some overlay has as a lower directory is not collected,
// even when no record names it.
func TestGCKeepsMountedLayers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting an overlay needs root")
	}
	s, _ := Open(t.TempDir())
	im := ingest(t, s, "docker.io/library/a:latest", "a", [2]string{"f", "1"}, [2]string{"g", "2"})
	mnt := t.TempDir()
	lower := s.LayerDir(im.Layers[1].DiffID) + ":" + s.LayerDir(im.Layers[0].DiffID)
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+lower); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	s.Delete(im.ID)
	if _, err := s.GC(nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range im.Layers {
		if _, err := os.Stat(s.LayerDir(l.DiffID)); err != nil {
			t.Fatalf("a mounted layer was collected: %v", err)
		}
	}
	unix.Unmount(mnt, 0)
	s.GC(nil)
	if _, err := os.Stat(s.LayerDir(im.Layers[0].DiffID)); !os.IsNotExist(err) {
		t.Fatal("an unmounted, unnamed layer survived the GC")
	}
}
