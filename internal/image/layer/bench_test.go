package layer

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"math/rand"
	"os"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// layerLike is 32 MB of half-compressible data (text-like and random runs), gzip'd.
func layerLike(b *testing.B) []byte {
	if p := os.Getenv("BENCH_GZIP_LAYER"); p != "" { // a real layer.tar.gz
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	r := rand.New(rand.NewSource(1))
	raw := make([]byte, 32<<20)
	for i := 0; i < len(raw); i += 4096 {
		if (i/4096)%2 == 0 {
			r.Read(raw[i : i+4096])
		} else {
			copy(raw[i:i+4096], bytes.Repeat([]byte("usr/lib/x86_64-linux-gnu/libc.so.6 "), 120))
		}
	}
	var gz bytes.Buffer
	w := stdgzip.NewWriter(&gz)
	w.Write(raw)
	w.Close()
	return gz.Bytes()
}

// BenchmarkGunzip compares the standard library's gzip reader with klauspost's (the one
// Decompress uses) on a layer-like stream.
func BenchmarkGunzip(b *testing.B) {
	data := layerLike(b)
	for _, tc := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"stdlib", func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				zr, err := tc.open(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
