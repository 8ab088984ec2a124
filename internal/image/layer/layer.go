// Package layer unpacks one image layer (a tar diff, compressed or not) into a directory
// in overlay's format, safely, and says what it unpacked: the digests of the compressed and
// uncompressed streams and the size.
package layer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Result describes an unpacked layer.
type Result struct {
	Digest string // sha256 of the stream as given (the blob digest)
	DiffID string // sha256 of the uncompressed tar
	Size   int64  // bytes of file content unpacked
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress returns the uncompressed stream of r, whatever of plain tar, gzip or zstd it is.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// Unpack applies the layer stream r into dir (which must exist and be empty), in a single
// pass: the stream is hashed as it is read, decompressed, hashed again and applied.
// Whiteouts become overlay whiteouts (character devices 0/0, the opaque xattr). containerd's
// applier keeps every name inside dir (.., absolute names, symlinks and hard links are
// resolved against dir) and makes device nodes only as root. Extra writes the
// compressed bytes to a second place (the blob store's temporary file) as they pass.
//
// Reading, hashing and decompressing run in a goroutine of their own, a few chunks ahead of
// the applier (readAhead): they overlap with the file writes instead of adding to them. On an
// error that goroutine may still be reading r until the caller closes it; it writes nothing
// but extra, and stops at its next chunk.
func Unpack(ctx context.Context, dir string, r io.Reader, extra io.Writer) (Result, error) {
	blobHash := sha256.New()
	var w io.Writer = blobHash
	if extra != nil {
		w = io.MultiWriter(blobHash, extra)
	}
	src := io.TeeReader(r, w)
	tarStream, err := Decompress(src)
	if err != nil {
		return Result{}, err
	}
	ahead := readAhead(func(out io.Writer) error {
		defer tarStream.Close()
		if _, err := io.Copy(out, tarStream); err != nil {
			return err
		}
		// Whatever follows the compressed stream (padding) is part of the blob digest.
		if _, err := io.Copy(io.Discard, src); err != nil {
			return fmt.Errorf("reading the end of the layer: %w", err)
		}
		return nil
	})
	defer ahead.Close()
	diffHash := sha256.New()
	tr := io.TeeReader(ahead, diffHash)
	size, err := archive.Apply(ctx, dir, tr, archive.WithConvertWhiteout(archive.OverlayConvertWhiteout))
	if err != nil {
		return Result{}, fmt.Errorf("unpacking: %w", err)
	}
	// The tar's end-of-archive blocks and any padding are part of both digests; the end of
	// tr is the end of the goroutine, so both hashes are complete after it.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return Result{}, fmt.Errorf("reading the end of the layer: %w", err)
	}
	return Result{Digest: digestOf(blobHash), DiffID: digestOf(diffHash), Size: size}, nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
