package integration

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImageRmiTag: names, IDs and prefixes; in-use images refused without -f; the shared
// base layer survives the removal of one image.
func TestImageRmiTag(t *testing.T) {
	reg := StartRegistry(t, nil)
	spec := BusyboxSpec(t)
	a := PushTestImage(t, reg, "test/a", "v1", spec, false)
	spec2 := BusyboxSpec(t)
	spec2.Layers = spec2.Layers[:2] // same base, one layer less: another image
	spec2.Config["Labels"] = map[string]string{"org.test.kind": "other"}
	spec2.Created = "2025-06-07T08:09:10Z"
	b := PushTestImage(t, reg, "test/b", "v1", spec2, true)
	d := StartDaemon(t)
	d.Must("pull", a)
	d.Must("pull", b)
	idA := d.Must("inspect", "--type", "image", "-f", "{{.Id}}", a)
	idB := d.Must("inspect", "--type", "image", "-f", "{{.Id}}", b)
	if got := d.Must("images", "-q", "-f", "before="+b); got != idA[7:19] {
		t.Fatalf("images -f before=b: %q", got)
	}
	if got := d.Must("images", "-q", "-f", "since="+a); got != idB[7:19] {
		t.Fatalf("images -f since=a: %q", got)
	}
	if got := d.Must("inspect", "-f", "{{.Created}}", b); !strings.HasPrefix(got, "2025-06-07") {
		t.Fatalf("Created: %q", got)
	}
	d.Must("tag", a, "mine:latest")
	if got := d.Must("images", "-f", "reference=mine", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != "mine:latest "+idA[7:19] {
		t.Fatalf("images -f reference=mine: %q", got)
	}
	if got := d.Must("images", "-f", "label=org.test.kind=other", "-q"); got != idB[7:19] {
		t.Fatalf("images -f label: %q", got)
	}
	if got := d.Must("images", "--no-trunc", "-q", "-f", "reference=*/test/b"); got != idB {
		t.Fatalf("images --no-trunc: %q", got)
	}
	if got := d.Must("images", "--digests", "--format", "{{.Digest}}", "-f", "reference=mine"); !strings.HasPrefix(got, "<none>") {
		// The local name mine has no digest of its own.
		t.Fatalf("--digests for a local tag: %q", got)
	}
	if got := d.Must("images", "--digests", "--format", "{{.Digest}}", "-f", "reference=*/test/a"); !strings.HasPrefix(got, "sha256:") {
		t.Fatalf("--digests: %q", got)
	}
	// By ID with two names: refused without -f.
	if r := d.Isula("rmi", idA[7:19]); r.Code == 0 || !strings.Contains(r.Stderr, "several names") {
		t.Fatalf("rmi of an ID with two names: %s", r)
	}
	// By one of two names: only the name goes.
	if got := d.Must("rmi", "mine"); got != "Untagged: mine:latest" {
		t.Fatalf("rmi mine: %q", got)
	}
	// In use by a container: refused, then -f.
	d.Must("create", "--name", "user", a)
	r := d.Isula("rmi", a)
	if r.Code == 0 || !strings.Contains(r.Stderr, "used by container user") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("rmi of an image in use: %s", r)
	}
	d.Must("rmi", "-f", a)
	if got := d.Must("start", "-a", "user"); got != "hello from the image default-arg" {
		t.Fatalf("a container whose image was removed with -f still runs: %q", got)
	}
	d.Must("rm", "user")
	d.Must("image", "prune") // nothing dangling named: a is gone already
	if got := d.Must("images", "-q"); got != idB[7:19] {
		t.Fatalf("after rmi: %q", got)
	}
	// b's layers (the base shared with a) are still there and b runs.
	if got := d.Must("run", "--rm", b, "b"); got != "hello from the image b" {
		t.Fatalf("b after a's removal: %q", got)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers"))
	if len(ents) != 2 {
		t.Fatalf("%d layers left, want b's 2", len(ents))
	}
	d.Must("rmi", idB[7:19])
	for _, dir := range []string{"layers", "blobs/sha256", "records"} {
		if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", dir)); len(ents) != 0 {
			t.Fatalf("images/%s not empty after the last rmi: %d entries", dir, len(ents))
		}
	}
	if r := d.Isula("rmi", "nosuch"); r.Code != 1 || !strings.Contains(r.Stderr, "no such image: nosuch") {
		t.Fatalf("rmi nosuch: %s", r)
	}
}

