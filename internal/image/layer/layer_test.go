package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

type entry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func mkTar(t *testing.T, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestUnpackWhiteoutsAndDigests(t *testing.T) {
	dir := t.TempDir()
	raw := mkTar(t, []entry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/hello", typ: tar.TypeReg, body: "hi\n"},
		{name: "etc/.wh.gone", typ: tar.TypeReg},
		{name: "opq/", typ: tar.TypeDir, mode: 0o755},
		{name: "opq/.wh..wh..opq", typ: tar.TypeReg},
	})
	res, err := Unpack(context.Background(), dir, bytes.NewReader(gz(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.DiffID == res.Digest || len(res.DiffID) != 71 {
		t.Fatalf("digests: %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/hello")); string(b) != "hi\n" {
		t.Fatalf("etc/hello = %q", b)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "etc/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout etc/gone: %v mode %o rdev %d", err, st.Mode, st.Rdev)
	}
	v := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque", v); err != nil || string(v[:n]) != "y" {
		t.Fatalf("opaque xattr: %v %q", err, v[:n])
	}
	// The same tar, uncompressed: same diff ID, and then the digest is the diff ID.
	res2, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(raw), nil)
	if err != nil || res2.DiffID != res.DiffID || res2.Digest != res2.DiffID {
		t.Fatalf("plain tar: %+v %v (gzip: %+v)", res2, err, res)
	}
}

// TestUnpackHostile: nothing a layer says lands outside its directory.
func TestUnpackHostile(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("safe"), 0o644)
	cases := map[string][]entry{
		"dotdot":   {{name: "../../../../" + victim[1:], typ: tar.TypeReg, body: "pwned"}},
		"absolute": {{name: victim, typ: tar.TypeReg, body: "pwned"}},
		"symlink then file through it": {
			{name: "esc", typ: tar.TypeSymlink, link: outside},
			{name: "esc/victim", typ: tar.TypeReg, body: "pwned"},
		},
		"relative symlink up then file": {
			{name: "up", typ: tar.TypeSymlink, link: "../../../../../../../../" + outside[1:]},
			{name: "up/victim", typ: tar.TypeReg, body: "pwned"},
		},
		"hard link to outside": {{name: "hl", typ: tar.TypeLink, link: victim}},
		"hard link up":         {{name: "hl", typ: tar.TypeLink, link: "../../../../../../.." + victim}},
	}
	for name, es := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layer")
			os.Mkdir(dir, 0o755)
			Unpack(context.Background(), dir, bytes.NewReader(mkTar(t, es)), nil) // an error is fine
			if b, _ := os.ReadFile(victim); string(b) != "safe" {
				t.Fatalf("victim outside the layer now says %q", b)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Fatalf("files appeared outside the layer: %v", ents)
			}
			// A hard link that was made must point at a file inside, not at the victim.
			if fi, err := os.Lstat(filepath.Join(dir, "hl")); err == nil {
				var st, vst unix.Stat_t
				unix.Stat(victim, &vst)
				unix.Lstat(filepath.Join(dir, "hl"), &st)
				if st.Ino == vst.Ino {
					t.Fatalf("hl is a hard link to the victim (%v)", fi.Mode())
				}
			}
		})
	}
	t.Run("device node", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Unpack(context.Background(), dir, bytes.NewReader(mkTar(t, []entry{{name: "dev/null", typ: tar.TypeChar}})), nil)
		if os.Getuid() != 0 {
			if err == nil {
				if _, err := os.Lstat(filepath.Join(dir, "dev/null")); err == nil {
					t.Fatal("a non-root unpack made a device node")
				}
			}
			return
		}
		// As root the node is made, inside the layer only.
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "dev/null")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDecompressZstdPlain(t *testing.T) {
	r, err := Decompress(bytes.NewReader([]byte("plain")))
	if err != nil {
		t.Fatal(err)
	}
	b := new(bytes.Buffer)
	b.ReadFrom(r)
	if b.String() != "plain" {
		t.Fatal(b.String())
	}
}

// TestUnpackStreamEnds: the digests cover the whole stream (the tar's end blocks, the gzip
// trailer), extra gets all of it, and a stream cut short or corrupted is an error, not a
// partial success.
func TestUnpackStreamEnds(t *testing.T) {
	raw := mkTar(t, []entry{{name: "big", typ: tar.TypeReg, body: string(bytes.Repeat([]byte("0123456789abcdef"), 1<<16))}})
	z := gz(raw)
	res, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(z), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(z)
	wantDiff := sha256.Sum256(raw)
	if res.Digest != "sha256:"+hex.EncodeToString(want[:]) || res.DiffID != "sha256:"+hex.EncodeToString(wantDiff[:]) {
		t.Fatalf("digests %+v; want blob %x, diff %x", res, want, wantDiff)
	}
	var extra bytes.Buffer
	if _, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(z), &extra); err != nil || !bytes.Equal(extra.Bytes(), z) {
		t.Fatalf("extra got %d bytes of %d (%v)", extra.Len(), len(z), err)
	}
	if _, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(z[:len(z)/2]), nil); err == nil {
		t.Fatal("a gzip stream cut in half unpacked without an error")
	}
	bad := append([]byte{}, z...)
	bad[len(bad)-6] ^= 0xff // the CRC32 in the trailer
	if _, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(bad), nil); err == nil {
		t.Fatal("a gzip stream with a wrong checksum unpacked without an error")
	}
}
