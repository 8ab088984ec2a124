package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/isulad-go/isulad/api/types"
	apiv1 "github.com/isulad-go/isulad/api/v1"
)

// fakeClient answers the calls the tests need; others panic (nil embedded interface).
type fakeClient struct {
	apiv1.ContainersClient
	mu        sync.Mutex
	created   []types.CreateRequest
	started   []string
	removed   []string
	createErr error
	stream    []*apiv1.StreamOut // what Attach/Exec answer
	sent      []*apiv1.StreamIn
	inspect   map[string]string
	list      []types.Container
	// echo, if set: after the scripted messages, the stream echoes stdin to stdout and ends
	// with Exit 0 once close_stdin arrives. One queue keeps them in the order they were sent
	// (the data before the exit), as the daemon does.
	echo chan *apiv1.StreamOut
}

func (f *fakeClient) Wait(context.Context, *apiv1.IDRequest, ...grpc.CallOption) (*apiv1.WaitResponse, error) {
	return &apiv1.WaitResponse{ExitCode: 42}, nil
}

func (f *fakeClient) Create(_ context.Context, in *apiv1.CreateRequest, _ ...grpc.CallOption) (*apiv1.CreateResponse, error) {
	if f.createErr != nil {
		return nil, f.createErr
	}
	var r types.CreateRequest
	if err := json.Unmarshal(in.ConfigJson, &r); err != nil {
		return nil, err
	}
	f.created = append(f.created, r)
	if in.Start {
		f.started = append(f.started, strings.Repeat("ab", 32))
	}
	return &apiv1.CreateResponse{Id: strings.Repeat("ab", 32), Warnings: []string{"careful"}}, nil
}

func (f *fakeClient) Start(_ context.Context, in *apiv1.IDRequest, _ ...grpc.CallOption) (*apiv1.Empty, error) {
	f.started = append(f.started, in.Id)
	return &apiv1.Empty{}, nil
}

func (f *fakeClient) Remove(_ context.Context, in *apiv1.RemoveRequest, _ ...grpc.CallOption) (*apiv1.Empty, error) {
	if in.Id == "missing" {
		return nil, status.Error(codes.NotFound, "no such container: missing")
	}
	f.removed = append(f.removed, in.Id)
	return &apiv1.Empty{}, nil
}

func (f *fakeClient) Inspect(_ context.Context, in *apiv1.IDRequest, _ ...grpc.CallOption) (*apiv1.JSONResponse, error) {
	if j, ok := f.inspect[in.Id]; ok {
		return &apiv1.JSONResponse{Json: []byte(j)}, nil
	}
	return nil, status.Error(codes.NotFound, "no such container: "+in.Id)
}

func (f *fakeClient) List(_ context.Context, in *apiv1.ListRequest, _ ...grpc.CallOption) (*apiv1.ListResponse, error) {
	b, _ := json.Marshal(f.list)
	return &apiv1.ListResponse{ContainersJson: b}, nil
}

type fakeStream struct {
	grpc.ClientStream
	f   *fakeClient
	out []*apiv1.StreamOut
	err error // a create refused: the stream's error
}

