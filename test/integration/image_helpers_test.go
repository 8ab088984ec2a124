package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Registry is a private docker-registry (Debian's distribution server) on 127.0.0.1.
type Registry struct {
	Host string // 127.0.0.1:PORT
	Dir  string
	cmd  *exec.Cmd
	log  *syncBuffer // its output, with the access log
}

// Log is the registry's output so far.
func (r *Registry) Log() string { return r.log.String() }

// StartRegistry starts a registry with its storage in a temp dir; with users (name ->
// password) it requires htpasswd (bcrypt) logins. It is stopped at the end of the test.
func StartRegistry(t testing.TB, users map[string]string) *Registry {
	t.Helper()
	return startRegistry(t, users, "", "")
}

func startRegistry(t testing.TB, users map[string]string, cert, key string) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		skipOrFail(t, "docker-registry (Debian package docker-registry) is not installed")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if len(users) > 0 {
		pw := filepath.Join(dir, "htpasswd")
		for u, p := range users {
			args := []string{"-bB", pw, u, p}
			if _, err := os.Stat(pw); err != nil {
				args = []string{"-cbB", pw, u, p}
			}
			if out, err := exec.Command("htpasswd", args...).CombinedOutput(); err != nil {
				skipOrFail(t, fmt.Sprintf("htpasswd (apache2-utils): %v %s", err, out))
			}
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", pw)
	}
	scheme := "http"
	if cert != "" {
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
		scheme = "https"
	}
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600)
	r := &Registry{Host: host, Dir: dir, cmd: exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))}
	r.log = &syncBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	})
	WaitFor(t, "the registry at "+host, 20*time.Second, func() bool {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := c.Get(scheme + "://" + host + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return r
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// Skopeo runs skopeo, failing the test on error.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		skipOrFail(t, "skopeo is not installed")
	}
	out, err := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// LayerEntry is one file of a test layer.
type LayerEntry struct {
	Name, Body, Link string
	Type             byte
	Mode             int64
}

// TarDir is a tar of a directory tree (the busybox rootfs), as a layer.
func TarDir(t testing.TB, root string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return b.Bytes()
}

// TarEntries is a tar of the given entries.
func TarEntries(t testing.TB, es []LayerEntry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.Name, Linkname: e.Link, Typeflag: typ, Mode: e.Mode, ModTime: time.Unix(1700000000, 0)}
		if h.Mode == 0 {
			h.Mode = 0o644
			if typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.Body))
	}
	tw.Close()
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ImageSpec describes a test image: layers (uncompressed tars, base first) and config.
type ImageSpec struct {
	Layers  [][]byte
	Config  map[string]any // the "config" object: Env, Cmd, Entrypoint, WorkingDir, User, StopSignal...
	Created string         // RFC 3339; a fixed date when empty
}

// WriteOCILayout writes the image as an OCI layout at dir with the tag ref (gzip layers).
func WriteOCILayout(t testing.TB, dir, tag string, spec ImageSpec) {
	t.Helper()
	md, size := writeImageBlobs(t, dir, spec, "amd64")
	writeIndex(t, dir, tag, "application/vnd.oci.image.manifest.v1+json", md, size)
}

// WriteOCIIndexLayout writes one image per architecture and an image index of them,
// tagged tag.
func WriteOCIIndexLayout(t testing.TB, dir, tag string, specs map[string]ImageSpec) {
	t.Helper()
	var ms []map[string]any
	for arch, spec := range specs {
		md, size := writeImageBlobs(t, dir, spec, arch)
		ms = append(ms, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": size,
			"platform": map[string]string{"os": "linux", "architecture": arch}})
	}
	ib, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	d := putBlob(dir, ib)
	writeIndex(t, dir, tag, "application/vnd.oci.image.index.v1+json", d, len(ib))
}

func putBlob(dir string, b []byte) string {
	d := sha(b)
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")), b, 0o644)
	return d
}

func writeImageBlobs(t testing.TB, dir string, spec ImageSpec, arch string) (string, int) {
	var diffIDs []string
	var layers []map[string]any
	for _, l := range spec.Layers {
		diffIDs = append(diffIDs, sha(l))
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write(l)
		w.Close()
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": putBlob(dir, gz.Bytes()), "size": gz.Len()})
	}
	created := spec.Created
	if created == "" {
		created = "2024-01-02T03:04:05Z"
	}
	cfg := map[string]any{"architecture": arch, "os": "linux", "created": created,
		"config": spec.Config, "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}}
	cb, _ := json.Marshal(cfg)
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": putBlob(dir, cb), "size": len(cb)},
		"layers": layers}
	mb, _ := json.Marshal(m)
	return putBlob(dir, mb), len(mb)
}

func writeIndex(t testing.TB, dir, tag, mediaType, digest string, size int) {
	idx := map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{"mediaType": mediaType,
		"digest": digest, "size": size, "annotations": map[string]string{"org.opencontainers.image.ref.name": tag}}}}
	ib, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// PushTestImage builds spec into the registry as repo:tag (through skopeo, in docker
// schema 2 unless oci) and returns the reference.
func PushTestImage(t testing.TB, reg *Registry, repo, tag string, spec ImageSpec, oci bool, creds ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	WriteOCILayout(t, dir, tag, spec)
	ref := reg.Host + "/" + repo + ":" + tag
	args := []string{"copy", "--dest-tls-verify=false"}
	if !oci {
		args = append(args, "--format", "v2s2")
	}
	if len(creds) == 2 {
		args = append(args, "--dest-creds", creds[0]+":"+creds[1])
	}
	Skopeo(t, append(args, "oci:"+dir+":"+tag, "docker://"+ref)...)
	return ref
}

// BusyboxSpec is a three-layer image from the busybox rootfs: the rootfs; a layer that
// adds files, deletes one (whiteout) and replaces a directory (opaque); a config layer.
func BusyboxSpec(t testing.TB) ImageSpec {
	base := TarDir(t, busyboxRoot)
	add := TarEntries(t, []LayerEntry{
		{Name: "data/", Type: tar.TypeDir},
		{Name: "data/old", Body: "old\n"},
		{Name: "data/keep", Body: "keep\n"},
		{Name: "opq/", Type: tar.TypeDir},
		{Name: "opq/a", Body: "a\n"},
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/hello.sh", Body: "#!/bin/sh\necho hello from the image \"$@\"\n", Mode: 0o755},
	})
	del := TarEntries(t, []LayerEntry{
		{Name: "data/.wh.old"},
		{Name: "opq/", Type: tar.TypeDir},
		{Name: "opq/.wh..wh..opq"},
		{Name: "opq/b", Body: "b\n"},
		{Name: "etc/motd", Body: "from layer 3\n"},
	})
	return ImageSpec{Layers: [][]byte{base, add, del}, Config: map[string]any{
		"Env":          []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IMG_VAR=image", "SHARED=image"},
		"Entrypoint":   []string{"/app/hello.sh"},
		"Cmd":          []string{"default-arg"},
		"WorkingDir":   "/data",
		"User":         "1:1",
		"StopSignal":   "SIGUSR1",
		"Labels":       map[string]string{"org.test.kind": "busybox"},
		"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}},
	}}
}
