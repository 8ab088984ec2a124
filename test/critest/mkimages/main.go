// Command mkimages builds the stand-ins for the images critest v1.37.0 pulls, offline, as an OCI
// image layout, and pushes that layout to a registry. scripts/critest-images.sh drives it.
//
//	mkimages build -busybox BIN [-lib FILE]... -standins DIR -out LAYOUT
//	mkimages push -layout LAYOUT -registry HOST:PORT
//	mkimages list -layout LAYOUT
//
// build: every image shares one base layer, a busybox root filesystem (BIN, hard links for its
// applets in /bin, the -lib files it needs at their paths, passwd and group as the busybox
// images have them); the images add their own layers and config (see images below). The
// programs in DIR (webserver, nnp, pause, procps) are the static stand-ins of
// test/critest/standin. Every file time is fixed, so the same inputs give the same digests.
// Each image is recorded in the layout under its repository path and tag without a registry
// host ("e2e-test-images/busybox:1.29-2"): the daemon's per-host mirrors keep the path, so one
// registry stands in for registry.k8s.io, k8s.gcr.io and gcr.io at once.
//
// push: each image of the layout to HOST/<path>:<tag> over plain HTTP (a loopback registry).
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every file's and image's time: the inputs alone decide the digests.
var epoch = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)

const refAnnotation = "org.opencontainers.image.ref.name"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCmd(os.Args[2:])
	case "push":
		err = pushCmd(os.Args[2:])
	case "list":
		err = listCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkimages %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mkimages build -busybox BIN [-lib FILE]... -standins DIR -out LAYOUT\n"+
		"       mkimages push -layout LAYOUT -registry HOST:PORT\n       mkimages list -layout LAYOUT")
	os.Exit(2)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	busybox := fs.String("busybox", "", "the busybox binary of the base layer")
	standins := fs.String("standins", "", "directory of the stand-in programs (webserver, nnp, pause, procps)")
	out := fs.String("out", "", "OCI layout to write (must not exist)")
	var libs listFlag
	fs.Var(&libs, "lib", "a shared library busybox needs, put at the same path (repeatable)")
	fs.Parse(args)
	if *busybox == "" || *standins == "" || *out == "" {
		usage()
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists; want a new directory", *out)
	}
	b := &builder{standins: *standins}
	base, err := b.baseLayer(*busybox, libs)
	if err != nil {
		return err
	}
	imgs, err := b.images(base)
	if err != nil {
		return err
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		return err
	}
	for _, im := range imgs {
		ann := layout.WithAnnotations(map[string]string{refAnnotation: im.ref})
		if im.index != nil {
			err = p.AppendIndex(im.index, ann)
		} else {
			err = p.AppendImage(im.image, ann)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", im.ref, err)
		}
	}
	return nil
}

type builder struct {
	standins string
}

// entry is one file of a layer.
type entry struct {
	name     string // without a leading /
	typ      byte
	mode     int64
	uid, gid int
	body     []byte
	link     string
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func file(name string, mode int64, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, body: []byte(body)}
}

// layer is a gzipped tar of the entries, in their order, with fixed times.
func layer(entries []entry, mt types.MediaType) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: epoch, Linkname: e.link, Format: tar.FormatPAX}
		if e.typ == tar.TypeDir && !strings.HasSuffix(h.Name, "/") {
			h.Name += "/"
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt))
}