func (s *fakeStream) Send(m *apiv1.StreamIn) error {
	// An attach that creates (run): as Create, then the created message first.
	if a := m.GetAttach(); a != nil && a.CreateJson != nil {
		resp, err := s.f.Create(context.Background(), &apiv1.CreateRequest{ConfigJson: a.CreateJson})
		if err != nil {
			s.err = err
		} else {
			s.out = append([]*apiv1.StreamOut{{Msg: &apiv1.StreamOut_Created{Created: resp}}}, s.out...)
		}
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.sent = append(s.f.sent, m)
	if s.f.echo != nil {
		if d := m.GetStdin(); d != nil {
			s.f.echo <- &apiv1.StreamOut{Msg: &apiv1.StreamOut_Stdout{Stdout: d}}
		}
		if m.GetCloseStdin() {
			s.f.echo <- exitMsg(0, "")
		}
	}
	return nil
}

func (s *fakeStream) Recv() (*apiv1.StreamOut, error) {
	if s.err != nil {
		return nil, s.err
	}
	if len(s.out) == 0 && s.f.echo != nil {
		return <-s.f.echo, nil
	}
	if len(s.out) == 0 {
		return nil, io.EOF
	}
	m := s.out[0]
	s.out = s.out[1:]
	if m == nil {
		return nil, status.Error(codes.FailedPrecondition, "container is not running")
	}
	return m, nil
}

func (s *fakeStream) CloseSend() error { return nil }

func (f *fakeClient) Attach(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[apiv1.StreamIn, apiv1.StreamOut], error) {
	return &fakeStream{f: f, out: f.stream}, nil
}

func (f *fakeClient) Exec(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[apiv1.StreamIn, apiv1.StreamOut], error) {
	return &fakeStream{f: f, out: f.stream}, nil
}

func run(t *testing.T, f *fakeClient, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &CLI{In: strings.NewReader(""), Out: &out, Err: &errb, Client: f,
		LookupEnv: func(k string) (string, bool) {
			if k == "FROMHOST" {
				return "hostval", true
			}
			return "", false
		}}
	code := c.Run(args)
	return code, out.String(), errb.String()
}

func exitMsg(code int32, msg string) *apiv1.StreamOut {
	return &apiv1.StreamOut{Msg: &apiv1.StreamOut_Exit{Exit: &apiv1.Exit{Code: code, Error: msg}}}
}

var ready = &apiv1.StreamOut{Msg: &apiv1.StreamOut_Ready{Ready: true}}

func TestBuildRequest(t *testing.T) {
	t.Setenv("ISULAD_HOST", "")
	rootfs := t.TempDir()
	base := []string{"create", "--external-rootfs", rootfs}
	pids := int64(100)
	tests := []struct {
		args  []string
		check func(r types.CreateRequest) bool
	}{
		{[]string{"none", "sh", "-c", "echo -n x"}, func(r types.CreateRequest) bool {
			return reflect.DeepEqual(r.Config.Cmd, []string{"sh", "-c", "echo -n x"}) && r.Config.Image == "none" &&
				r.HostConfig.ExternalRootfs == rootfs && r.HostConfig.RestartPolicy.Name == "no"
		}},
		{[]string{"--name", "/web", "-h", "box", "-u", "1:2", "-w", "/srv", "none"}, func(r types.CreateRequest) bool {
			return r.Name == "web" && r.Config.Hostname == "box" && r.Config.User == "1:2" && r.Config.WorkingDir == "/srv"
		}},
		{[]string{"-e", "A=1", "-e", "FROMHOST", "-e", "UNSET", "none"}, func(r types.CreateRequest) bool {
			return reflect.DeepEqual(r.Config.Env, []string{"A=1", "FROMHOST=hostval"})
		}},
		{[]string{"-m", "64m", "--memory-swap", "-1", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "100", "none"}, func(r types.CreateRequest) bool {
			h := r.HostConfig
			return h.Memory == 64<<20 && h.MemorySwap == -1 && h.NanoCPUs == 5e8 && h.CPUShares == 512 && *h.PidsLimit == pids
		}},
		{[]string{"none"}, func(r types.CreateRequest) bool { return r.HostConfig.PidsLimit == nil && r.Config.StopTimeout == nil }},
		{[]string{"-v", "/a:/b:ro", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "--tmpfs", "/run:size=8m", "none"}, func(r types.CreateRequest) bool {
			h := r.HostConfig
			return reflect.DeepEqual(h.Binds, []string{"/a:/b:ro"}) && len(h.Mounts) == 1 && h.Mounts[0].TmpfsSize == 1<<20 &&
				h.Tmpfs["/run"] == "size=8m"
		}},
		{[]string{"--read-only", "--cap-add", "net_admin", "--cap-drop", "ALL", "--privileged", "--security-opt", "seccomp=unconfined", "none"}, func(r types.CreateRequest) bool {
			h := r.HostConfig
			return h.ReadonlyRootfs && h.CapAdd[0] == "CAP_NET_ADMIN" && h.CapDrop[0] == "ALL" && h.Privileged && h.SecurityOpt[0] == "seccomp=unconfined"
		}},
		{[]string{"--stop-signal", "rtmin+3", "--stop-timeout", "5", "--restart", "on-failure:2", "--runtime", "crun", "--net", "host", "none"}, func(r types.CreateRequest) bool {
			return r.Config.StopSignal == "SIGRTMIN+3" && *r.Config.StopTimeout == 5 && r.HostConfig.RestartPolicy.MaximumRetryCount == 2 &&
				r.HostConfig.Runtime == "crun" && r.HostConfig.NetworkMode == "host"
		}},
		{[]string{"--system-container", "--ns-change-opt", "net,ipc", "--user-remap", "100000:100000:65535", "--env-target-file", "/etc/env",
			"--hook-spec", "/etc/hooks.json", "--cgroup-parent", "/mine", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "none", "init"}, func(r types.CreateRequest) bool {
			h := r.HostConfig
			return h.SystemContainer && h.NsChangeOpt == "net,ipc" && h.UserRemap == "100000:100000:65535" && h.EnvTargetFile == "/etc/env" &&
				h.HookSpec == "/etc/hooks.json" && h.CgroupParent == "/mine" && h.LogConfig.Config["max-file"] == "3" && h.LogConfig.Type == "json-file"
		}},
		{[]string{"-i", "-t", "--rm", "none"}, func(r types.CreateRequest) bool {
			return r.Config.Tty && r.Config.OpenStdin && r.HostConfig.AutoRemove
		}},
		{[]string{"--host-channel", "/hc1:/c1:ro:1M", "--host-channel", "/hc2:/c2", "none"}, func(r types.CreateRequest) bool {
			h := r.HostConfig
			return len(h.HostChannels) == 2 && h.HostChannel != nil && *h.HostChannel == h.HostChannels[0] &&
				h.HostChannels[0].Permissions == "ro" && h.HostChannels[0].Size == 1<<20 && h.HostChannels[1].Size == 64<<20
		}},
	}
	for _, tc := range tests {
		f := &fakeClient{}
		code, _, errs := run(t, f, append(base, tc.args...)...)
		if code != 0 || len(f.created) != 1 {
			t.Errorf("%v: code %d, %s", tc.args, code, errs)
			continue
		}
		if !tc.check(f.created[0]) {
			b, _ := json.MarshalIndent(f.created[0], "", " ")
			t.Errorf("%v: request %s", tc.args, b)
		}
		if !strings.Contains(errs, "WARNING: careful") {
			t.Errorf("warnings not printed: %q", errs)
		}
	}
}

// TestBadCommandLines: each gives exit 125, one error line, and no API call.
func TestBadCommandLines(t *testing.T) {
	rootfs := t.TempDir()
	bad := [][]string{
		{"run"}, {"run", "--bogus", "none"}, {"create", "none"}, {"run", "busybox"},
		{"run", "--external-rootfs", rootfs, "busybox"},
		{"run", "-m", "1x", "--external-rootfs", rootfs, "none"},
		{"run", "-m", "-1", "--external-rootfs", rootfs, "none"},
		{"run", "-m", "1k", "--external-rootfs", rootfs, "none"},
		{"run", "--memory-swap", "1g", "--external-rootfs", rootfs, "none"},
		{"run", "--cpus", "1e3", "--external-rootfs", rootfs, "none"},
		{"run", "--cpus", "99999", "--external-rootfs", rootfs, "none"},
		{"run", "--cpu-shares", "1", "--external-rootfs", rootfs, "none"},
		{"run", "--pids-limit", "x", "--external-rootfs", rootfs, "none"},
		{"run", "-v", "./rel:/x", "--external-rootfs", rootfs, "none"},
		{"run", "-v", "/a:/", "--external-rootfs", rootfs, "none"},
		{"run", "-v", "/a:/x:rx", "--external-rootfs", rootfs, "none"},
		{"run", "--mount", "type=volume,dst=/x", "--external-rootfs", rootfs, "none"},
		{"run", "--tmpfs", "/t:size=-1", "--external-rootfs", rootfs, "none"},
		{"run", "--tmpfs", "/t", "--tmpfs", "/t", "--external-rootfs", rootfs, "none"},
		{"run", "-v", "/a:/t", "--tmpfs", "/t", "--external-rootfs", rootfs, "none"},
		{"run", "--name", "-x", "--external-rootfs", rootfs, "none"},
		{"run", "--name", "a b", "--external-rootfs", rootfs, "none"},
		{"run", "-e", "=x", "--external-rootfs", rootfs, "none"},
		{"run", "--env-file", "/nonexistent", "--external-rootfs", rootfs, "none"},
		{"run", "--stop-signal", "SIGFOO", "--external-rootfs", rootfs, "none"},
		{"run", "--restart", "sometimes", "--external-rootfs", rootfs, "none"},
		{"run", "--restart", "always", "--rm", "--external-rootfs", rootfs, "none"},
		{"run", "--restart", "always:3", "--external-rootfs", rootfs, "none"},
		{"run", "--net", "bridge", "--external-rootfs", rootfs, "none"},
		{"run", "--cap-add", "FOO", "--external-rootfs", rootfs, "none"},
		{"run", "--security-opt", "apparmor=x", "--external-rootfs", rootfs, "none"},
		{"run", "--host-channel", "/a", "--external-rootfs", rootfs, "none"},
		{"run", "--host-channel", "rel:/c", "--external-rootfs", rootfs, "none"},
		{"run", "--host-channel", "/h:/c:rx", "--external-rootfs", rootfs, "none"},
		{"run", "--host-channel", "/h:/c:rw:1x", "--external-rootfs", rootfs, "none"},
		{"run", "--host-channel", "/h:/proc/x", "--external-rootfs", rootfs, "none"},
		{"run", "--ns-change-opt", "net", "--external-rootfs", rootfs, "none"},
		{"run", "--system-container", "--ns-change-opt", "pid", "--external-rootfs", rootfs, "none"},
		{"run", "--user-remap", "1:1:10", "--external-rootfs", rootfs, "none"},
		{"run", "--system-container", "--user-remap", "1:1:0", "--external-rootfs", rootfs, "none"},
		{"run", "-w", "relative", "--external-rootfs", rootfs, "none"},
		{"run", "--log-opt", "max-file=0", "--external-rootfs", rootfs, "none"},
		{"run", "-it", "--external-rootfs", rootfs, "none"}, // stdin is not a terminal
		{"kill", "-s", "NOPE", "x"}, {"stop", "-t", "x", "c"}, {"rename", "a"}, {"rename", "a", "b/c"},
		{"ps", "--filter", "color=red"}, {"ps", "--filter", "status=sleeping"}, {"ps", "--format", "{{.ID"},
		{"logs", "--tail", "-5", "c"}, {"inspect"}, {"inspect", "-f", "{{", "c"}, {"exec", "c"}, {"bogus"},
		{"start", "-a", "c1", "c2"}, {"ps", "extra"}, {"wait"},
	}
	for _, args := range bad {
		f := &fakeClient{}
		code, out, errs := run(t, f, args...)
		if code != ExitEngine {
			t.Errorf("%q: exit %d (stderr %q)", args, code, errs)
		}
		if n := strings.Count(strings.TrimRight(errs, "\n"), "\n"); n != 0 || errs == "" {
			t.Errorf("%q: want one error line, got %q", args, errs)
		}
		if len(f.created) != 0 || len(f.started) != 0 {
			t.Errorf("%q: the API was called", args)
		}
		_ = out
	}
	if len(bad) < 40 {
		t.Fatal("keep at least 40 bad command lines")
	}
}

func TestRunExitCodes(t *testing.T) {
	rootfs := t.TempDir()
	base := []string{"run", "--external-rootfs", rootfs, "none", "sh"}
	cases := []struct {
		stream  []*apiv1.StreamOut
		code    int
		out     string
		errPart string
	}{
		{[]*apiv1.StreamOut{ready, {Msg: &apiv1.StreamOut_Stdout{Stdout: []byte("hi\n")}}, {Msg: &apiv1.StreamOut_Stderr{Stderr: []byte("oops\n")}}, exitMsg(0, "")}, 0, "hi\n", "oops"},
		{[]*apiv1.StreamOut{ready, exitMsg(3, "")}, 3, "", ""},
		{[]*apiv1.StreamOut{exitMsg(127, `exec: "x": executable file not found in $PATH`)}, 127, "", "Error response from daemon: exec: \"x\""},
		{[]*apiv1.StreamOut{exitMsg(126, "permission denied")}, 126, "", "permission denied"},
		{[]*apiv1.StreamOut{exitMsg(0, "runtime failed")}, 125, "", "runtime failed"},
		{[]*apiv1.StreamOut{nil}, 125, "", "Error response from daemon: container is not running"},
	}
	for i, tc := range cases {
		f := &fakeClient{stream: tc.stream}
		code, out, errs := run(t, f, base...)
		if code != tc.code || out != tc.out || !strings.Contains(errs, tc.errPart) {
			t.Errorf("case %d: code %d out %q err %q", i, code, out, errs)
		}
		// One stream creates, attaches and starts.
		a := f.sent[0].GetAttach()
		if a == nil || !a.Start || a.Stdin || a.Id != "" || len(f.created) != 1 || f.created[0].Config.Cmd[0] != "sh" {
			t.Errorf("case %d: first message %v", i, f.sent[0])
		}
		if !strings.Contains(errs, "WARNING: careful") {
			t.Errorf("case %d: the create's warning was not printed: %q", i, errs)
		}
	}
	// Create refused by the daemon: 125 with its message.
	f := &fakeClient{createErr: status.Error(codes.AlreadyExists, `container name "web" is already in use`)}
	code, _, errs := run(t, f, base...)
	if code != 125 || errs != "Error response from daemon: container name \"web\" is already in use\n" {
		t.Errorf("create error: %d %q", code, errs)
	}
	// Unreachable daemon.
	f = &fakeClient{createErr: status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial unix /x.sock: connect: no such file or directory\"")}
	code, _, errs = run(t, f, base...)
	if code != 125 || !strings.HasPrefix(errs, "Cannot connect to the isulad daemon at") {
		t.Errorf("conn error: %d %q", code, errs)
	}
	// -d: create and start in one call, print the full ID.
	f = &fakeClient{}
	code, out, _ := run(t, f, "run", "-d", "--rm", "--external-rootfs", rootfs, "none")
	if code != 0 || out != strings.Repeat("ab", 32)+"\n" || len(f.started) != 1 || len(f.created) != 1 {
		t.Errorf("-d: %d %q %v", code, out, f.started)
	}
}