// TestImagePullKilled: a daemon SIGKILLed during a pull (after the layers, before the
// record; and in the middle of a download) lists nothing after restart, and the space is
// reclaimed.
func TestImagePullKilled(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t, "ISULAD_FAULTS=image-ingest-after-layer=kill")
	r := d.Isula("pull", ref)
	if r.Code == 0 {
		t.Fatalf("pull survived its daemon's kill: %s", r)
	}
	<-d.exited
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers")); len(ents) != 3 {
		t.Fatalf("the fault point was not after the layers: %d layers", len(ents))
	}
	d.extraEnv = nil
	d.Start()
	if got := d.Must("images", "-qa"); got != "" {
		t.Fatalf("a half-pulled image is listed: %q", got)
	}
	for _, dir := range []string{"layers", "blobs/sha256", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", dir)); len(ents) != 0 {
			t.Fatalf("images/%s holds %d entries after the restart", dir, len(ents))
		}
	}
	d.Must("pull", ref)
	d.Must("rmi", ref)

	// A kill in the middle of a download: a layer large enough to be caught in flight.
	big := TarEntries(t, []LayerEntry{{Name: "big", Body: randomString(64 << 20)}})
	spec := BusyboxSpec(t)
	spec.Layers = append(spec.Layers, big)
	bigRef := PushTestImage(t, reg, "test/big", "v1", spec, false)
	cmd := exec.Command(filepath.Join(binDir, "isula"), "-H", "unix://"+d.Sock, "pull", "-q", bigRef)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "a layer download in flight", 60*time.Second, func() bool {
		ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "tmp"))
		return len(ents) > 0
	})
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	cmd.Wait()
	d.Start()
	if got := d.Must("images", "-qa"); got != "" {
		t.Fatalf("a half-pulled image is listed: %q", got)
	}
	for _, dir := range []string{"layers", "blobs/sha256", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", dir)); len(ents) != 0 {
			t.Fatalf("images/%s holds %d entries after the restart", dir, len(ents))
		}
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	f, _ := os.Open("/dev/urandom")
	defer f.Close()
	f.Read(b)
	return string(b)
}

// TestImageCreateKilled: a daemon killed in a create from an image, with the rootfs
// mounted and no record yet, leaves no mount and no container after its restart.
func TestImageCreateKilled(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t, "ISULAD_FAULTS=create-after-rootfs=kill")
	d.Must("pull", ref)
	if r := d.Isula("create", ref); r.Code == 0 {
		t.Fatalf("create survived its daemon's kill: %s", r)
	}
	<-d.exited
	if !mounted(t, filepath.Join(d.Graph, "containers")) {
		t.Fatal("the fault point was not after the rootfs mount")
	}
	d.extraEnv = nil
	d.Start()
	if mounted(t, filepath.Join(d.Graph, "containers")) {
		t.Fatal("the rootfs of the unfinished create is still mounted after the restart")
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "containers")); len(ents) != 0 {
		t.Fatalf("container directories left: %d", len(ents))
	}
	if got := d.Must("ps", "-aq"); got != "" {
		t.Fatalf("containers listed: %q", got)
	}
}

// TestImageRmiKilled: a daemon killed in rmi after the record went and before the space
// was reclaimed: the image is gone and the next start frees its layers.
func TestImageRmiKilled(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t, "ISULAD_FAULTS=image-remove-after-untag=kill")
	d.Must("pull", ref)
	d.Isula("rmi", ref)
	<-d.exited
	d.extraEnv = nil
	d.Start()
	if got := d.Must("images", "-qa"); got != "" {
		t.Fatalf("images after an interrupted rmi: %q", got)
	}
	for _, dir := range []string{"layers", "blobs/sha256"} {
		if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", dir)); len(ents) != 0 {
			t.Fatalf("images/%s holds %d entries", dir, len(ents))
		}
	}
}