// The passwd and group of the busybox images (the accounts critest's specs name: root,
// nobody, www-data).
const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`

// baseLayer is the busybox root filesystem every stand-in starts from.
func (b *builder) baseLayer(busybox string, libs []string) ([]entry, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %v", busybox, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	es := []entry{
		dir("bin", 0o755), dir("dev", 0o755), dir("etc", 0o755), dir("home", 0o755),
		dir("proc", 0o555), dir("root", 0o700), dir("sys", 0o555), dir("tmp", 0o1777),
		dir("usr", 0o755), dir("usr/bin", 0o755), dir("usr/sbin", 0o755), dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755), dir("var", 0o755), dir("var/run", 0o755), dir("var/spool", 0o755),
		dir("var/spool/mail", 0o755), dir("var/www", 0o755),
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, body: bin},
	}
	// Hard links, not symbolic ones: a masked path (/bin/ls) must be a name of its own. A
	// link's header carries its target's mode, as tar writes it (appliers chmod to it).
	for _, a := range applets {
		if a != "busybox" && !strings.Contains(a, "/") {
			es = append(es, entry{name: "bin/" + a, typ: tar.TypeLink, mode: 0o755, link: "bin/busybox"})
		}
	}
	seenDir := map[string]bool{"bin": true, "usr": true, "usr/bin": true}
	for _, l := range libs {
		body, err := os.ReadFile(l) // through symbolic links: the library itself
		if err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(filepath.Clean(l), "/")
		var parents []string
		for d := filepath.Dir(rel); d != "." && !seenDir[d]; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
			seenDir[d] = true
		}
		for _, d := range parents {
			es = append(es, dir(d, 0o755))
		}
		es = append(es, entry{name: rel, typ: tar.TypeReg, mode: 0o755, body: body})
	}
	es = append(es,
		file("etc/passwd", 0o644, passwd),
		file("etc/group", 0o644, group),
		file("etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"),
	)
	return es, nil
}

func (b *builder) standin(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(b.standins, name))
}

// built is one image (or index) of the layout and the name it is pushed under.
type built struct {
	ref   string
	image v1.Image
	index v1.ImageIndex
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// spec says how an image differs from the base.
type spec struct {
	layers  [][]entry // on top of the base layer (none: the base alone)
	noBase  bool
	config  v1.Config
	history string // what its own layers are, in the image's history
	oci     bool   // OCI media types (default: docker schema 2, as the originals)
}

func (b *builder) image(base []entry, s spec) (v1.Image, error) {
	lmt, mmt, cmt := types.DockerLayer, types.DockerManifestSchema2, types.DockerConfigJSON
	if s.oci {
		lmt, mmt, cmt = types.OCILayer, types.OCIManifestSchema1, types.OCIConfigJSON
	}
	var adds []mutate.Addendum
	all := s.layers
	if !s.noBase {
		all = append([][]entry{base}, all...)
	}
	for i, es := range all {
		l, err := layer(es, lmt)
		if err != nil {
			return nil, err
		}
		what := s.history
		if i == 0 && !s.noBase {
			what = "critest stand-in: busybox root filesystem (scripts/critest-images.sh)"
		}
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: lmt,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: what}})
	}
	img, err := mutate.Append(mutate.MediaType(mutate.ConfigMediaType(empty.Image, cmt), mmt), adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = s.config
	if len(cf.Config.Env) == 0 {
		cf.Config.Env = []string{defaultPath}
	}
	return mutate.ConfigFile(img, cf)
}

// index puts img in a one-platform manifest list, as the cri-tools test images are lists.
func index(img v1.Image, oci bool) v1.ImageIndex {
	mt := types.DockerManifestList
	if oci {
		mt = types.OCIImageIndex
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), mutate.IndexAddendum{
		Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}},
	})
}

// images is every stand-in, by the repository path and tag critest pulls.
func (b *builder) images(base []entry) ([]built, error) {
	webserver, err := b.standin("webserver")
	if err != nil {
		return nil, err
	}
	nnp, err := b.standin("nnp")
	if err != nil {
		return nil, err
	}
	pause, err := b.standin("pause")
	if err != nil {
		return nil, err
	}
	procps, err := b.standin("procps")
	if err != nil {
		return nil, err
	}
	var out []built
	add := func(ref string, s spec, list bool) error {
		img, err := b.image(base, s)
		if err != nil {
			return fmt.Errorf("%s: %v", ref, err)
		}
		if list {
			out = append(out, built{ref: ref, index: index(img, s.oci)})
		} else {
			out = append(out, built{ref: ref, image: img})
		}
		return nil
	}
	sh := v1.Config{Cmd: []string{"sh"}}

	// registry.k8s.io/e2e-test-images/busybox:1.29-2: critest's default image. Adds the pgrep
	// and ipcs its specs run, which Debian's busybox lacks.
	if err := add("e2e-test-images/busybox:1.29-2", spec{config: sh, history: "pgrep and ipcs (test/critest/standin/procps)",
		layers: [][]entry{{
			{name: "bin/pgrep", typ: tar.TypeReg, mode: 0o755, body: procps},
			{name: "bin/ipcs", typ: tar.TypeLink, mode: 0o755, link: "bin/pgrep"},
		}}}, false); err != nil {
		return nil, err
	}

	// nginx: the web server of the networking, port-forward and namespace specs.
	nginxLayer := []entry{
		{name: "usr/sbin/nginx", typ: tar.TypeReg, mode: 0o755, body: webserver},
		dir("etc/nginx", 0o755), dir("etc/nginx/conf.d", 0o755),
		file("etc/nginx/conf.d/default.conf", 0o644, "server {\n    listen       80;\n    location / {\n        root   /usr/share/nginx/html;\n    }\n}\n"),
		dir("usr/share/nginx", 0o755), dir("usr/share/nginx/html", 0o755),
		file("usr/share/nginx/html/index.html", 0o644, "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1><p>critest stand-in.</p></body></html>\n"),
	}
	nginxConfig := v1.Config{Cmd: []string{"nginx", "-g", "daemon off;"}, StopSignal: "SIGTERM",
		ExposedPorts: map[string]struct{}{"80/tcp": {}}}
	if err := add("e2e-test-images/nginx:1.14-2", spec{layers: [][]entry{nginxLayer}, config: nginxConfig,
		history: "nginx stand-in (test/critest/standin/webserver)"}, false); err != nil {
		return nil, err
	}
	// cri-tools' hostnet-nginx: nginx listening on 12003, its config in a layer of its own.
	hostnetConfig := nginxConfig
	hostnetConfig.ExposedPorts = map[string]struct{}{"12003/tcp": {}}
	if err := add("k8s-staging-cri-tools/hostnet-nginx-"+runtime.GOARCH+":latest", spec{config: hostnetConfig,
		history: "nginx stand-in listening on 12003",
		layers: [][]entry{nginxLayer, {file("etc/nginx/conf.d/default.conf", 0o644,
			"server {\n    listen       12003;\n    location / {\n        root   /usr/share/nginx/html;\n    }\n}\n")}}}, true); err != nil {
		return nil, err
	}

	// httpd: the web server of the multi-container specs.
	if err := add("e2e-test-images/httpd:2.4.39-4", spec{history: "httpd stand-in (test/critest/standin/webserver)",
		config: v1.Config{Cmd: []string{"httpd-foreground"}, WorkingDir: "/usr/local/apache2",
			Env:          []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HTTPD_PREFIX=/usr/local/apache2"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}}},
		layers: [][]entry{{
			dir("usr/local/apache2", 0o755), dir("usr/local/apache2/bin", 0o755),
			{name: "usr/local/apache2/bin/httpd", typ: tar.TypeReg, mode: 0o755, body: webserver},
			dir("usr/local/apache2/conf", 0o755),
			file("usr/local/apache2/conf/httpd.conf", 0o644, "Listen 80\nDocumentRoot \"/usr/local/apache2/htdocs\"\n"),
			dir("usr/local/apache2/htdocs", 0o755),
			file("usr/local/apache2/htdocs/index.html", 0o644, "<html><body><h1>It works!</h1></body></html>\n"),
			dir("usr/local/apache2/logs", 0o755),
			file("usr/local/bin/httpd-foreground", 0o755, "#!/bin/sh\nset -e\nrm -f /usr/local/apache2/logs/httpd.pid\nexec httpd -DFOREGROUND \"$@\"\n"),
		}}}, false); err != nil {
		return nil, err
	}

	// nonewprivs: a setuid-root program that prints its effective uid.
	if err := add("e2e-test-images/nonewprivs:1.3", spec{history: "setuid nnp (test/critest/standin/nnp)",
		config: v1.Config{Entrypoint: []string{"/usr/local/bin/nnp"}},
		layers: [][]entry{{{name: "usr/local/bin/nnp", typ: tar.TypeReg, mode: 0o4755, body: nnp}}}}, false); err != nil {
		return nil, err
	}

	// pause:3.9, for registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9 alike (one image under
	// two registries: the Image Identifier Consistency spec). No busybox; OCI media types.
	if err := add("pause:3.9", spec{noBase: true, oci: true, history: "pause (test/critest/standin/pause)",
		config: v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		layers: [][]entry{{{name: "pause", typ: tar.TypeReg, mode: 0o755, body: pause}}}}, true); err != nil {
		return nil, err
	}

	const reg = "k8s-staging-cri-tools/"
	// The user images: busybox with a USER (cri-tools images/image-user).
	for _, u := range []struct{ name, user string }{
		{"test-image-user-uid", "1002"},
		{"test-image-user-username", "www-data"},
		{"test-image-user-uid-group", "1003:1004"},
		{"test-image-user-username-group", "www-data:1004"},
	} {
		if err := add(reg+u.name+":latest", spec{config: v1.Config{Cmd: []string{"sh"}, User: u.user}}, true); err != nil {
			return nil, err
		}
	}
	// test-image-predefined-group: default-user (1000) in group-defined-in-image (50000).
	if err := add(reg+"test-image-predefined-group:latest", spec{config: v1.Config{Cmd: []string{"sh"}, User: "1000"},
		history: "default-user 1000 in group-defined-in-image 50000",
		layers: [][]entry{{
			file("etc/passwd", 0o644, passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"),
			file("etc/group", 0o644, group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"),
			{name: "home/default-user", typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000},
		}}}, true); err != nil {
		return nil, err
	}
	// The image-test images: busybox plus an empty file named after the image (or tag), so
	// that each is a different image; test-image-tags:1, 2 and 3 are one image.
	testImage := func(ref, fileName string) error {
		return add(reg+ref, spec{config: sh, history: "/" + fileName,
			layers: [][]entry{{file(fileName, 0o644, "")}}}, true)
	}
	for _, t := range []struct{ ref, file string }{
		{"test-image-1:latest", "test-image-1"}, {"test-image-2:latest", "test-image-2"},
		{"test-image-3:latest", "test-image-3"}, {"test-image-latest:latest", "test-image-latest"},
		{"test-image-digest:latest", "test-image-digest"},
		{"test-image-tags:1", "same-image"}, {"test-image-tags:2", "same-image"}, {"test-image-tags:3", "same-image"},
		{"test-image-tag:test", "test"}, {"test-image-tag:all", "all"},
	} {
		if err := testImage(t.ref, t.file); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func openLayout(args []string, needRegistry bool) (layout.Path, string, error) {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	lay := fs.String("layout", "", "OCI layout written by build")
	reg := fs.String("registry", "", "registry host:port (plain HTTP)")
	fs.Parse(args)
	if *lay == "" || (needRegistry && *reg == "") {
		usage()
	}
	p, err := layout.FromPath(*lay)
	return p, *reg, err
}

// each calls fn for every image of the layout with its name.
func each(p layout.Path, fn func(ref string, desc v1.Descriptor, idx v1.ImageIndex) error) error {
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		ref := d.Annotations[refAnnotation]
		if ref == "" {
			return fmt.Errorf("manifest %s has no %s", d.Digest, refAnnotation)
		}
		if err := fn(ref, d, idx); err != nil {
			return fmt.Errorf("%s: %v", ref, err)
		}
	}
	return nil
}

func pushCmd(args []string) error {
	p, reg, err := openLayout(args, true)
	if err != nil {
		return err
	}
	return each(p, func(ref string, d v1.Descriptor, idx v1.ImageIndex) error {
		tag, err := name.NewTag(reg+"/"+ref, name.Insecure)
		if err != nil {
			return err
		}
		switch {
		case d.MediaType.IsIndex():
			ii, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			err = remote.WriteIndex(tag, ii)
			if err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := remote.Write(tag, img); err != nil {
				return err
			}
		default:
			return errors.New("neither an image nor an index: " + string(d.MediaType))
		}
		fmt.Printf("%s %s\n", tag, d.Digest)
		return nil
	})
}

func listCmd(args []string) error {
	p, _, err := openLayout(args, false)
	if err != nil {
		return err
	}
	return each(p, func(ref string, d v1.Descriptor, _ v1.ImageIndex) error {
		fmt.Printf("%s %s %s\n", ref, d.MediaType, d.Digest)
		return nil
	})
}
