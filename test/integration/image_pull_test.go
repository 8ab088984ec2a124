package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImagePullRun: an image built here (three layers, whiteout, opaque dir, full config)
// pushed to a local registry, pulled, run with its config applied as docker does.
func TestImagePullRun(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	out := d.Must("pull", ref)
	if !strings.Contains(out, "Image ID: sha256:") {
		t.Fatalf("pull output: %s", out)
	}
	if got := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); got != reg.Host+"/test/busybox:v1" {
		t.Fatalf("images: %q", got)
	}
	if got := d.Must("run", "--rm", ref); got != "hello from the image default-arg" {
		t.Fatalf("run with the image's entrypoint and cmd: %q", got)
	}
	if got := d.Must("run", "--rm", ref, "x", "y"); got != "hello from the image x y" {
		t.Fatalf("arguments replace Cmd: %q", got)
	}
	got := d.Must("run", "--rm", "-e", "SHARED=user", "--entrypoint", "/bin/sh", ref, "-c",
		`echo "$IMG_VAR $SHARED"; pwd; id -u; id -g; cat /data/keep; ls /data; ls /opq; cat /etc/motd`)
	want := "image user\n/data\n1\n1\nkeep\nkeep\nb\nfrom layer 3"
	if got != want {
		t.Fatalf("config/whiteouts:\n got %q\nwant %q", got, want)
	}
	if got := d.Must("run", "--rm", "-u", "0", "-w", "/", "--entrypoint", "", ref, "/bin/sh", "-c", "id -u; pwd"); got != "0\n/" {
		t.Fatalf("-u/-w override the image: %q", got)
	}
	// Image inspect: docker's shape.
	if got := d.Must("inspect", "--type", "image", "-f", "{{.Os}} {{.Architecture}} {{len .RootFS.Layers}} {{.Config.StopSignal}} {{index .Config.Labels \"org.test.kind\"}} {{index .RepoTags 0}}", ref); got != "linux amd64 3 SIGUSR1 busybox "+reg.Host+"/test/busybox:v1" {
		t.Fatalf("image inspect: %q", got)
	}
	// The container's inspect shows the merged config.
	id := d.Must("create", "--name", "c1", ref)
	if got := d.Inspect(id, "{{.Config.StopSignal}} {{json .Config.ExposedPorts}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}"); got != `SIGUSR1 {"8080/tcp":{}} ["/app/hello.sh"] ["default-arg"]` {
		t.Fatalf("container inspect: %q", got)
	}
	// Writes go to the container's own layer, kept across starts; the image is untouched.
	d.Must("rm", "c1")
	d.Must("create", "--name", "w", "-u", "0", "--entrypoint", "/bin/sh", ref, "-c", "cat /data/new 2>/dev/null || echo first > /data/new; echo run")
	if got := d.Must("start", "-a", "w"); got != "run" {
		t.Fatalf("first start: %q", got)
	}
	if got := d.Must("start", "-a", "w"); got != "first\nrun" {
		t.Fatalf("second start sees the first's write: %q", got)
	}
	if mounted(t, filepath.Join(d.Graph, "containers")) {
		t.Fatal("an overlay is still mounted after the container exited")
	}
	// --read-only: no write anywhere in the rootfs.
	r := d.Isula("run", "--rm", "--read-only", "-u", "0", "--entrypoint", "/bin/sh", ref, "-c", "touch /data/x")
	if r.Code == 0 {
		t.Fatalf("--read-only allowed a write: %s", r)
	}
}

func mounted(t testing.TB, under string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), under)
}

// TestImagePullOutputAndDigest: plain progress lines without a terminal; pull by digest;
// system df shows a base layer shared by two images once; image prune.
func TestImagePullOutputAndDigest(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	other := BusyboxSpec(t)
	other.Layers = other.Layers[:2]
	ref2 := PushTestImage(t, reg, "test/other", "v1", other, false)
	d := StartDaemon(t)
	r := d.Isula("pull", ref)
	if r.Code != 0 || strings.Count(r.Stdout, ": Pull complete") != 3 || strings.Contains(r.Stdout, "\x1b") {
		t.Fatalf("pull without a terminal: want a plain line per layer: %s", r)
	}
	digest := d.Must("inspect", "-f", "{{index .RepoDigests 0}}", ref)
	if !strings.HasPrefix(digest, reg.Host+"/test/busybox@sha256:") {
		t.Fatalf("RepoDigests: %q", digest)
	}
	d.Must("rmi", ref)
	d.Must("pull", digest)
	if got := d.Must("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"); got != reg.Host+"/test/busybox <none> "+strings.SplitN(digest, "@", 2)[1] {
		t.Fatalf("an image pulled by digest: %q", got)
	}
	if got := d.Must("run", "--rm", digest, "pinned"); got != "hello from the image pinned" {
		t.Fatalf("run by digest: %q", got)
	}
	d.Must("pull", ref2)
	df := d.Must("system", "df")
	if !strings.Contains(df, "Images") || !strings.Contains(df, "shared by several images") || strings.Contains(df, "shared by several images 0B") {
		t.Fatalf("system df does not show the shared base layer:\n%s", df)
	}
	// An imported image without a name is dangling: prune removes it, and only it.
	tarball := filepath.Join(d.TempDir(), "r.tar")
	os.WriteFile(tarball, TarEntries(t, []LayerEntry{{Name: "f", Body: "x"}}), 0o644)
	d.Must("import", tarball)
	if got := d.Must("images", "-q", "-f", "dangling=true"); len(got) != 12 {
		t.Fatalf("images -f dangling=true: %q", got)
	}
	out := d.Must("image", "prune")
	if !strings.Contains(out, "Deleted: sha256:") || !strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("image prune: %q", out)
	}
	if got := d.Must("images", "-qa"); strings.Count(got, "\n") != 1 {
		t.Fatalf("after prune: %q", got)
	}
}

// TestImagePullTerminal: on a terminal the pull draws a bar per layer (mpb), then the
// summary.
func TestImagePullTerminal(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	c := d.StartConsole(24, 120, "pull", ref)
	if code := c.Wait(60 * time.Second); code != 0 {
		t.Fatalf("pull on a terminal: exit %d\n%s", code, c.Output())
	}
	out := c.Output()
	if !strings.Contains(out, "Image ID: sha256:") || !strings.Contains(out, "Pull complete    [====") || !strings.Contains(out, "MiB") {
		t.Fatalf("no progress bars on a terminal:\n%q", out)
	}
}
