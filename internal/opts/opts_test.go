package opts

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/errdefs"
)

func checkErr(t *testing.T, in string, err error, flag string) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("%q: error %v is not an invalid argument", in, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("%q: multi-line error %q", in, msg)
	}
	if flag != "" && !strings.Contains(msg, flag) {
		t.Errorf("%q: error %q does not name %s", in, msg, flag)
	}
}

func TestParseMemory(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1": 1, "512": 512, "512b": 512, "1k": 1024, "1K": 1024, "1kb": 1024, "1KiB": 1024,
		"16m": 16 << 20, "1g": 1 << 30, "1G": 1 << 30, "1.5g": 3 << 29, "2t": 2 << 40, "1p": 1 << 50,
		"0.5k": 512, "1.0001k": 1024, "007m": 7 << 20,
	}
	for in, want := range good {
		got, err := ParseMemory(in)
		if err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", " 1m", "1m ", "1 m", "-1", "+1", "-1m", "1e3", "1e3m", ".5m", "1.m", "1x", "m",
		"1mm", "9999999999999999999", "8192p", "1,5g", "0x10", "1_000"} {
		_, err := ParseMemory(in)
		if err == nil {
			t.Errorf("ParseMemory(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--memory")
	}
	if n, err := ParseMemorySwap("-1"); n != -1 || err != nil {
		t.Error("swap -1")
	}
	if n, err := ParseMemorySwap("1g"); n != 1<<30 || err != nil {
		t.Error("swap 1g")
	}
	for _, in := range []string{"-2", "-1m", "x"} {
		_, err := ParseMemorySwap(in)
		if err == nil {
			t.Errorf("ParseMemorySwap(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--memory-swap")
	}
}

func TestParseCPUs(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1e9, "1.5": 15e8, "0.01": 1e7, "2.000000000000": 2e9, "0.000000001": 1, "64": 64e9}
	for in, want := range good {
		got, err := ParseCPUs(in)
		if err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1e2", ".5", "1.", "0.0000000001", "abc", " 1", "9999999999"} {
		_, err := ParseCPUs(in)
		if err == nil {
			t.Errorf("ParseCPUs(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--cpus")
	}
}

func TestParseSignal(t *testing.T) {
	good := map[string]syscall.Signal{
		"TERM": syscall.SIGTERM, "SIGTERM": syscall.SIGTERM, "sigkill": syscall.SIGKILL, "Kill": 9, "9": 9, "1": 1,
		"64": 64, "RTMIN": 34, "SIGRTMIN+3": 37, "rtmin+30": 64, "SIGRTMAX": 64, "RTMAX-1": 63, "RTMAX-30": 34,
		"SIGWINCH": syscall.SIGWINCH, "usr1": syscall.SIGUSR1, "09": 9,
	}
	for in, want := range good {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-9", "+9", "SIG", "SIGFOO", "RTMIN+31", "RTMIN-1", "RTMAX+1", "RTMAX-31",
		"RTMIN+", "RTMIN+x", "9x", " 9", "SIG SIGKILL", "1000", "SIGSIGKILL"} {
		_, err := ParseSignal(in)
		if err == nil {
			t.Errorf("ParseSignal(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--signal")
	}
	_, err := ParseSignal("FOO")
	if err = WithFlag(err, "--stop-signal"); !strings.Contains(err.Error(), "--stop-signal") {
		t.Error(err)
	}
	names := map[syscall.Signal]string{9: "SIGKILL", 15: "SIGTERM", 34: "SIGRTMIN", 37: "SIGRTMIN+3", 64: "SIGRTMAX", 32: "32"}
	for s, want := range names {
		if got := SignalName(s); got != want {
			t.Errorf("SignalName(%d) = %q", s, got)
		}
	}
	for i := 1; i <= 64; i++ {
		if got, err := ParseSignal(SignalName(syscall.Signal(i))); err != nil || int(got) != i {
			t.Errorf("round trip %d: %d %v", i, got, err)
		}
	}
}

func TestParseRestartPolicy(t *testing.T) {
	good := map[string]types.RestartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"}, "on-failure": {Name: "on-failure"},
		"on-failure:3": {Name: "on-failure", MaximumRetryCount: 3}, "on-failure:0": {Name: "on-failure"},
		"unless-stopped": {Name: "unless-stopped"}, "on-reboot": {Name: "on-reboot"},
	}
	for in, want := range good {
		got, err := ParseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseRestartPolicy(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"yes", "Always", "always:3", "on-failure:", "on-failure:-1", "on-failure:x", "on-failure:1:2",
		"on-failure:99999999999", "no:0", " no", "on-failure:+1"} {
		_, err := ParseRestartPolicy(in)
		if err == nil {
			t.Errorf("ParseRestartPolicy(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--restart")
	}
}

func TestValidateName(t *testing.T) {
	for _, in := range []string{"a", "A1", "web_1.x-y", "/abc", "0"} {
		if err := ValidateName(in); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, in := range []string{"", "/", "//a", "_a", ".a", "-a", "a b", "a/b", "a:b", "é", strings.Repeat("a", 256)} {
		err := ValidateName(in)
		if err == nil {
			t.Errorf("ValidateName(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--name")
	}
	if n, _ := NormalizeName("/x"); n != "x" {
		t.Error(n)
	}
}

func TestParseVolume(t *testing.T) {
	good := map[string]types.Mount{
		"/a:/b":               {Type: "bind", Source: "/a", Target: "/b"},
		"/a/:/b/./c/..":       {Type: "bind", Source: "/a", Target: "/b"},
		"/:/host:ro":          {Type: "bind", Source: "/", Target: "/host", ReadOnly: true},
		"/a:/b:rw,rshared":    {Type: "bind", Source: "/a", Target: "/b", Propagation: "rshared"},
		"/a:/b:Z,ro,rprivate": {Type: "bind", Source: "/a", Target: "/b", ReadOnly: true, Propagation: "rprivate"},
		"/a b:/c d:z":         {Type: "bind", Source: "/a b", Target: "/c d"},
		"/a//x:/b":            {Type: "bind", Source: "/a/x", Target: "/b"},
		"vol:/data":           {Type: "volume", Source: "vol", Target: "/data"},
		"my_vol.1:/d:ro":      {Type: "volume", Source: "my_vol.1", Target: "/d", ReadOnly: true},
	}
	for in, want := range good {
		got, err := ParseVolume(in)
		if err != nil || got != want {
			t.Errorf("ParseVolume(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "/a", "a:/b", "/a:b", "/a:/", "/a:/b:", "/a:/b:ro,rw", "/a:/b:ro,", "/a:/b:x",
		"/a:/b:z,Z", "/a:/b:shared,slave", "/a:/b:ro:rw", ":/b", "/a:", "/a\x00:/b", "/a:/b:nocopy", "./vol:/data", "-vol:/data", "/a:/b/..",
		"/a:/b:RO"} {
		_, err := ParseVolume(in)
		if err == nil {
			t.Errorf("ParseVolume(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--volume")
	}
}

func TestParseMount(t *testing.T) {
	good := map[string]types.Mount{
		"type=bind,source=/a,target=/b":                                   {Type: "bind", Source: "/a", Target: "/b"},
		"type=bind,src=/a,dst=/b,readonly":                                {Type: "bind", Source: "/a", Target: "/b", ReadOnly: true},
		"type=bind,src=/a,destination=/b,ro=true,bind-propagation=rslave": {Type: "bind", Source: "/a", Target: "/b", ReadOnly: true, Propagation: "rslave"},
		"TYPE=bind,Source=/a,Target=/b,readonly=false":                    {Type: "bind", Source: "/a", Target: "/b"},
		"type=tmpfs,target=/t":                                            {Type: "tmpfs", Target: "/t"},
		"type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777":             {Type: "tmpfs", Target: "/t", TmpfsSize: 64 << 20, TmpfsMode: 0o1777},
		`type=bind,"source=/a,b",target=/c`:                               {Type: "bind", Source: "/a,b", Target: "/c"},
	}
	for in, want := range good {
		got, err := ParseMount(in)
		if err != nil || got != want {
			t.Errorf("ParseMount(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "type=bind", "type=bind,target=/b", "source=/a,target=/b", "type=volume,src=v,dst=/b",
		"type=bind,src=a,dst=/b", "type=bind,src=/a,dst=b", "type=bind,src=/a,dst=/", "type=tmpfs,src=/a,dst=/b",
		"type=tmpfs,dst=/b,tmpfs-size=0", "type=tmpfs,dst=/b,tmpfs-size=-1", "type=tmpfs,dst=/b,tmpfs-mode=8",
		"type=tmpfs,dst=/b,tmpfs-mode=0", "type=tmpfs,dst=/b,tmpfs-mode=17777", "type=bind,src=/a,dst=/b,tmpfs-size=1m",
		"type=tmpfs,dst=/b,bind-propagation=shared", "type=bind,src=/a,dst=/b,bind-propagation=x", "type=bind,src=/a,dst=/b,foo=1",
		"type=bind,src=/a,dst=/b,readonly=yes", "type=bind,type=bind,src=/a,dst=/b", "type=bind,src=/a,source=/c,dst=/b",
		"type=bind,src=/a,dst=/b,", "type,src=/a,dst=/b", "type=bind,src=/a,dst=/b\n", `type=bind,"src=/a,dst=/b`, "type=x,dst=/b"} {
		_, err := ParseMount(in)
		if err == nil {
			t.Errorf("ParseMount(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--mount")
	}
}

func TestParseTmpfs(t *testing.T) {
	good := map[string]types.Mount{
		"/t":                                {Type: "tmpfs", Target: "/t"},
		"/t/":                               {Type: "tmpfs", Target: "/t"},
		"/run:rw,noexec,nosuid,size=65536k": {Type: "tmpfs", Target: "/run", TmpfsSize: 64 << 20},
		"/t:size=1g,mode=755,ro":            {Type: "tmpfs", Target: "/t", TmpfsSize: 1 << 30, TmpfsMode: 0o755, ReadOnly: true},
	}
	for in, want := range good {
		got, err := ParseTmpfs(in)
		if err != nil || got != want {
			t.Errorf("ParseTmpfs(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "t", "/", "/t:", "/t:size=", "/t:size=0", "/t:size=50%", "/t:mode=9", "/t:ro,rw",
		"/t:size=1m,size=2m", "/t:exec", "/t:uid=1", "/t:ro=1", "/t:a:b", "/t:,ro"} {
		_, err := ParseTmpfs(in)
		if err == nil {
			t.Errorf("ParseTmpfs(%q) accepted", in)
			continue
		}
		checkErr(t, in, err, "--tmpfs")
	}
}

func TestParseEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "HOME" {
			return "/root", true
		}
		return "", false
	}
	got, err := parseEnv([]string{"A=1", "B=", "HOME", "UNSET", "C=x=y"}, lookup)
	if err != nil || strings.Join(got, "|") != "A=1|B=|HOME=/root|C=x=y" {
		t.Fatalf("%q %v", got, err)
	}
	for _, in := range []string{"=x", "", "A B=1", "A\x00=1", "A=\x00"} {
		_, err := parseEnv([]string{in}, lookup)
		if err == nil {
			t.Errorf("%q accepted", in)
			continue
		}
		checkErr(t, in, err, "--env")
	}
}

func TestParseEnvFile(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "HOME" {
			return "/root", true
		}
		return "", false
	}
	in := "\xEF\xBB\xBF# comment\n\nA=1\n  B=two words \r\nHOME\nUNSET\n\t# indented comment\nC=\"q\"\nD=\n"
	got, err := parseEnvReader(strings.NewReader(in), "f.env", lookup)
	if err != nil || strings.Join(got, "|") != `A=1|B=two words |HOME=/root|C="q"|D=` {
		t.Fatalf("%q %v", got, err)
	}
	bad := map[string]string{
		"A=1\n=2\n":      "f.env:2",
		"A B=1\n":        "f.env:1",
		"A=1\n\xff=1\n":  "f.env:2",
		"A=1\nB\x00=1\n": "f.env:2",
		"X=" + strings.Repeat("a", MaxEnvFileLine+1): "f.env:1",
	}
	for in, where := range bad {
		_, err := parseEnvReader(strings.NewReader(in), "f.env", lookup)
		if err == nil {
			t.Errorf("%q accepted", in)
			continue
		}
		checkErr(t, in, err, where)
	}
	_, err = ParseEnvFile("/nonexistent/env")
	if err == nil {
		t.Fatal("missing file accepted")
	}
	checkErr(t, "", err, "/nonexistent/env")
}

func TestUserRemapAndMisc(t *testing.T) {
	if u, g, s, err := ParseUserRemap("100000:100000:65535"); err != nil || u != 100000 || g != 100000 || s != 65535 {
		t.Error(u, g, s, err)
	}
	for _, in := range []string{"", "1:2", "1:2:0", "1:2:65536", "a:1:1", "-1:1:1", "4294967295:1:1", "1:2:3:4"} {
		if _, _, _, err := ParseUserRemap(in); err == nil {
			t.Errorf("%q accepted", in)
		} else {
			checkErr(t, in, err, "--user-remap")
		}
	}
	if c, err := NormalizeCapability("--cap-add", "net_admin"); err != nil || c != "CAP_NET_ADMIN" {
		t.Error(c, err)
	}
	if _, err := NormalizeCapability("--cap-add", "FOO"); err == nil {
		t.Error("FOO")
	}
	for _, ok := range []string{"seccomp=unconfined", "seccomp=/x.json", "no-new-privileges", "no-new-privileges=true", "no-new-privileges:false"} {
		if err := ValidateSecurityOpt(ok); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range []string{"seccomp=rel.json", "apparmor=x", "no-new-privileges=yes", "seccomp"} {
		if err := ValidateSecurityOpt(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseNsChangeOpt("net,ipc"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "net,net", "pid", "net,"} {
		if _, err := ParseNsChangeOpt(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func baseReq() types.CreateRequest {
	return types.CreateRequest{
		Config:     types.Config{Image: "none", Cmd: []string{"sh"}},
		HostConfig: types.HostConfig{ExternalRootfs: "/rootfs"},
	}
}

func TestValidateCreate(t *testing.T) {
	NumCPU = func() int { return 4 }
	r := baseReq()
	r.Name = "/web"
	r.HostConfig.CapAdd = []string{"sys_time"}
	if err := ValidateCreate(&r); err != nil {
		t.Fatal(err)
	}
	if r.Name != "web" || r.HostConfig.CapAdd[0] != "CAP_SYS_TIME" || r.HostConfig.RestartPolicy.Name != "no" {
		t.Fatal(r)
	}
	neg := int64(-5)
	bad := map[string]func(*types.CreateRequest){
		"image none":   func(r *types.CreateRequest) { r.HostConfig.ExternalRootfs = "" },
		"image":        func(r *types.CreateRequest) { r.Config.Image = "Busy Box" },
		"rel rootfs":   func(r *types.CreateRequest) { r.HostConfig.ExternalRootfs = "rootfs" },
		"name":         func(r *types.CreateRequest) { r.Name = "a b" },
		"memory small": func(r *types.CreateRequest) { r.HostConfig.Memory = 1024 },
		"swap no mem":  func(r *types.CreateRequest) { r.HostConfig.MemorySwap = 1 << 30 },
		"swap < mem":   func(r *types.CreateRequest) { r.HostConfig.Memory = 1 << 30; r.HostConfig.MemorySwap = 1 << 20 },
		"cpus":         func(r *types.CreateRequest) { r.HostConfig.NanoCPUs = 5e9 },
		"cpus small":   func(r *types.CreateRequest) { r.HostConfig.NanoCPUs = 1 },
		"shares":       func(r *types.CreateRequest) { r.HostConfig.CPUShares = 1 },
		"pids":         func(r *types.CreateRequest) { r.HostConfig.PidsLimit = &neg },
		"rm restart": func(r *types.CreateRequest) {
			r.HostConfig.AutoRemove = true
			r.HostConfig.RestartPolicy.Name = "always"
		},
		"restart name": func(r *types.CreateRequest) { r.HostConfig.RestartPolicy.Name = "sometimes" },
		"net":          func(r *types.CreateRequest) { r.HostConfig.NetworkMode = "bridge" },
		"ns no sys":    func(r *types.CreateRequest) { r.HostConfig.NsChangeOpt = "net" },
		"remap no sys": func(r *types.CreateRequest) { r.HostConfig.UserRemap = "1:1:10" },
		"dup mounts": func(r *types.CreateRequest) {
			r.HostConfig.Binds = []string{"/a:/x"}
			r.HostConfig.Tmpfs = map[string]string{"/x": ""}
		},
		"bad bind":      func(r *types.CreateRequest) { r.HostConfig.Binds = []string{"a:/x"} },
		"workdir":       func(r *types.CreateRequest) { r.Config.WorkingDir = "rel" },
		"env":           func(r *types.CreateRequest) { r.Config.Env = []string{"NOVALUE"} },
		"stop signal":   func(r *types.CreateRequest) { r.Config.StopSignal = "SIGFOO" },
		"log opt":       func(r *types.CreateRequest) { r.HostConfig.LogConfig.Config = map[string]string{"max-size": "0"} },
		"log opt key":   func(r *types.CreateRequest) { r.HostConfig.LogConfig.Config = map[string]string{"foo": "1"} },
		"cgroup parent": func(r *types.CreateRequest) { r.HostConfig.CgroupParent = "/a/../../b" },
		"hostname":      func(r *types.CreateRequest) { r.Config.Hostname = "-bad" },
		"cap":           func(r *types.CreateRequest) { r.HostConfig.CapDrop = []string{"NOPE"} },
		"security":      func(r *types.CreateRequest) { r.HostConfig.SecurityOpt = []string{"label=x"} },
		"hook rel":      func(r *types.CreateRequest) { r.HostConfig.HookSpec = "hooks.json" },
		"tmpfs mount api": func(r *types.CreateRequest) {
			r.HostConfig.Mounts = []types.Mount{{Type: "tmpfs", Source: "/x", Target: "/y"}}
		},
	}
	for name, f := range bad {
		r := baseReq()
		f(&r)
		err := ValidateCreate(&r)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		checkErr(t, name, err, "")
	}
}
