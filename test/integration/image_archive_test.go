package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageArchives: save -> skopeo reads; skopeo writes -> load reads; load from stdin;
// export -> import -> run; push -> skopeo inspects -> a second daemon pulls and runs.
func TestImageArchives(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	d.Must("pull", ref)
	id := d.Must("inspect", "--type", "image", "-f", "{{.Id}}", ref)
	dir := d.TempDir()
	dockerTar, ociTar := filepath.Join(dir, "d.tar"), filepath.Join(dir, "o.tar")
	d.Must("save", "-o", dockerTar, ref)
	d.Must("save", "--format", "oci", "-o", ociTar, ref)
	if out := Skopeo(t, "inspect", "--config", "docker-archive:"+dockerTar); !strings.Contains(out, "SIGUSR1") {
		t.Fatalf("skopeo on save's docker-archive: %s", out)
	}
	Skopeo(t, "copy", "docker-archive:"+dockerTar, "dir:"+filepath.Join(dir, "fromdocker")) // verifies every blob
	if out := Skopeo(t, "inspect", "--config", "oci-archive:"+ociTar+":"+ref); !strings.Contains(out, "SIGUSR1") {
		t.Fatalf("skopeo on save's OCI archive: %s", out)
	}
	Skopeo(t, "copy", "oci-archive:"+ociTar+":"+ref, "dir:"+filepath.Join(dir, "fromoci"))

	// Load what save wrote (file, then stdin): the same image ID.
	d.Must("rmi", ref)
	if out := d.Must("load", "-i", dockerTar); !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load: %q", out)
	}
	if got := d.Must("inspect", "--type", "image", "-f", "{{.Id}}", ref); got != id {
		t.Fatalf("loaded image ID %s, want %s", got, id)
	}
	if got := d.Must("run", "--rm", ref, "loaded"); got != "hello from the image loaded" {
		t.Fatalf("run a loaded image: %q", got)
	}
	d.Must("rmi", ref)
	data, _ := os.ReadFile(ociTar)
	if r := d.IsulaStdin(string(data), "load", "-i", "-"); r.Code != 0 || !strings.Contains(r.Stdout, ref) {
		t.Fatalf("load -i - of an OCI archive: %s", r)
	}
	d.Must("rmi", ref)

	// What skopeo writes, load reads.
	skDocker, skOCI := filepath.Join(dir, "sk-d.tar"), filepath.Join(dir, "sk-o.tar")
	Skopeo(t, "copy", "--src-tls-verify=false", "docker://"+ref, "docker-archive:"+skDocker+":sk/busybox:d")
	Skopeo(t, "copy", "--src-tls-verify=false", "docker://"+ref, "oci-archive:"+skOCI+":whatever")
	if out := d.Must("load", "-i", skDocker); !strings.Contains(out, "Loaded image: sk/busybox:d") {
		t.Fatalf("load of skopeo's docker-archive: %q", out)
	}
	if out := d.Must("load", "--tag", "sk/busybox:oci", "-i", skOCI); !strings.Contains(out, "Loaded image: sk/busybox:oci") {
		t.Fatalf("load --tag of skopeo's OCI archive: %q", out)
	}
	for _, n := range []string{"sk/busybox:d", "sk/busybox:oci"} {
		if got := d.Must("run", "--rm", n, "sk"); got != "hello from the image sk" {
			t.Fatalf("run %s: %q", n, got)
		}
	}
	// A broken archive: one line, nothing listed.
	os.WriteFile(filepath.Join(dir, "bad.tar"), []byte("not a tar"), 0o644)
	before := d.Must("images", "-qa")
	if r := d.Isula("load", "-i", filepath.Join(dir, "bad.tar")); r.Code != 125 || !strings.Contains(r.Stderr, "load") {
		t.Fatalf("load of a bad archive: %s", r)
	}
	if d.Must("images", "-qa") != before {
		t.Fatal("a failed load changed the image list")
	}

	// export -> import -> run.
	d.Must("create", "--name", "ex", "-u", "0", "--entrypoint", "/bin/sh", "sk/busybox:d", "-c", "echo exported > /data/mark")
	d.Must("start", "-a", "ex")
	exTar := filepath.Join(dir, "ex.tar")
	d.Must("export", "-o", exTar, "ex")
	newID := d.Must("import", exTar, "imported:v1")
	if !strings.HasPrefix(newID, "sha256:") {
		t.Fatalf("import printed %q", newID)
	}
	if got := d.Must("run", "--rm", "imported:v1", "/bin/sh", "-c", "cat /data/mark; ls /data"); got != "exported\nkeep\nmark" {
		t.Fatalf("run the imported image: %q", got)
	}
	if got := d.Must("inspect", "-f", "{{len .RootFS.Layers}}", "imported:v1"); got != "1" {
		t.Fatalf("imported image layers: %s", got)
	}

	// push: skopeo inspects it, a second daemon pulls and runs it.
	pushed := reg.Host + "/test/pushed:v1"
	d.Must("tag", "sk/busybox:d", pushed)
	d.Must("push", pushed)
	if out := Skopeo(t, "inspect", "--tls-verify=false", "--config", "docker://"+pushed); !strings.Contains(out, "SIGUSR1") {
		t.Fatalf("skopeo inspect of the pushed image: %s", out)
	}
	// Pushed again to another repository of the registry: the blobs are mounted, not sent.
	pushed2 := reg.Host + "/test/pushed2:v1"
	d.Must("tag", pushed, pushed2)
	d.Must("push", pushed2)
	if !strings.Contains(reg.Log(), "mount=sha256") || !strings.Contains(reg.Log(), "from=test%2Fpushed") {
		t.Fatal("the second push did not mount the blobs from test/pushed (no mount= in the registry's log)")
	}
	d2 := StartDaemon(t)
	d2.Must("pull", pushed)
	if got := d2.Must("run", "--rm", pushed, "pushed"); got != "hello from the image pushed" {
		t.Fatalf("run the pushed image on another daemon: %q", got)
	}
	if got := d2.Must("inspect", "-f", "{{.Id}}", pushed); got != id {
		t.Fatalf("pushed image ID %s, want %s", got, id)
	}
}
