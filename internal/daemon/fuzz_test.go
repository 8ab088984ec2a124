package daemon

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/hostchannel"
	"github.com/isulad-go/isulad/internal/network"
	"github.com/isulad-go/isulad/internal/opts"
)

// FuzzCreateRequest feeds arbitrary bytes into what the API's Create does before anything
// is made: the strict JSON decode, the shared value checks (opts.ValidateCreate) and the
// daemon's own checks (validate: rootfs, runtime, mounts, system-container options, hook
// spec, host channels). None of them may panic; every refusal is one line (the client prints
// it as is); an accepted request is stable (validating it again after a JSON round trip
// accepts it again).
func FuzzCreateRequest(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"Name":"web","Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/"}}`,
		`{"Config":{"Image":"none","Cmd":["true"],"Env":["A=b"],"Tty":true,"OpenStdin":true},"HostConfig":{"ExternalRootfs":"/tmp","Memory":67108864,"MemorySwap":134217728,"NanoCpus":500000000,"PidsLimit":50}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","HostChannel":{"PathOnHost":"/tmp/x/ch","PathInContainer":"/c","Permissions":"rw","Size":4096}}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","HostChannels":[{"PathOnHost":"/a","PathInContainer":"/c"},{"PathOnHost":"/a/b","PathInContainer":"/c/d","Size":-1}]}}`,
		`{"Config":{"Image":"none","Cmd":["init"]},"HostConfig":{"ExternalRootfs":"/tmp","SystemContainer":true,"NsChangeOpt":"net","EnvTargetFile":"/etc/env","UserRemap":"100000:100000:65535"}}`,
		`{"Config":{"Image":"none","Cmd":["sh"],"StopSignal":"SIGRTMIN+3","StopTimeout":-1},"HostConfig":{"ExternalRootfs":"/tmp","Binds":["/tmp:/x:ro","rel:/y"],"Tmpfs":{"/run":"size=1m,mode=1777"},"Mounts":[{"Type":"bind","Source":"/tmp","Target":"/m"}]}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"CapAdd":["ALL"],"CapDrop":["net_raw"],"SecurityOpt":["seccomp=unconfined"],"Runtime":"crun","NetworkMode":"host","HookSpec":"/etc/passwd","CgroupParent":"../x"}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp"}} trailing`,
		`{"Unknown":1}`,
		`{"Config":{"Image":"busybox","Cmd":["sh"]},"HostConfig":{}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","NetworkMode":"lan","IPv4Address":"10.1.1.5","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","NetworkMode":"container:web","Dns":["10.0.0.53"],"ExtraHosts":["db:10.1.1.9"]}}`,
		`{"Config":{"Image":"none","Cmd":["a\u0000b"],"Hostname":"x\ny","User":":"},"HostConfig":{"ExternalRootfs":"/tmp\n"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	tmp := f.TempDir()
	store, err := container.NewStore(tmp + "/graph/containers")
	if err != nil {
		f.Fatal(err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	channels, err := hostchannel.NewManager(tmp+"/graph/hostchannels", tmp+"/state/hostchannels", discard)
	if err != nil {
		f.Fatal(err)
	}
	d := &Daemon{store: store, channels: channels,
		cfg: Config{Graph: tmp + "/graph", State: tmp + "/state", DefaultRuntime: "runc",
			Runtimes: map[string]RuntimeConfig{"runc": {Path: "/usr/bin/runc"}}, CgroupParent: "/isulad", EngineName: "isulad"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	// --net NAME and container:REF are resolved against the store and the networks (empty).
	if d.net, err = network.New(network.Config{ConfDir: tmp + "/cni", DataDir: tmp + "/graph/network", RunDir: tmp + "/state/netns"}, d.log); err != nil {
		f.Fatal(err)
	}
	// Image names are looked up in an (empty) image store: never pulled by validate.
	if d.images, err = newImages(d.cfg); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req types.CreateRequest
		if err := decodeStrict(data, &req); err != nil {
			return
		}
		err := opts.ValidateCreate(&req)
		if err == nil {
			_, err = d.validate(&req)
		}
		if err != nil {
			if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("refusal is not one line: %q", msg)
			}
			return
		}
		// Accepted: the normalized request must be accepted again as it is.
		b, merr := json.Marshal(&req)
		if merr != nil {
			t.Fatalf("marshal of an accepted request: %v", merr)
		}
		var again types.CreateRequest
		if err := decodeStrict(b, &again); err != nil {
			t.Fatalf("an accepted request does not decode again: %v\n%s", err, b)
		}
		if err := opts.ValidateCreate(&again); err != nil {
			t.Fatalf("accepted once, refused after a round trip: %v\n%s", err, b)
		}
		if _, err := d.validate(&again); err != nil {
			t.Fatalf("daemon accepted once, refused after a round trip: %v\n%s", err, b)
		}
	})
}

// FuzzExecRequest feeds arbitrary bytes into what an exec does before it reaches the shim:
// the strict decode, Exec's checks and execProcess (the process derived from a real
// container's config.json, with -u resolved against a real rootfs). Properties: a decoded
// request survives a JSON round trip unchanged; every refusal is one line and an invalid
// argument (a missing command is refused before the container's state is looked at; with a
// command, a container that is not running is a conflict); a request with well-formed env,
// an absolute or empty workdir and no user is accepted; an accepted process runs exactly
// the command, with the exec's env over the container's (last value of a key wins, one entry
// per key), the workdir, terminal and capabilities asked for (never an inheritable or ambient
// one), and the container's own config.json is left as it was.
func FuzzExecRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"Env":["A=b"],"User":"0:0","WorkingDir":"/"}`, `{"Cmd":null}`, `[]`,
		`{"Cmd":["ls","-l"],"Env":["PATH=/x","A=1","A=2","=bad"],"WorkingDir":"rel"}`, `{"Cmd":[""],"User":"daemon:adm"}`,
		`{"Cmd":["id"],"User":"nobody","Privileged":true,"Env":["TERM=dumb"],"Tty":true}`, `{"Cmd":["id"],"User":":0"}`, `{"Cmd":["id"],"User":"ghost"}`,
		`{"Cmd":["env"],"Env":["A=1","A=2","PATH=/x"],"WorkingDir":"/tmp"}`} {
		f.Add([]byte(s))
	}
	tmp := f.TempDir()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		f.Fatal(err)
	}
	for name, text := range map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n",
		"group":  "root:x:0:\nadm:x:4:daemon\nnogroup:x:65534:\n",
	} {
		if err := os.WriteFile(filepath.Join(rootfs, "etc", name), []byte(text), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	store, err := container.NewStore(filepath.Join(tmp, "containers"))
	if err != nil {
		f.Fatal(err)
	}
	d := &Daemon{cfg: Config{Graph: tmp, State: tmp}, store: store, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := &container.Container{ID: "fuzzexec", Name: "fuzzexec", Rootfs: rootfs}
	base := specs.Process{Args: []string{"init"}, Env: []string{"PATH=/bin", "HOME=/root"}, Cwd: "/",
		User: specs.User{UID: 1, GID: 1},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL"},
			Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}}
	cfg, err := json.Marshal(&specs.Spec{Version: specs.Version, Process: &base, Root: &specs.Root{Path: rootfs}})
	if err != nil {
		f.Fatal(err)
	}
	cfgPath := filepath.Join(store.Dir(c.ID), "config.json")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		f.Fatal(err)
	}
	oneLine := func(t *testing.T, what string, err error) {
		t.Helper()
		if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
			t.Fatalf("%s: refusal is not one line: %q", what, msg)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ec types.ExecConfig
		if err := decodeStrict(data, &ec); err != nil {
			return
		}
		b, err := json.Marshal(&ec)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again types.ExecConfig
		if err := decodeStrict(b, &again); err != nil || !reflect.DeepEqual(again, ec) {
			t.Fatalf("round trip: %+v -> %s -> %+v (%v)", ec, b, again, err)
		}

		// Exec on a container that is not running: the command is checked first.
		_, err = d.Exec(context.Background(), c, ec, ExecStreams{})
		switch {
		case err == nil:
			t.Fatalf("exec into a container that is not running was accepted: %+v", ec)
		case len(ec.Cmd) == 0 || ec.Cmd[0] == "":
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("exec without a command: %v, want an invalid argument", err)
			}
		case !errors.Is(err, errdefs.ErrConflict):
			t.Fatalf("exec %q into a stopped container: %v, want a conflict", ec.Cmd, err)
		}
		oneLine(t, "exec", err)

		proc, err := d.execProcess(c, ec)
		wellFormed := ec.User == "" && (ec.WorkingDir == "" || filepath.IsAbs(ec.WorkingDir))
		for _, e := range ec.Env {
			wellFormed = wellFormed && strings.Contains(e, "=") && !strings.HasPrefix(e, "=")
		}
		if err != nil {
			oneLine(t, "execProcess", err)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("refusal of %+v: %v, want an invalid argument", ec, err)
			}
			if wellFormed {
				t.Fatalf("well-formed request %+v refused: %v", ec, err)
			}
			return
		}
		if !reflect.DeepEqual(proc.Args, ec.Cmd) || proc.Terminal != ec.Tty {
			t.Fatalf("process runs %q (terminal %v), asked %q (terminal %v)", proc.Args, proc.Terminal, ec.Cmd, ec.Tty)
		}
		want := map[string]string{}
		for _, e := range append(append([]string{}, base.Env...), ec.Env...) {
			k, v, _ := strings.Cut(e, "=")
			want[k] = v
		}
		if ec.Tty {
			want["TERM"] = "xterm"
		}
		got := map[string]string{}
		for _, e := range proc.Env {
			k, v, _ := strings.Cut(e, "=")
			if _, dup := got[k]; dup {
				t.Fatalf("env has %s twice: %q", k, proc.Env)
			}
			got[k] = v
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("env %q, want %v", proc.Env, want)
		}
		if wd := cmp.Or(ec.WorkingDir, base.Cwd); proc.Cwd != wd {
			t.Fatalf("cwd %q, want %q", proc.Cwd, wd)
		}
		if ec.User == "" && !reflect.DeepEqual(proc.User, base.User) {
			t.Fatalf("no -u, yet user %+v (the container's is %+v)", proc.User, base.User)
		}
		caps := proc.Capabilities
		if !reflect.DeepEqual(caps.Bounding, base.Capabilities.Bounding) {
			t.Fatalf("bounding set changed: %q", caps.Bounding)
		}
		wantEff := base.Capabilities.Effective
		if ec.Privileged {
			wantEff = base.Capabilities.Bounding
		}
		if !reflect.DeepEqual(caps.Effective, wantEff) || !reflect.DeepEqual(caps.Permitted, wantEff) {
			t.Fatalf("privileged %v: effective %q permitted %q, want %q", ec.Privileged, caps.Effective, caps.Permitted, wantEff)
		}
		if len(caps.Inheritable) != 0 || len(caps.Ambient) != 0 {
			t.Fatalf("privileged %v: inheritable %q ambient %q, want none (CVE-2022-29162)", ec.Privileged, caps.Inheritable, caps.Ambient)
		}
		if now, err := os.ReadFile(cfgPath); err != nil || !bytes.Equal(now, cfg) {
			t.Fatalf("the container's config.json changed (%v)", err)
		}
	})
}
