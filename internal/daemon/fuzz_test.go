package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/container"
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
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","NetworkMode":"lan","IPv4Address":"10.1.1.5","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}}}`,
		`{"Config":{"Image":"none","Cmd":["sh"]},"HostConfig":{"ExternalRootfs":"/tmp","NetworkMode":"container:web","Dns":["10.0.0.53"],"ExtraHosts":["db:10.1.1.9"]}}`,
		`{"Config":{"Image":"none","Cmd":["a\u0000b"],"Hostname":"x\ny","User":":"},"HostConfig":{"ExternalRootfs":"/tmp\n"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	tmp := f.TempDir()
	d := &Daemon{
		cfg: Config{Graph: tmp + "/graph", State: tmp + "/state", DefaultRuntime: "runc",
			Runtimes: map[string]RuntimeConfig{"runc": {Path: "/usr/bin/runc"}}, CgroupParent: "/isulad", EngineName: "isulad"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	// --net NAME and container:REF are resolved against the store and the networks (empty).
	var err error
	if d.store, err = container.NewStore(tmp + "/graph/containers"); err != nil {
		f.Fatal(err)
	}
	if d.net, err = network.New(network.Config{ConfDir: tmp + "/cni", DataDir: tmp + "/graph/network", RunDir: tmp + "/state/netns"}, d.log); err != nil {
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

// FuzzExecRequest: the exec request decode (the daemon then runs the exec in the shim).
func FuzzExecRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"Env":["A=b"],"User":"0:0","WorkingDir":"/"}`, `{"Cmd":null}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ec types.ExecConfig
		if err := decodeStrict(data, &ec); err != nil {
			return
		}
		if _, err := json.Marshal(&ec); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