func TestRunStdin(t *testing.T) {
	rootfs := t.TempDir()
	f := &fakeClient{stream: []*apiv1.StreamOut{ready}, echo: make(chan *apiv1.StreamOut, 16)}
	var out, errb bytes.Buffer
	c := &CLI{In: strings.NewReader("data"), Out: &out, Err: &errb, Client: f}
	done := make(chan int)
	go func() { done <- c.Run([]string{"run", "-i", "--external-rootfs", rootfs, "none", "cat"}) }()
	select {
	case code := <-done:
		if code != 0 || out.String() != "data" {
			t.Fatalf("code %d out %q err %q", code, out.String(), errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run -i hung")
	}
	if a := f.sent[0].GetAttach(); a == nil || !a.Stdin || !a.Start {
		t.Fatal("attach without stdin")
	}
	if !f.sent[len(f.sent)-1].GetCloseStdin() {
		t.Fatal("no close_stdin at EOF")
	}
}

func TestStreamEndsWithoutExit(t *testing.T) {
	// The daemon closes the stream without an Exit message: the code comes from Wait.
	code, _, _ := run(t, &fakeClient{stream: []*apiv1.StreamOut{ready}}, "run", "--external-rootfs", t.TempDir(), "none")
	if code != 42 {
		t.Fatal(code)
	}
}

func TestRmSeveral(t *testing.T) {
	f := &fakeClient{}
	code, out, errs := run(t, f, "rm", "-f", "a", "missing", "b")
	if code != 1 || out != "a\nb\n" || errs != "Error response from daemon: no such container: missing\n" {
		t.Fatalf("%d %q %q", code, out, errs)
	}
}

func TestInspect(t *testing.T) {
	f := &fakeClient{inspect: map[string]string{
		"a": `{"Id":"aaa","Name":"/a","State":{"Status":"running","Pid":1234567},"HostConfig":{"HostChannel":null,"Binds":["/x:/y"]}}`,
	}}
	code, out, _ := run(t, f, "inspect", "a")
	want := "[\n    {\n        \"Id\": \"aaa\",\n        \"Name\": \"/a\",\n        \"State\": {\n            \"Status\": \"running\",\n            \"Pid\": 1234567\n        },\n        \"HostConfig\": {\n            \"HostChannel\": null,\n            \"Binds\": [\n                \"/x:/y\"\n            ]\n        }\n    }\n]\n"
	if code != 0 || out != want {
		t.Fatalf("%d\n%s", code, out)
	}
	code, out, _ = run(t, f, "inspect", "-f", "{{.State.Status}} {{.State.Pid}} {{json .HostConfig.HostChannel}} {{json .HostConfig.Binds}} {{.Name}}", "a")
	if code != 0 || out != "running 1234567 null [\"/x:/y\"] /a\n" {
		t.Fatalf("%d %q", code, out)
	}
	code, out, errs := run(t, f, "inspect", "a", "nope")
	if code != 1 || !strings.HasPrefix(out, "[\n") || !strings.Contains(errs, "no such container: nope") {
		t.Fatalf("%d %q %q", code, out, errs)
	}
	code, out, _ = run(t, f, "inspect", "nope")
	if code != 1 || out != "[]\n" {
		t.Fatalf("%d %q", code, out)
	}
}

func TestPs(t *testing.T) {
	now := time.Now()
	f := &fakeClient{list: []types.Container{
		{ID: strings.Repeat("0123456789ab", 5) + "cdef", Names: "/web", Image: "none", Command: "sh -c while true; do sleep 1; done",
			Created: now.Add(-3 * time.Second), State: "running", Status: "Up 2 seconds"},
		{ID: strings.Repeat("f", 64), Names: "db", Image: "none", Command: "init", Created: now.Add(-2 * time.Hour), State: "exited", Status: "Exited (0) 5 minutes ago"},
	}}
	code, out, _ := run(t, f, "ps", "-a")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("%d %q", code, out)
	}
	for _, h := range []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header %q lacks %s", lines[0], h)
		}
	}
	if !strings.HasPrefix(lines[1], "0123456789ab   none") || !strings.Contains(lines[1], `"sh -c while true; d…"`) ||
		!strings.Contains(lines[1], "3 seconds ago") || !strings.Contains(lines[1], "Up 2 seconds") || !strings.HasSuffix(lines[1], "web") {
		t.Errorf("row %q", lines[1])
	}
	if !strings.Contains(lines[2], "2 hours ago") || !strings.Contains(lines[2], "Exited (0) 5 minutes ago") {
		t.Errorf("row %q", lines[2])
	}
	_, out, _ = run(t, f, "ps", "-q")
	if out != "0123456789ab\nffffffffffff\n" {
		t.Errorf("-q %q", out)
	}
	_, out, _ = run(t, f, "ps", "-q", "--no-trunc")
	if !strings.HasPrefix(out, strings.Repeat("0123456789ab", 5)+"cdef\n") {
		t.Errorf("-q --no-trunc %q", out)
	}
	_, out, _ = run(t, f, "ps", "--format", "{{.Names}}:{{.State}}:{{.Status}}")
	if out != "web:running:Up 2 seconds\ndb:exited:Exited (0) 5 minutes ago\n" {
		t.Errorf("format %q", out)
	}
	_, out, _ = run(t, f, "ps", "--format", "table {{.Names}}\t{{.State}}")
	if out != "NAMES     STATE\nweb       running\ndb        exited\n" {
		t.Errorf("table %q", out)
	}
	_, out, _ = run(t, f, "ps", "--no-trunc", "--format", "{{.Command}} {{.ID}}")
	if !strings.HasPrefix(out, `"sh -c while true; do sleep 1; done" `+strings.Repeat("0123456789ab", 5)+"cdef") {
		t.Errorf("no-trunc %q", out)
	}
}