// TestImageConcurrent: two pulls of one image share the layers (both succeed, each layer
// stored once); rmi racing run either refuses or wins, and a container never lacks its
// layers.
func TestImageConcurrent(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	errs := make(chan Result, 2)
	for i := 0; i < 2; i++ {
		go func() { errs <- d.Isula("pull", "-q", ref) }()
	}
	for i := 0; i < 2; i++ {
		if r := <-errs; r.Code != 0 {
			t.Fatalf("concurrent pull: %s", r)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers")); len(ents) != 3 {
		t.Fatalf("%d layers after two concurrent pulls, want 3", len(ents))
	}
	for i := 0; i < 5; i++ {
		runc := make(chan Result, 1)
		go func() { runc <- d.Isula("run", "--pull", "never", "--name", fmt.Sprint("race", i), ref, "x") }()
		rmi := d.Isula("rmi", ref)
		run := <-runc
		switch {
		case run.Code == 0 && rmi.Code != 0:
			// run won: rmi refused (the container uses the image).
			if !strings.Contains(rmi.Stderr, "used by container") {
				t.Fatalf("rmi lost to run with: %s", rmi)
			}
			d.Must("rm", fmt.Sprint("race", i))
			d.Must("rmi", ref)
		case rmi.Code == 0 && run.Code != 0:
			if !strings.Contains(run.Stderr, "not found") {
				t.Fatalf("run lost to rmi with: %s", run)
			}
		default:
			t.Fatalf("rmi and run both %d/%d:\nrmi %s\nrun %s", rmi.Code, run.Code, rmi, run)
		}
		d.Must("pull", "-q", ref)
	}
}

// TestImageDiskFull: a pull onto a full disk fails with one line saying so; nothing is
// listed and nothing is left.
func TestImageDiskFull(t *testing.T) {
	reg := StartRegistry(t, nil)
	big := TarEntries(t, []LayerEntry{{Name: "big", Body: randomString(24 << 20)}})
	spec := BusyboxSpec(t)
	spec.Layers = append(spec.Layers, big)
	ref := PushTestImage(t, reg, "test/big", "v1", spec, false)
	d := StartDaemon(t)
	d.Stop()
	imgs := filepath.Join(d.Graph, "images")
	os.RemoveAll(imgs)
	os.MkdirAll(imgs, 0o700)
	if err := syscall.Mount("tmpfs", imgs, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	defer syscall.Unmount(imgs, syscall.MNT_DETACH)
	d.Start()
	oneLineErr(t, d.Isula("pull", ref), "test/big:v1", "no space left")
	if got := d.Must("images", "-qa"); got != "" {
		t.Fatalf("listed after a failed pull: %q", got)
	}
	for _, dir := range []string{"layers", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(imgs, dir)); len(ents) != 0 {
			t.Fatalf("images/%s holds %d entries after a failed pull", dir, len(ents))
		}
	}
	d.Stop()
	syscall.Unmount(imgs, 0)
	d.Start()
}

// TestImageHostileLayers: layers that try to write outside (.., absolute names, a symlink
// then a file through it, a hard link to a host file, a device node) write nothing outside
// their layer, whether the pull succeeds or not.
func TestImageHostileLayers(t *testing.T) {
	reg := StartRegistry(t, nil)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("safe"), 0o644)
	up := strings.Repeat("../", 20)
	cases := map[string][]LayerEntry{
		"dotdot":    {{Name: up + outside[1:] + "/dotdot", Body: "pwned"}},
		"absolute":  {{Name: outside + "/absolute", Body: "pwned"}},
		"symlink":   {{Name: "esc", Type: tar.TypeSymlink, Link: outside}, {Name: "esc/through", Body: "pwned"}},
		"relsym":    {{Name: "a/", Type: tar.TypeDir}, {Name: "a/up", Type: tar.TypeSymlink, Link: up + outside[1:]}, {Name: "a/up/relsym", Body: "pwned"}},
		"hardlink":  {{Name: "hl", Type: tar.TypeLink, Link: victim}, {Name: "hl", Body: "pwned"}},
		"hardlink2": {{Name: "hl2", Type: tar.TypeLink, Link: up + victim[1:]}},
		"device":    {{Name: "devs/", Type: tar.TypeDir}, {Name: "devs/sda", Type: tar.TypeBlock}},
	}
	d := StartDaemon(t)
	for name, es := range cases {
		spec := BusyboxSpec(t)
		spec.Layers = append(spec.Layers[:1], TarEntries(t, es))
		ref := PushTestImage(t, reg, "test/hostile-"+name, "v1", spec, false)
		r := d.Isula("pull", "-q", ref)
		t.Logf("%s: pull exit %d %s", name, r.Code, strings.TrimSpace(r.Stderr))
		if b, _ := os.ReadFile(victim); string(b) != "safe" {
			t.Fatalf("%s: the host file now says %q", name, b)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 1 {
			t.Fatalf("%s: files appeared outside the layer: %v", name, ents)
		}
		if r.Code == 0 {
			if name == "device" {
				// Made as root, inside the container's rootfs only: it is a device node there.
				if got := d.Must("run", "--rm", "-u", "0", "--entrypoint", "/bin/sh", ref, "-c", "test -b /devs/sda && echo block"); got != "block" {
					t.Fatalf("device node: %q", got)
				}
			}
			d.Must("rmi", ref)
		} else if got := d.Must("images", "-qa"); got != "" {
			t.Fatalf("%s: a failed pull is listed: %q", name, got)
		}
	}
}

// TestImageLoadKilled: a daemon killed in a load (layers stored, no record) lists nothing
// after its restart, and the spooled archive and the layers are gone.
func TestImageLoadKilled(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	src := StartDaemon(t)
	src.Must("pull", ref)
	archive := filepath.Join(src.TempDir(), "a.tar")
	src.Must("save", "-o", archive, ref)
	d := StartDaemon(t, "ISULAD_FAULTS=image-ingest-after-layer=kill")
	if r := d.Isula("load", "-i", archive); r.Code == 0 {
		t.Fatalf("load survived its daemon's kill: %s", r)
	}
	<-d.exited
	d.extraEnv = nil
	d.Start()
	if got := d.Must("images", "-qa"); got != "" {
		t.Fatalf("a half-loaded image is listed: %q", got)
	}
	for _, dir := range []string{"layers", "blobs/sha256", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", dir)); len(ents) != 0 {
			t.Fatalf("images/%s holds %d entries after the restart", dir, len(ents))
		}
	}
	if out := d.Must("load", "-i", archive); !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load after the restart: %q", out)
	}
}
