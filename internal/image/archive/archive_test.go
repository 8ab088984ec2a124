package archive

import (
	"strings"
	"testing"
)

func TestParseDockerManifest(t *testing.T) {
	if _, err := ParseDockerManifest([]byte(`[{"Config":"a.json","RepoTags":["x:y"],"Layers":["l/layer.tar"]}]`)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`[]`, `{}`, `[{"Config":"/etc/passwd","Layers":[]}]`, `[{"Config":"a.json","Layers":["../../x"]}]`, `[{"Config":"","Layers":[]}]`, `[{"Config":"."}]`, `[{"Config":"a.json","Layers":["./"]}]`, `[{"Config":"././/."}]`, `not json`} {
		if _, err := ParseDockerManifest([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseIndex(t *testing.T) {
	good := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}]}`
	if _, err := ParseIndex([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"schemaVersion":1}`, `{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x"}]}`, `{"schemaVersion":2,"manifests":[{"digest":"md5:00"}]}`} {
		if _, err := ParseIndex([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzParseDockerManifest: no panic, and every path accepted stays inside the archive.
func FuzzParseDockerManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"a.json","RepoTags":["x:y"],"Layers":["l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"../a","Layers":["/x"]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseDockerManifest(data)
		if err != nil {
			return
		}
		for _, e := range es {
			for _, p := range append([]string{e.Config}, e.Layers...) {
				if c := cleanName(p); strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") || c == "" {
					t.Fatalf("accepted path %q", p)
				}
			}
		}
	})
}

// FuzzParseIndex: no panic, and every digest accepted names a blob inside blobs/sha256.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:` + strings.Repeat("0", 64) + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := ParseIndex(data)
		if err != nil {
			return
		}
		for _, d := range idx.Manifests {
			if p := blobPath(d.Digest); cleanName(p) != p || !strings.HasPrefix(p, "blobs/sha256/") || len(p) != len("blobs/sha256/")+64 {
				t.Fatalf("digest %q gives the path %q", d.Digest, p)
			}
		}
	})
}