func TestHumanDuration(t *testing.T) {
	cases := map[time.Duration]string{
		0: "Less than a second", time.Second: "1 second", 3 * time.Second: "3 seconds", 90 * time.Second: "About a minute",
		5 * time.Minute: "5 minutes", time.Hour: "About an hour", 3 * time.Hour: "3 hours", 72 * time.Hour: "3 days",
		15 * 24 * time.Hour: "2 weeks", 90 * 24 * time.Hour: "3 months", 800 * 24 * time.Hour: "2 years",
	}
	for d, want := range cases {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
	if statusFromState("exited") != "Exited" || statusFromState("running") != "Up" {
		t.Error("statusFromState")
	}
	if ellipsis("abcdef", 4) != "abc…" || ellipsis("abc", 4) != "abc" {
		t.Error("ellipsis")
	}
}

func TestReportCodes(t *testing.T) {
	var errb bytes.Buffer
	c := &CLI{Err: &errb, ran: true}
	if c.report(nil, withCode(3, nil)) != 3 || errb.Len() != 0 {
		t.Error("silent exit code")
	}
	if c.report(nil, c.apiErr(status.Error(codes.NotFound, "no such container: x"))) != 1 {
		t.Error("daemon error exits 1")
	}
	if c.report(nil, c.apiErr(status.Error(codes.InvalidArgument, "bad"))) != 125 {
		t.Error("invalid argument from the daemon exits 125")
	}
	if c.report(nil, errors.New("plain")) != 1 {
		t.Error("plain")
	}
	for _, h := range []string{"unix:///a.sock", "unix:/a.sock", "/a.sock"} {
		if tgt, err := dialTarget(h); err != nil || tgt != "unix:///a.sock" {
			t.Errorf("%s: %s %v", h, tgt, err)
		}
	}
	for _, h := range []string{"tcp://1.2.3.4:1", "unix://rel.sock", "x"} {
		if _, err := dialTarget(h); err == nil {
			t.Errorf("%s accepted", h)
		}
	}
}

func TestDetachKeys(t *testing.T) {
	var got [][]byte
	var mu sync.Mutex
	send := func(m *apiv1.StreamIn) error {
		mu.Lock()
		defer mu.Unlock()
		if d := m.GetStdin(); d != nil {
			got = append(got, d)
		}
		return nil
	}
	c := &CLI{In: strings.NewReader("ab\x10c\x10\x11zz")}
	det := make(chan struct{})
	c.pumpStdin(send, true, det)
	select {
	case <-det:
	default:
		t.Fatal("not detached")
	}
	if len(got) != 1 || string(got[0]) != "ab\x10c" {
		t.Fatalf("%q", got)
	}
}

func TestExecStdinWithoutReady(t *testing.T) {
	// The daemon's Exec sends no Ready: stdin must flow at once.
	f := &fakeClient{echo: make(chan *apiv1.StreamOut, 16)}
	var out, errb bytes.Buffer
	c := &CLI{In: strings.NewReader("abc"), Out: &out, Err: &errb, Client: f}
	done := make(chan int)
	go func() { done <- c.Run([]string{"exec", "-i", "-e", "A=1", "-u", "0", "-w", "/tmp", "web", "cat"}) }()
	select {
	case code := <-done:
		if code != 0 || out.String() != "abc" {
			t.Fatalf("code %d out %q err %q", code, out.String(), errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exec -i hung")
	}
	e := f.sent[0].GetExec()
	var ec types.ExecConfig
	if e == nil || json.Unmarshal(e.ConfigJson, &ec) != nil || !ec.AttachStdin || ec.User != "0" || ec.WorkingDir != "/tmp" ||
		ec.Env[0] != "A=1" || ec.Cmd[0] != "cat" || e.Id != "web" {
		t.Fatalf("%v %+v", e, ec)
	}
}
