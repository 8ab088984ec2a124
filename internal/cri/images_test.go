package cri

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The image's config under the CRI's, as containerd and cri-o merge them.
func TestMergeImageConfig(t *testing.T) {
	img := Image{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/bin", "SHARED=image", "IMG=1"},
		WorkingDir: "/work", User: "1:1"}
	id := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	sc := func(f func(*runtimeapi.LinuxContainerSecurityContext)) *runtimeapi.LinuxContainerConfig {
		s := &runtimeapi.LinuxContainerSecurityContext{}
		f(s)
		return &runtimeapi.LinuxContainerConfig{SecurityContext: s}
	}
	for _, tc := range []struct {
		name            string
		img             Image
		c               *runtimeapi.ContainerConfig
		entry, cmd, env []string
		dir, user, err  string
	}{
		{name: "image's own", img: img, c: &runtimeapi.ContainerConfig{},
			entry: []string{"/entry"}, cmd: []string{"default"}, dir: "/work", user: "1:1"},
		{name: "args replace cmd", img: img, c: &runtimeapi.ContainerConfig{Args: []string{"a", "b"}},
			entry: []string{"/entry"}, cmd: []string{"a", "b"}},
		{name: "command drops cmd", img: img, c: &runtimeapi.ContainerConfig{Command: []string{"sh"}},
			entry: []string{"sh"}, cmd: nil},
		{name: "command and args", img: img, c: &runtimeapi.ContainerConfig{Command: []string{"sh", "-c"}, Args: []string{"true"}},
			entry: []string{"sh", "-c"}, cmd: []string{"true"}},
		{name: "empty entrypoint is none", img: Image{Entrypoint: []string{""}, Cmd: []string{"sh"}}, c: &runtimeapi.ContainerConfig{},
			entry: []string{}, cmd: []string{"sh"}},
		{name: "no command anywhere", img: Image{}, c: &runtimeapi.ContainerConfig{}, err: "no command"},
		{name: "args but no entrypoint", img: Image{Cmd: []string{"sh"}}, c: &runtimeapi.ContainerConfig{Args: []string{"true"}},
			entry: []string{}, cmd: []string{"true"}},
		{name: "env merged", img: img, c: &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{{Key: "SHARED", Value: []byte("ctr")}, {Key: "NEW", Value: []byte("x=y")}}},
			env: []string{"PATH=/bin", "SHARED=ctr", "IMG=1", "NEW=x=y"}},
		{name: "env name", img: img, c: &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{{Key: "A=B"}}}, err: `"A=B"`},
		{name: "working dir given", img: img, c: &runtimeapi.ContainerConfig{WorkingDir: "/mine"}, dir: "/mine"},
		{name: "run_as_user over the image's", img: img, c: &runtimeapi.ContainerConfig{Linux: sc(func(s *runtimeapi.LinuxContainerSecurityContext) { s.RunAsUser = id(0) })},
			user: "0"},
		{name: "run_as_user and group", img: img, c: &runtimeapi.ContainerConfig{Linux: sc(func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser, s.RunAsGroup = id(1000), id(100)
		})}, user: "1000:100"},
		{name: "run_as_username over run_as_user", img: img, c: &runtimeapi.ContainerConfig{Linux: sc(func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser, s.RunAsUsername = id(1000), "www"
		})}, user: "www"},
		{name: "group without user", img: img, c: &runtimeapi.ContainerConfig{Linux: sc(func(s *runtimeapi.LinuxContainerSecurityContext) { s.RunAsGroup = id(5) })},
			err: "run_as_group 5 is given without run_as_user"},
		{name: "negative user", img: img, c: &runtimeapi.ContainerConfig{Linux: sc(func(s *runtimeapi.LinuxContainerSecurityContext) { s.RunAsUser = id(-1) })},
			err: "run_as_user -1"},
		{name: "user name with a colon", img: img, c: &runtimeapi.ContainerConfig{Linux: sc(func(s *runtimeapi.LinuxContainerSecurityContext) { s.RunAsUsername = "a:b" })},
			err: `run_as_username "a:b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
			var cc ContainerConfig
			err := mergeImageConfig(&cc, tc.c, tc.img, "img")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.entry != nil && !slices.Equal(cc.Entrypoint, tc.entry) {
				t.Errorf("entrypoint %q, want %q", cc.Entrypoint, tc.entry)
			}
			if cc.Entrypoint == nil {
				t.Errorf("entrypoint nil: the engine would take the image's")
			}
			if (tc.entry != nil || tc.cmd != nil) && !slices.Equal(cc.Cmd, tc.cmd) {
				t.Errorf("cmd %q, want %q", cc.Cmd, tc.cmd)
			}
			if tc.env != nil && !slices.Equal(cc.Env, tc.env) {
				t.Errorf("env %q, want %q", cc.Env, tc.env)
			}
			if tc.dir != "" && cc.WorkingDir != tc.dir {
				t.Errorf("working dir %q, want %q", cc.WorkingDir, tc.dir)
			}
			if tc.user != "" && cc.User != tc.user {
				t.Errorf("user %q, want %q", cc.User, tc.user)
			}
		})
	}
	// The image's own slices are not shared with the container's.
	var cc ContainerConfig
	mergeImageConfig(&cc, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Envs: []*runtimeapi.KeyValue{{Key: "PATH", Value: []byte("/x")}}}, img, "img")
	if img.Env[0] != "PATH=/bin" {
		t.Errorf("the merge changed the image's env: %q", img.Env)
	}
}

func TestImageServiceCalls(t *testing.T) {
	s, e, imgs := testServiceImages(t, nil)
	is := &imageService{s: s}
	ctx := context.Background()
	spec := func(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }

	// Status: a missing image is no image and no error; an invalid reference is no image too.
	for _, ref := range []string{"nginx", "registry.example/x@sha256:" + strings.Repeat("0", 64)} {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec(ref)})
		if err != nil || st.Image != nil {
			t.Errorf("status of missing %s: %v %v", ref, st, err)
		}
	}
	if _, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("status without an image: %v", err)
	}
	// By name, short or full, by ID and its prefix, by repo@digest: one image, its fields.
	for _, ref := range []string{"busybox", "docker.io/library/busybox:latest", testBusybox.ID, testBusybox.ID[7:19], testBusybox.RepoDigests[0]} {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec(ref)})
		if err != nil || st.Image == nil {
			t.Fatalf("status of %s: %v", ref, err)
		}
		if im := st.Image; im.Id != testBusybox.ID || !slices.Equal(im.RepoTags, testBusybox.RepoTags) ||
			!slices.Equal(im.RepoDigests, testBusybox.RepoDigests) || im.Size != 4<<20 || im.Uid != nil || im.Username != "" || im.Spec.Image != testBusybox.ID {
			t.Errorf("status of %s: %+v", ref, im)
		}
	}

	// Pull: the registry's answer; the request's login reaches the store as given.
	imgs.registry["docker.io/library/nginx:1.27"] = Image{ID: fakeID("e"), RepoTags: []string{"docker.io/library/nginx:1.27"},
		User: "101:101", Config: []byte(`{"config":{"User":"101:101"}}`)}
	imgs.registry["registry.example/app:v1"] = Image{ID: fakeID("f"), RepoTags: []string{"registry.example/app:v1"}, User: "www"}
	if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("nginx:1.28")}); status.Code(err) != codes.NotFound {
		t.Errorf("pull of what the registry lacks: %v", err)
	}
	if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("pull without an image: %v", err)
	}
	auth := &runtimeapi.AuthConfig{Username: "u", Password: "p", ServerAddress: "https://index.docker.io/v1/", IdentityToken: "it", RegistryToken: "rt", Auth: "dTpw"}
	pr, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("nginx:1.27"), Auth: auth})
	if err != nil || pr.ImageRef != fakeID("e") {
		t.Fatalf("pull: %v %v", pr, err)
	}
	got := imgs.auths[len(imgs.auths)-1]
	if want := (PullAuth{ServerAddress: auth.ServerAddress, Username: "u", Password: "p", Auth: "dTpw", IdentityToken: "it", RegistryToken: "rt"}); got == nil || *got != want {
		t.Errorf("login given to the store: %+v, want %+v", got, want)
	}
	if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("registry.example/app:v1")}); err != nil {
		t.Fatal(err)
	}
	if imgs.auths[len(imgs.auths)-1] != nil {
		t.Errorf("a pull without a login got one: %+v", imgs.auths[len(imgs.auths)-1])
	}
	// The config's user: a number is the uid, a name the user name.
	st, _ := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("nginx:1.27"), Verbose: true})
	if st.Image.GetUid().GetValue() != 101 || st.Image.Username != "" {
		t.Errorf("user 101:101: uid %v name %q", st.Image.Uid, st.Image.Username)
	}
	var info struct {
		ImageSpec struct{ Config struct{ User string } }
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.ImageSpec.Config.User != "101:101" {
		t.Errorf("verbose info %q: %v", st.Info, err)
	}
	st, _ = is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("registry.example/app:v1")})
	if st.Image.Uid != nil || st.Image.Username != "www" {
		t.Errorf("user www: uid %v name %q", st.Image.Uid, st.Image.Username)
	}

	// List, whole and filtered.
	l, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(l.Images) != 3 {
		t.Fatalf("list: %v %v", l, err)
	}
	for ref, n := range map[string]int{"nginx:1.27": 1, "nginx:1.28": 0, "../x": 0, fakeID("f"): 1} {
		l, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: spec(ref)}})
		if err != nil || len(l.Images) != n {
			t.Errorf("list filtered by %s: %v %v, want %d", ref, l, err, n)
		}
	}

	// Remove: refused while a container uses it; idempotent once gone.
	sb := runPod(t, s, "p")
	cfg := ctrConfig("c")
	cfg.Image.Image = "nginx:1.27"
	cr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if cc := e.config(t, cr.ContainerId); cc.ImageID != fakeID("e") || cc.Image != "nginx:1.27" || cc.User != "101:101" {
		t.Errorf("container of nginx: image %q id %q user %q", cc.Image, cc.ImageID, cc.User)
	}
	cs, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
	if err != nil || cs.Status.Image.Image != "nginx:1.27" || cs.Status.ImageRef != fakeID("e") || cs.Status.ImageId != fakeID("e") {
		t.Errorf("container status image: %v %v", cs.GetStatus(), err)
	}
	// The kubelet's way: the image by the ID PullImage answered, the pod spec's name beside it.
	kc := ctrConfig("k")
	kc.Image = &runtimeapi.ImageSpec{Image: fakeID("e"), UserSpecifiedImage: "nginx:1.27"}
	kr, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: kc})
	if err != nil {
		t.Fatal(err)
	}
	if cc := e.config(t, kr.ContainerId); cc.Image != "nginx:1.27" || cc.ImageID != fakeID("e") {
		t.Errorf("kubelet's container: engine image %q id %q", cc.Image, cc.ImageID)
	}
	ks, _ := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: kr.ContainerId})
	if im := ks.GetStatus().GetImage(); im.GetImage() != fakeID("e") || im.GetUserSpecifiedImage() != "nginx:1.27" || ks.Status.ImageRef != fakeID("e") {
		t.Errorf("kubelet's container status: image %v ref %q", im, ks.GetStatus().GetImageRef())
	}
	if _, err := s.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: kr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	kc = ctrConfig("k2")
	kc.Image.UserSpecifiedImage = "nginx\n\x1b[2J"
	if _, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: kc}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "user_specified_image") {
		t.Errorf("a user_specified_image that is no reference: %v", err)
	}
	_, err = is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec("nginx:1.27")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "used by container") {
		t.Errorf("remove of an image in use: %v", err)
	}
	if _, err := s.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec(fakeID("e"))}); err != nil {
			t.Errorf("remove #%d: %v", i+1, err)
		}
	}
	if st, _ := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("nginx:1.27")}); st.Image != nil {
		t.Errorf("removed image still there: %v", st.Image)
	}
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("remove without an image: %v", err)
	}
	// A container of an image the node lacks: NotFound, naming it.
	cfg = ctrConfig("d")
	cfg.Image.Image = "nginx:1.27"
	if _, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: cfg}); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"nginx:1.27"`) {
		t.Errorf("container of a removed image: %v", err)
	}

	fs, err := is.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].FsId.Mountpoint != "/graph/images" ||
		fs.ImageFilesystems[0].UsedBytes.Value != 4<<20 || fs.ImageFilesystems[0].InodesUsed.Value != 20 {
		t.Errorf("image fs info: %v %v", fs, err)
	}
}

