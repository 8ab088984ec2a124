package integration

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImageExternalRootfs: --external-rootfs DIR IMAGE runs DIR with the image's config;
// none with --external-rootfs is unchanged.
func TestImageExternalRootfs(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	d.Must("pull", ref)
	rf := Rootfs(t)
	os.MkdirAll(filepath.Join(rf, "data"), 0o755)
	os.WriteFile(filepath.Join(rf, "data", "dirfile"), []byte("from the directory\n"), 0o644)
	got := d.Must("run", "--rm", "--external-rootfs", rf, "--entrypoint", "/bin/sh", ref, "-c", `echo "$IMG_VAR"; pwd; id -u; cat dirfile; ls /app 2>&1 | head -1`)
	if got != "image\n/data\n1\nfrom the directory\nls: /app: No such file or directory" {
		t.Fatalf("--external-rootfs DIR IMAGE: %q", got)
	}
	if got := d.Must("create", "--external-rootfs", rf, ref); d.Inspect(got, "{{.Config.StopSignal}} {{len .Config.Env}}") != "SIGUSR1 3" {
		t.Fatalf("config of --external-rootfs DIR IMAGE: %s", d.Inspect(got, "{{json .Config}}"))
	}
	if got := d.Must("run", "--rm", "--external-rootfs", rf, "none", "/bin/sh", "-c", "echo \"[$IMG_VAR]\"; pwd"); got != "[]\n/" {
		t.Fatalf("--external-rootfs DIR none: %q", got)
	}
}

// TestImageSystemContainer: systemd from an image (scripts/mkimage-debian.sh) boots to
// running as a system container, with a host channel, and stops and starts again.
func TestImageSystemContainer(t *testing.T) {
	rf := debianRootfs(t)
	archive := filepath.Join(t.TempDir(), "debian.tar")
	start := time.Now()
	if out, err := exec.Command(filepath.Join(repoRoot, "scripts", "mkimage-debian.sh"), archive, "--rootfs", rf, "--no-compress").CombinedOutput(); err != nil {
		t.Fatalf("mkimage-debian.sh: %v\n%s", err, out)
	}
	t.Logf("image made in %s", time.Since(start).Round(time.Millisecond))
	s := startSysDaemon(t)
	if out := s.Must("load", "-q", "-i", archive); !strings.Contains(out, "isulad/debian-systemd:12") {
		t.Fatalf("load: %q", out)
	}
	if got := s.Must("inspect", "-f", "{{len .RootFS.Layers}} {{.Config.StopSignal}}", "isulad/debian-systemd:12"); got != "3 SIGRTMIN+3" {
		t.Fatalf("image: %q", got)
	}
	hp := filepath.Join(s.TempDir(), "ch")
	start = time.Now()
	s.runD("--name", "sd", "-m", "512m", "--system-container", "--host-channel", hp+":/hostch:rw:16M", "isulad/debian-systemd:12", "/sbin/init")
	boot := waitSystemRunning(t, s, "sd", start)
	t.Logf("systemd from an image reached running %s after run -d", boot.Round(time.Millisecond))
	if v := s.Inspect("sd", "{{.SystemdInit}} {{.Config.StopSignal}}"); v != "true SIGRTMIN+3" {
		t.Fatalf("systemd init / stop signal: %q", v)
	}
	s.Must("exec", "sd", "sh", "-c", "echo through > /hostch/x")
	if b, err := os.ReadFile(filepath.Join(hp, "x")); err != nil || string(b) != "through\n" {
		t.Fatalf("host channel: %q %v", b, err)
	}
	s.Must("stop", "sd")
	if mounted(t, filepath.Join(s.Graph, "containers")) {
		t.Fatal("the image rootfs is still mounted after stop")
	}
	start = time.Now()
	s.Must("start", "sd")
	waitSystemRunning(t, s, "sd", start)
	s.Must("rm", "-f", "sd")
}

