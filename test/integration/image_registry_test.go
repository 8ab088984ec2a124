package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func closedPort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func oneLineErr(t testing.TB, r Result, want ...string) {
	t.Helper()
	if r.Code != 125 {
		t.Fatalf("want exit 125: %s", r)
	}
	msg := strings.TrimSpace(r.Stderr)
	lines := strings.Split(msg, "\n")
	last := lines[len(lines)-1]
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Fatalf("error line %q does not say %q (stderr: %q)", last, w, r.Stderr)
		}
	}
}

// TestImagePullErrors: each failure is one line naming the image and the cause, exit 125,
// and nothing is listed.
func TestImagePullErrors(t *testing.T) {
	reg := StartRegistry(t, nil)
	PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	d := StartDaemon(t)
	oneLineErr(t, d.Isula("pull", reg.Host+"/test/busybox:nope"), reg.Host+"/test/busybox:nope", "not found")
	oneLineErr(t, d.Isula("pull", reg.Host+"/test/nosuch:v1"), "test/nosuch:v1", "not found")
	dead := closedPort(t)
	oneLineErr(t, d.Isula("pull", dead+"/x/y:z"), dead+"/x/y:z", "unreachable")
	oneLineErr(t, d.Isula("pull", "Bad Name"), "invalid image reference")
	// run of a missing image without pulling.
	oneLineErr(t, d.Isula("run", "--rm", "--pull", "never", reg.Host+"/test/busybox:v1"), "test/busybox:v1", "not found")
	if got := d.Must("images", "-qa"); got != "" {
		t.Fatalf("failed pulls left images: %q", got)
	}
	// --pull missing pulls (progress on stderr, the container's output on stdout).
	r := d.Isula("run", "--rm", reg.Host+"/test/busybox:v1", "hi")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "hello from the image hi" || !strings.Contains(r.Stderr, "Pull complete") {
		t.Fatalf("run --pull missing: %s", r)
	}
	// --pull always pulls again (the layers are there already).
	r = d.Isula("run", "--rm", "--pull", "always", reg.Host+"/test/busybox:v1", "again")
	if r.Code != 0 || !strings.Contains(r.Stderr, "Already exists") {
		t.Fatalf("run --pull always: %s", r)
	}
}

// TestImageLogin: a registry with htpasswd logins; credentials kept root-only, never in
// the daemon's log.
func TestImageLogin(t *testing.T) {
	const user, pass = "tester", "s3cret-Passw0rd"
	reg := StartRegistry(t, map[string]string{user: pass})
	ref := PushTestImage(t, reg, "test/private", "v1", BusyboxSpec(t), false, user, pass)
	d := StartDaemon(t)
	oneLineErr(t, d.Isula("pull", ref), "test/private:v1", "unauthorized", "isula login "+reg.Host)
	r := d.Isula("login", "-u", user, "-p", "wrong", reg.Host)
	if r.Code == 0 || !strings.Contains(r.Stderr, "unauthorized") || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 1 {
		t.Fatalf("login with a wrong password: %s", r)
	}
	r = d.IsulaStdin(pass+"\n", "login", "-u", user, "--password-stdin", reg.Host)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Fatalf("login: %s", r)
	}
	st, err := os.Stat(filepath.Join(d.Graph, "auths.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st.Mode(), err)
	}
	d.Must("pull", ref)
	if strings.Contains(d.Log(), pass) {
		t.Fatal("the password is in the daemon's log")
	}
	if r := d.Isula("logout", reg.Host); r.Code != 0 {
		t.Fatalf("logout: %s", r)
	}
	d.Must("rmi", ref)
	oneLineErr(t, d.Isula("pull", ref), "unauthorized")
}

// TestImageMirrors: per-host mirrors and registry-mirrors, tried in order, falling back;
// the image keeps its original name.
func TestImageMirrors(t *testing.T) {
	reg := StartRegistry(t, nil)
	PushTestImage(t, reg, "test/busybox", "v1", BusyboxSpec(t), false)
	upstream, badMirror := closedPort(t), closedPort(t)
	d := StartDaemon(t)
	cfg, _ := json.Marshal(map[string]any{
		"registry-mirrors": []string{"http://" + badMirror, "http://" + reg.Host},
		"registries":       map[string]any{upstream: map[string]any{"mirrors": []string{badMirror, reg.Host}}},
	})
	os.WriteFile(filepath.Join(d.Dir, "daemon.json"), cfg, 0o600)
	d.Stop()
	d.Start()
	d.Must("pull", upstream+"/test/busybox:v1")
	d.Must("pull", "test/busybox:v1") // docker.io/test/busybox through registry-mirrors
	got := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, want := range []string{upstream + "/test/busybox:v1", "test/busybox:v1"} {
		if !strings.Contains(got, want) {
			t.Fatalf("images after pulls through mirrors: %q, want %s", got, want)
		}
	}
	if got := d.Must("run", "--rm", upstream+"/test/busybox:v1", "mirrored"); got != "hello from the image mirrored" {
		t.Fatalf("run: %q", got)
	}
	// Both names are one image: its layers are stored once.
	if n := strings.Count(d.Must("images", "-q"), "\n") + 1; n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Graph, "images", "layers"))
	if len(ents) != 3 {
		t.Fatalf("%d layers stored, want 3", len(ents))
	}
}

// TestImageIndexPlatform: a tag naming an OCI index gives this host's platform; an index
// without it is one clear error.
func TestImageIndexPlatform(t *testing.T) {
	reg := StartRegistry(t, nil)
	amd := BusyboxSpec(t)
	arm := BusyboxSpec(t)
	arm.Config["Cmd"] = []string{"arm64"}
	dir := filepath.Join(t.TempDir(), "multi")
	WriteOCIIndexLayout(t, dir, "v1", map[string]ImageSpec{"amd64": amd, "arm64": arm})
	multi := reg.Host + "/test/multi:v1"
	Skopeo(t, "copy", "--all", "--dest-tls-verify=false", "oci:"+dir+":v1", "docker://"+multi)
	dir2 := filepath.Join(t.TempDir(), "armonly")
	WriteOCIIndexLayout(t, dir2, "v1", map[string]ImageSpec{"arm64": arm})
	armOnly := reg.Host + "/test/armonly:v1"
	Skopeo(t, "copy", "--all", "--dest-tls-verify=false", "oci:"+dir2+":v1", "docker://"+armOnly)

	d := StartDaemon(t)
	d.Must("pull", multi)
	if got := d.Must("run", "--rm", multi); got != "hello from the image default-arg" {
		t.Fatalf("the amd64 image of the index: %q", got)
	}
	if got := d.Must("inspect", "-f", "{{.Architecture}}", multi); got != "amd64" {
		t.Fatalf("architecture %q", got)
	}
	oneLineErr(t, d.Isula("pull", armOnly), "test/armonly:v1", "platform linux/amd64")
}