// Image volumes: read-only only, a sub path inside the image, the image on the node; the
// status reports each with the image's ID.
func TestImageVolumeConfig(t *testing.T) {
	s, e := testService(t, nil)
	ctx := context.Background()
	sb := runPod(t, s, "p")
	vol := func(mod func(*runtimeapi.Mount)) *runtimeapi.ContainerConfig {
		c := ctrConfig("c")
		m := &runtimeapi.Mount{ContainerPath: "/mnt/v", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "busybox", UserSpecifiedImage: "busybox"}}
		if mod != nil {
			mod(m)
		}
		c.Mounts = []*runtimeapi.Mount{m}
		return c
	}
	for _, tc := range []struct {
		name string
		mod  func(*runtimeapi.Mount)
		code codes.Code
		want string
	}{
		{"writable", func(m *runtimeapi.Mount) { m.Readonly = false }, codes.InvalidArgument, "must be read-only"},
		{"relative target", func(m *runtimeapi.Mount) { m.ContainerPath = "mnt" }, codes.InvalidArgument, "absolute container path"},
		{"root target", func(m *runtimeapi.Mount) { m.ContainerPath = "/" }, codes.InvalidArgument, "other than /"},
		{"host path too", func(m *runtimeapi.Mount) { m.HostPath = "/etc" }, codes.InvalidArgument, "host path"},
		{"sub path up", func(m *runtimeapi.Mount) { m.ImageSubPath = "a/../../b" }, codes.InvalidArgument, "image_sub_path"},
		{"sub path absolute", func(m *runtimeapi.Mount) { m.ImageSubPath = "/etc" }, codes.InvalidArgument, "image_sub_path"},
		{"missing image", func(m *runtimeapi.Mount) { m.Image.Image = "nginx" }, codes.NotFound, "not on this node"},
		{"bad user image", func(m *runtimeapi.Mount) { m.Image.UserSpecifiedImage = "A B" }, codes.InvalidArgument, "user_specified_image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: vol(tc.mod)})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v with %q", err, tc.code, tc.want)
			}
		})
	}
	r, err := s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: vol(func(m *runtimeapi.Mount) { m.ImageSubPath = "etc" })})
	if err != nil {
		t.Fatal(err)
	}
	cc := e.config(t, r.ContainerId)
	if len(cc.ImageMounts) != 1 || cc.ImageMounts[0] != (ImageMount{ImageID: testBusybox.ID, Target: "/mnt/v", SubPath: "etc"}) {
		t.Errorf("image mounts to the engine: %+v", cc.ImageMounts)
	}
	for _, m := range cc.Mounts {
		if m.Target == "/mnt/v" {
			t.Errorf("an image volume passed as a bind mount: %+v", m)
		}
	}
	st, _ := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: r.ContainerId})
	var found bool
	for _, m := range st.GetStatus().GetMounts() {
		if m.Image != nil {
			found = true
			if m.ContainerPath != "/mnt/v" || !m.Readonly || m.ImageSubPath != "etc" || m.Image.Image != "busybox" || m.Image.ImageRef != testBusybox.ID {
				t.Errorf("image volume in the status: %v", m)
			}
		}
	}
	if !found {
		t.Errorf("no image volume in the status: %v", st.GetStatus().GetMounts())
	}
}
