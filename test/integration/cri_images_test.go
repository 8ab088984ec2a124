package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// criImageStatus is what crictl inspecti prints.
type criImageStatus struct {
	Status struct {
		ID          string
		RepoTags    []string
		RepoDigests []string
		Size        string
		UID         *struct{ Value string }
		Username    string
	}
	Info struct {
		ImageSpec struct {
			Config struct {
				Entrypoint []string
				WorkingDir string
			}
		}
	}
}

// The CRI's ImageService on the engine's store: crictl pulls from a private registry (with a
// login, through a daemon.json "registries" mirror of an upstream that is down), lists and
// inspects the image, runs a pod's containers from it (the image's config merged the CRI's
// way, a copy-on-write rootfs and the image's volume each), is refused rmi while a container
// uses it, then removes it and its layers.
func TestCRIImages(t *testing.T) {
	reg := StartRegistry(t, map[string]string{"kube": "s3cret"})
	spec := BusyboxSpec(t)
	spec.Config["Volumes"] = map[string]any{"/data": map[string]any{}}
	PushTestImage(t, reg, "test/busybox", "v1", spec, false, "kube", "s3cret")
	upstream := closedPort(t)
	d := StartDaemon(t)
	restartWithConfig(t, d, map[string]any{"registries": map[string]any{upstream: map[string]any{"mirrors": []string{reg.Host}}}})
	cc := newCRIClient(t, d)
	t.Cleanup(func() { cc.run("", "rmp", "-a", "-f") })
	ref := upstream + "/test/busybox:v1"

	// Without a login the mirror refuses; the upstream is down: both are said.
	if r := cc.run("", "pull", ref); r.Code == 0 || !strings.Contains(r.Stderr, "unauthorized at "+reg.Host) || !strings.Contains(r.Stderr, upstream+" is unreachable") {
		t.Fatalf("pull without a login: %s", r)
	}
	// A wrong login neither.
	if r := cc.run("", "pull", "--creds", "kube:wrong", ref); r.Code == 0 {
		t.Fatalf("pull with a wrong password: %s", r)
	}
	// A malformed login: one line naming the field, before any request.
	if r := cc.run("", "pull", "--auth", "not-base64!", ref); r.Code == 0 || !strings.Contains(r.Stderr, "auth: not base64 of user:password") {
		t.Fatalf("pull with a malformed auth: %s", r)
	}
	if r := cc.run("", "pull", "../../etc"); r.Code == 0 || !strings.Contains(r.Stderr, `invalid image reference \"../../etc\"`) {
		t.Fatalf("pull of a bad reference: %s", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers")); len(ents) != 0 {
		t.Fatalf("failed pulls left %d layers", len(ents))
	}
	// The request's login (crictl --creds: user name and password), for this pull only.
	out := cc.must("pull", "--creds", "kube:s3cret", ref)
	m := regexp.MustCompile(`Image is up to date for (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("crictl pull: %q", out)
	}
	id := m[1]
	if b, _ := os.ReadFile(filepath.Join(d.Graph, "auths.json")); strings.Contains(string(b), "kube") {
		t.Errorf("a CRI pull's login was stored: %s", b)
	}
	// The same store as isula's.
	if got := d.Must("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != ref+" "+id {
		t.Errorf("isula images after a CRI pull: %q, want %s %s", got, ref, id)
	}
	if got := cc.must("images", "-q"); got != id {
		t.Errorf("crictl images -q: %q, want %s", got, id)
	}
	if got := cc.must("images", "--digests"); !strings.Contains(got, upstream+"/test/busybox") || !strings.Contains(got, "v1") {
		t.Errorf("crictl images:\n%s", got)
	}
	var st criImageStatus
	if err := json.Unmarshal([]byte(cc.must("inspecti", ref)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status.ID != id || len(st.Status.RepoTags) != 1 || st.Status.RepoTags[0] != ref || st.Status.UID == nil || st.Status.UID.Value != "1" {
		t.Errorf("crictl inspecti: %+v", st.Status)
	}
	if len(st.Status.RepoDigests) != 1 || !strings.HasPrefix(st.Status.RepoDigests[0], upstream+"/test/busybox@sha256:") {
		t.Fatalf("repo digests %q", st.Status.RepoDigests)
	}
	if st.Info.ImageSpec.Config.WorkingDir != "/data" || strings.Join(st.Info.ImageSpec.Config.Entrypoint, " ") != "/app/hello.sh" {
		t.Errorf("crictl inspecti: the image's config: %+v", st.Info.ImageSpec.Config)
	}
	// Pinned by digest, with the login as docker's auth field (base64 of user:password): the
	// same image; by ID, by digest and by name it is one.
	pinned := st.Status.RepoDigests[0]
	auth := base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))
	if out := cc.must("pull", "--auth", auth, pinned); !strings.Contains(out, id) {
		t.Errorf("pull by digest: %q, want %s", out, id)
	}
	for _, r := range []string{pinned, id, id[7:19]} {
		var s criImageStatus
		if err := json.Unmarshal([]byte(cc.must("inspecti", r)), &s); err != nil || s.Status.ID != id {
			t.Errorf("inspecti %s: %v %q", r, err, s.Status.ID)
		}
	}
	var fs struct {
		Status struct {
			ImageFilesystems []struct {
				FsID       struct{ Mountpoint string }
				UsedBytes  struct{ Value string }
				InodesUsed struct{ Value string }
			}
		}
	}
	if err := json.Unmarshal([]byte(cc.must("imagefsinfo")), &fs); err != nil || len(fs.Status.ImageFilesystems) != 1 {
		t.Fatalf("crictl imagefsinfo: %v %+v", err, fs)
	}
	ifs := fs.Status.ImageFilesystems[0]
	var used, inodes int64
	fmt.Sscan(ifs.UsedBytes.Value, &used)
	fmt.Sscan(ifs.InodesUsed.Value, &inodes)
	// The busybox rootfs is a megabyte and hundreds of links at least.
	if ifs.FsID.Mountpoint != filepath.Join(d.Graph, "images") || used < 1<<20 || inodes < 100 {
		t.Errorf("imagefsinfo: %+v", ifs)
	}

	// A pod (no image needed) and containers from the image.
	dir := d.TempDir()
	logDir := filepath.Join(dir, "pods")
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "img", "namespace": "default", "uid": "u-img"}, "log_directory": logDir,
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}}})
	podID := cc.must("runp", pod)
	// No command, no args: the image's entrypoint with its cmd, its user, its working dir.
	dflt := writeJSON(t, filepath.Join(dir, "dflt.json"), map[string]any{
		"metadata": map[string]any{"name": "dflt"}, "image": map[string]any{"image": ref}, "log_path": "dflt.log"})
	// Args only: the image's entrypoint with them.
	args := writeJSON(t, filepath.Join(dir, "args.json"), map[string]any{
		"metadata": map[string]any{"name": "args"}, "image": map[string]any{"image": ref}, "log_path": "args.log",
		"args": []string{"given", "twice"}})
	// A command: the image's cmd is dropped; env merged over the image's; run_as_user wins
	// over the image's user; a working dir of its own.
	sh := writeJSON(t, filepath.Join(dir, "sh.json"), map[string]any{
		"metadata": map[string]any{"name": "sh"}, "image": map[string]any{"image": id}, "log_path": "sh.log",
		"command":     []string{"sh", "-c", `echo "$(id -u) $(pwd) $IMG_VAR $SHARED $# $0"; echo mine > /data/keep; echo mine > /etc/motd; exec sleep 1000`},
		"envs":        []map[string]string{{"key": "SHARED", "value": "ctr"}},
		"working_dir": "/opq",
		"linux":       map[string]any{"security_context": map[string]any{"run_as_user": map[string]any{"value": 0}}}})
	// A command only: the image's user and working dir.
	own := writeJSON(t, filepath.Join(dir, "own.json"), map[string]any{
		"metadata": map[string]any{"name": "own"}, "image": map[string]any{"image": pinned}, "command": []string{"sleep", "1000"}})
	ids := map[string]string{}
	for n, f := range map[string]string{"dflt": dflt, "args": args, "sh": sh, "own": own} {
		ids[n] = cc.must("create", podID, f, pod)
		cc.must("start", ids[n])
	}
	want := map[string]string{
		"dflt": "hello from the image default-arg", "args": "hello from the image given twice",
		"sh": "0 /opq image ctr 0 sh",
	}
	for n, w := range want {
		var got string
		WaitFor(t, "the output of container "+n, 20*time.Second, func() bool {
			r := cc.run("", "logs", ids[n])
			got = strings.TrimSpace(r.Stdout)
			return got != ""
		})
		if got != w {
			t.Errorf("container %s printed %q, want %q", n, got, w)
		}
	}
	// The image's user and working dir for the one that did not set them.
	if out := cc.must("exec", ids["own"], "sh", "-c", "id -u; id -g; pwd"); out != "1\n1\n/data" {
		t.Errorf("exec in a container with the image's user and dir: %q", out)
	}
	// The image's volume /data: each container's own, filled from the image.
	if out := cc.must("exec", ids["own"], "sh", "-c", "grep -c ' /data ' /proc/self/mountinfo"); out != "1" {
		t.Errorf("the image's volume /data is not mounted: %q", out)
	}
	// Copy-on-write: what sh wrote is its own; the other container and the image's layer keep
	// theirs.
	if out := cc.must("exec", ids["sh"], "cat", "/data/keep"); out != "mine" {
		t.Errorf("sh's own /data/keep: %q", out)
	}
	if out := cc.must("exec", ids["own"], "cat", "/data/keep"); out != "keep" {
		t.Errorf("another container's /data/keep: %q, want the image's", out)
	}
	if out := cc.must("exec", ids["sh"], "cat", "/etc/motd"); out != "mine" {
		t.Errorf("sh's own /etc/motd: %q", out)
	}
	if out := cc.must("exec", ids["own"], "cat", "/etc/motd"); out != "from layer 3" {
		t.Errorf("another container's /etc/motd: %q, want the image's", out)
	}
	// Stats: the container's own layer, which sh wrote to.
	var stats struct {
		Stats []struct {
			WritableLayer struct {
				FsID       struct{ Mountpoint string }
				UsedBytes  struct{ Value string }
				InodesUsed struct{ Value string }
			}
		}
	}
	json.Unmarshal([]byte(cc.must("stats", "-o", "json", ids["sh"])), &stats)
	if len(stats.Stats) != 1 || stats.Stats[0].WritableLayer.FsID.Mountpoint != filepath.Join(d.Graph, "containers", ids["sh"], "layer", "upper") ||
		stats.Stats[0].WritableLayer.UsedBytes.Value == "" || stats.Stats[0].WritableLayer.UsedBytes.Value == "0" {
		t.Errorf("crictl stats: writable layer %+v", stats.Stats)
	}
	// The status names the reference as asked and the image's ID.
	var cs struct {
		Status struct {
			Image    struct{ Image string }
			ImageRef string
			ImageID  string `json:"imageId"`
		}
	}
	json.Unmarshal([]byte(cc.must("inspect", ids["dflt"])), &cs)
	if cs.Status.Image.Image != ref || cs.Status.ImageRef != id || cs.Status.ImageID != id {
		t.Errorf("crictl inspect: image %+v", cs.Status)
	}
	// The engine's containers: isula ps shows them with the image they came from, isula
	// inspect with its overlay rootfs.
	if out := d.Must("ps", "-a", "--filter", "name=k8s_dflt_", "--format", "{{.Image}}"); out != ref {
		t.Errorf("isula ps: image %q, want %s", out, ref)
	}
	if out := d.Inspect(ids["sh"], "{{.Image}} {{.Driver}}"); out != id+" overlay" {
		t.Errorf("isula inspect: %q", out)
	}
	// In use: refused, by crictl and by isula, and the image stays.
	if r := cc.run("", "rmi", ref); r.Code == 0 || !strings.Contains(r.Stderr, "is used by container") {
		t.Errorf("crictl rmi of an image in use: %s", r)
	}
	if r := d.Isula("rmi", ref); r.Code == 0 {
		t.Errorf("isula rmi of an image in use: %s", r)
	}
	if got := cc.must("images", "-q"); got != id {
		t.Fatalf("images after a refused rmi: %q", got)
	}
	// Each container's own layer goes with it.
	upper := filepath.Join(d.Graph, "containers", ids["sh"])
	if _, err := os.Stat(upper); err != nil {
		t.Fatalf("container directory: %v", err)
	}
	cc.must("rmp", "-f", podID)
	if _, err := os.Stat(upper); !os.IsNotExist(err) {
		t.Errorf("the container's directory (its layer) outlived it: %v", err)
	}
	cc.must("rmi", ref)
	if got := cc.must("images", "-q"); got != "" {
		t.Errorf("images after rmi: %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers")); len(ents) != 0 {
		t.Errorf("%d layers left after rmi", len(ents))
	}
	// Not there: crictl itself reports it, the daemon's status answers empty.
	if r := cc.run("", "inspecti", ref); r.Code == 0 {
		t.Errorf("inspecti of a removed image: %s", r)
	}
	// Pulls at once of one image share its layers: one image, its three layers stored once.
	errs := make(chan Result, 3)
	for range 3 {
		go func() { errs <- cc.run("", "pull", "--creds", "kube:s3cret", ref) }()
	}
	for range 3 {
		if r := <-errs; r.Code != 0 {
			t.Errorf("concurrent pull: %s", r)
		}
	}
	if got := cc.must("images", "-q"); got != id {
		t.Errorf("images after concurrent pulls: %q, want %s", got, id)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers")); len(ents) != 3 {
		t.Errorf("%d layers after concurrent pulls, want 3", len(ents))
	}
}

// Image volumes (Mount.image): an image mounted read-only in a pod's container, whole or one
// directory of it; a writable one and a missing sub path are refused; the image is in use
// while the container exists; everything is unmounted with the container.
func TestCRIImageVolumes(t *testing.T) {
	reg := StartRegistry(t, nil)
	PushTestImage(t, reg, "library/busybox", "latest", plainBusybox(t), false)
	PushTestImage(t, reg, "test/app", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	restartWithConfig(t, d, map[string]any{"registry-mirrors": []string{"http://" + reg.Host}})
	cc := newCRIClient(t, d)
	t.Cleanup(func() { cc.run("", "rmp", "-a", "-f") })
	cc.must("pull", "busybox")
	appID := cc.must("pull", "test/app:v1")
	appID = appID[strings.LastIndex(appID, " ")+1:]
	dir := d.TempDir()
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata": map[string]any{"name": "iv", "namespace": "default", "uid": "u-iv"},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}}})
	podID := cc.must("runp", pod)
	ctr := func(name string, mounts ...map[string]any) string {
		return writeJSON(t, filepath.Join(dir, name+".json"), map[string]any{
			"metadata": map[string]any{"name": name}, "image": map[string]any{"image": "busybox"},
			"command": []string{"sleep", "1000"}, "mounts": mounts})
	}
	app := map[string]any{"image": "test/app:v1", "user_specified_image": "test/app:v1"}
	for name, tc := range map[string]struct {
		mount map[string]any
		want  string
	}{
		"rw":      {map[string]any{"container_path": "/mnt/app", "image": app}, "must be read-only"},
		"nosub":   {map[string]any{"container_path": "/mnt/app", "readonly": true, "image": app, "image_sub_path": "nope"}, `sub path \"nope\"`},
		"dotdot":  {map[string]any{"container_path": "/mnt/app", "readonly": true, "image": app, "image_sub_path": "../.."}, "image_sub_path"},
		"missing": {map[string]any{"container_path": "/mnt/app", "readonly": true, "image": map[string]any{"image": "test/none:v1"}}, "not on this node"},
	} {
		if r := cc.run("", "create", podID, ctr(name, tc.mount), pod); r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("create with image volume %s: %s, want %q", name, r, tc.want)
		}
	}
	if out := d.Must("ps", "-aq"); out != "" {
		t.Fatalf("refused creates left containers: %q", out)
	}
	id := cc.must("create", podID, ctr("ok",
		map[string]any{"container_path": "/mnt/app", "readonly": true, "image": app},
		map[string]any{"container_path": "/mnt/sub", "readonly": true, "image": app, "image_sub_path": "app"}), pod)
	cc.must("start", id)
	if out := cc.must("exec", id, "sh", "-c", "cat /mnt/app/etc/motd; /mnt/sub/hello.sh x; ls /mnt/sub"); out != "from layer 3\nhello from the image x\nhello.sh" {
		t.Errorf("image volumes seen in the container: %q", out)
	}
	if r := cc.run("", "exec", id, "touch", "/mnt/app/x"); r.Code == 0 {
		t.Errorf("an image volume is writable: %s", r)
	}
	// Reported back, with the image's ID.
	var st struct {
		Status struct {
			Mounts []struct {
				ContainerPath string
				Readonly      bool
				ImageSubPath  string
				Image         *struct{ Image, ImageRef string }
			}
		}
	}
	json.Unmarshal([]byte(cc.must("inspect", id)), &st)
	n := 0
	for _, m := range st.Status.Mounts {
		if m.Image != nil {
			n++
			if !m.Readonly || m.Image.Image != "test/app:v1" || m.Image.ImageRef != appID {
				t.Errorf("image volume in the status: %+v %+v", m, m.Image)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d image volumes in the status, want 2: %+v", n, st.Status.Mounts)
	}
	// In use.
	if r := cc.run("", "rmi", "test/app:v1"); r.Code == 0 || !strings.Contains(r.Stderr, "is used by container") {
		t.Errorf("rmi of an image mounted as a volume: %s", r)
	}
	base := filepath.Join(d.Graph, "containers", id, "imagemounts")
	cc.must("stop", id)
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), base) {
		t.Errorf("image volumes still mounted after the container stopped")
	}
	cc.must("rmp", "-f", podID)
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), base) {
		t.Errorf("image volumes still mounted after rmp")
	}
	cc.must("rmi", "test/app:v1")
}