// TestImageUserRemap: with --user-remap the image's layers are id-mapped: the container's
// root owns the image's files, its writes land in its layer owned by the mapped ids, and the
// shared layers on disk keep their owners.
func TestImageUserRemap(t *testing.T) {
	reg := StartRegistry(t, nil)
	ref := PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	d.TempDir()
	d.Must("pull", ref)
	id := d.Must("create", "--name", "ur", "--system-container", "--user-remap", "100000:100000:65535", "-u", "0", "--entrypoint", "/bin/sh", ref, "-c",
		"stat -c %u /bin/busybox /data/keep; echo w > /data/new; stat -c %u /data/new; cat /proc/self/uid_map | tr -s ' '")
	got := d.Must("start", "-a", "ur")
	if got != "0\n0\n0\n 0 100000 65535" {
		t.Fatalf("inside a remapped container: %q", got)
	}
	var st syscall.Stat_t
	upper := filepath.Join(d.Graph, "containers", id, "layer", "upper")
	if err := syscall.Stat(filepath.Join(upper, "data", "new"), &st); err != nil || st.Uid != 100000 {
		t.Fatalf("the container's write on the host: uid %d (%v), want 100000", st.Uid, err)
	}
	layers, _ := filepath.Glob(filepath.Join(d.Graph, "images", "layers", "*", "diff", "bin", "busybox"))
	if len(layers) != 1 {
		t.Fatalf("busybox in %d layers", len(layers))
	}
	if err := syscall.Stat(layers[0], &st); err != nil || st.Uid != 0 {
		t.Fatalf("the shared layer's file changed owner: %d", st.Uid)
	}
	// The same image without remapping still sees root-owned files.
	if got := d.Must("run", "--rm", "--entrypoint", "/bin/stat", ref, "-c", "%u", "/bin/busybox"); got != "0" {
		t.Fatalf("without --user-remap: %q", got)
	}
}

// TestImageVolumes: an image's Volumes become anonymous volumes filled with the image's
// content there, kept across stop/start and gone with the container; -v over the same path
// wins; a volume path that is a symlink out of the rootfs is resolved inside it.
func TestImageVolumes(t *testing.T) {
	reg := StartRegistry(t, nil)
	spec := BusyboxSpec(t)
	spec.Config["Volumes"] = map[string]any{"/data": map[string]any{}, "/esc": map[string]any{}, "/fresh": map[string]any{}}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "hostfile"), []byte("host"), 0o644)
	spec.Layers = append(spec.Layers, TarEntries(t, []LayerEntry{{Name: "esc", Type: tar.TypeSymlink, Link: outside}}))
	ref := PushTestImage(t, reg, "test/vol", "v1", spec, false)
	d := StartDaemon(t)
	d.Must("pull", ref)
	id := d.Must("create", "--name", "v", "-u", "0", "--entrypoint", "/bin/sh", ref, "-c",
		"ls /data; cat /data/count 2>/dev/null; echo x >> /data/count; ls /esc | wc -l; ls /fresh | wc -l")
	if got := d.Must("start", "-a", "v"); got != "keep\n0\n0" {
		t.Fatalf("first run: %q", got)
	}
	if got := d.Must("start", "-a", "v"); got != "count\nkeep\nx\n0\n0" {
		t.Fatalf("second run sees the volume's data: %q", got)
	}
	upper := filepath.Join(d.Graph, "containers", id, "layer", "upper", "data", "count")
	if _, err := os.Stat(upper); err == nil {
		t.Fatal("the volume's data is in the container's layer, not in a volume")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Fatalf("the host directory behind /esc changed: %v", ents)
	}
	bind := d.TempDir()
	os.WriteFile(filepath.Join(bind, "mine"), nil, 0o644)
	if got := d.Must("run", "--rm", "-v", bind+":/data", "--entrypoint", "/bin/ls", ref, "/data"); got != "mine" {
		t.Fatalf("-v over an image volume: %q", got)
	}
	d.Must("rm", "v")
	if _, err := os.Stat(filepath.Join(d.Graph, "containers", id)); !os.IsNotExist(err) {
		t.Fatal("the container's directory (and its volumes) survived rm")
	}
}

// TestImageCreateFailsClean: a create from an image that fails after its rootfs is mounted
// (here: an image volume that is a file) leaves no mount and no directory.
func TestImageCreateFailsClean(t *testing.T) {
	reg := StartRegistry(t, nil)
	spec := BusyboxSpec(t)
	spec.Config["Volumes"] = map[string]any{"/etc/motd": map[string]any{}}
	ref := PushTestImage(t, reg, "test/badvol", "v1", spec, false)
	d := StartDaemon(t)
	d.Must("pull", ref)
	oneLineErr(t, d.Isula("create", ref), "volume /etc/motd", "not a directory")
	if mounted(t, filepath.Join(d.Graph, "containers")) {
		t.Fatal("a failed create left its rootfs mounted")
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "containers")); len(ents) != 0 {
		t.Fatalf("a failed create left %d container directories", len(ents))
	}
}
