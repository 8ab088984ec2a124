package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// dirNames lists the names in dir (sorted; nil if missing).
func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// TestBadCommandLines: each bad command line gets exactly one error line on stderr and exit
// code 125, and changes nothing: the container list, the engine's container and host-channel
// directories and the place where channels would be made stay as they were.
func TestBadCommandLines(t *testing.T) {
	d := StartDaemon(t)
	rf := busyboxRoot
	base := d.TempDir() // every host channel path of the table is below it
	existing := filepath.Join(base, "existing")
	os.Mkdir(existing, 0o755)
	hp := filepath.Join(base, "made", "ch")
	envFile := filepath.Join(base, "bad.env")
	os.WriteFile(envFile, []byte("=novar\n"), 0o644)
	hooks := filepath.Join(base, "hooks.json")
	os.WriteFile(hooks, []byte(`{"prestart":[{"path":"relative"}]}`), 0o644)
	seccomp := filepath.Join(base, "seccomp.json")
	os.WriteFile(seccomp, []byte(`{not json`), 0o644)
	d.Must("create", "--name", "exists", "--external-rootfs", rf, "none", "sleep", "60")

	run := func(args ...string) []string {
		return append(append([]string{"run", "--rm"}, args...), "--external-rootfs", rf, "none", "true")
	}
	bad := [][]string{
		// rootfs, image, command
		{"run", "--external-rootfs", "/no/such/dir", "none", "true"},
		{"run", "--external-rootfs", "relative/dir", "none", "true"},
		{"run", "--external-rootfs", "/", "none", "true"},
		{"run", "--external-rootfs", "/etc/passwd", "none", "true"},
		{"run", "none", "true"},
		{"run", "--pull", "never", "--external-rootfs", rf, "busybox", "true"}, // an image that is not here
		{"run", "--external-rootfs", rf, "none"},
		{"run"},
		// names
		run("--name", "bad name"),
		run("--name", "a/b"),
		run("--name", "_x"),
		{"create", "--name", "exists", "--external-rootfs", rf, "none", "true"},
		// sizes and resources
		run("-m", "12zz"),
		run("-m", "1k"),
		run("-m", "-5m"),
		run("-m", "64m", "--memory-swap", "10m"),
		run("--memory-swap", "64m"),
		run("--cpus", "abc"),
		run("--cpus", "-1"),
		run("--cpu-shares", "1"),
		run("--pids-limit", "abc"),
		// policies and signals
		run("--restart", "sometimes"),
		run("--restart", "on-failure:x"),
		run("--restart", "always", "-d"),
		run("--runtime", "nosuch"),
		run("--stop-signal", "SIGNOPE"),
		run("--stop-signal", "99"),
		// mounts
		run("-v", "./relative:/x"),
		run("-v", "/tmp:relative"),
		run("-v", "/tmp:/x:zz"),
		run("-v", "/no/such/src:/x"),
		run("-v", "/tmp:/proc"),
		run("--tmpfs", "relative"),
		run("--tmpfs", "/t:size=abc"),
		run("--mount", "type=nfs,target=/x"),
		run("--mount", "type=bind,target=/x"),
		run("-v", "/tmp:/x", "--tmpfs", "/x"),
		// environment, user, workdir, hostname
		run("-e", "=x"),
		run("--env-file", "/no/such/file"),
		run("--env-file", envFile),
		run("-h", "bad_host!"),
		run("-u", ":"),
		run("-w", "relative"),
		// security
		run("--cap-add", "NOSUCH"),
		run("--security-opt", "nonsense"),
		run("--security-opt", "seccomp=/no/such.json"),
		run("--security-opt", "seccomp="+seccomp),
		run("--net", "bridge"),
		run("--nosuchflag"),
		// host channels
		run("--host-channel", "relative:/c"),
		run("--host-channel", existing+":/c"),
		run("--host-channel", hp+":/proc/x"),
		run("--host-channel", hp+":/c:rx"),
		run("--host-channel", hp+":/c:rw:0"),
		run("--host-channel", hp+":/c:rw:99999T"),
		run("--host-channel", hp+":/c", "-v", "/tmp:/c"),
		run("--host-channel", hp+":/c", "--host-channel", hp+":/d"),
		run("--host-channel", d.Graph+"/ch:/c"),
		// system-container options
		run("--user-remap", "1:2"),
		run("--user-remap", "0:0:0"),
		run("--ns-change-opt", "net"),
		run("--system-container", "--ns-change-opt", "bogus"),
		run("--env-target-file", "relative"),
		run("--env-target-file", "/../../etc/x"),
		run("--hook-spec", "/no/such.json"),
		run("--hook-spec", hooks),
		// other commands
		{"stop", "-t", "abc", "exists"},
		{"kill", "-s", "NOPE", "exists"},
		{"rename", "exists", "bad name"},
		{"logs", "--tail", "abc", "exists"},
		{"inspect", "-f", "{{.Nope", "exists"},
		{"ps", "--filter", "nosuch=1"},
		{"nosuchcommand"},
	}
	snapshot := func() [4]string {
		return [4]string{
			d.Must("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}"),
			strings.Join(dirNames(filepath.Join(d.Graph, "containers")), " "),
			strings.Join(dirNames(filepath.Join(d.Graph, "hostchannels")), " "),
			strings.Join(dirNames(base), " "),
		}
	}
	before := snapshot()
	for _, args := range bad {
		r := d.Isula(args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 125 || len(lines) != 1 || lines[0] == "" {
			t.Errorf("isula %s: want one error line and exit 125, got %s", strings.Join(args, " "), r)
		}
		if after := snapshot(); after != before {
			t.Fatalf("isula %s changed the state:\nbefore %q\nafter  %q", strings.Join(args, " "), before, after)
		}
	}
	// Valid command lines the daemon refuses for the state of things exit 1, as docker's
	// (internal/cli: 125 is for bad command lines and every error of create and run).
	refused := [][]string{
		{"start", "nosuch"},
		{"kill", "exists"},
		{"pause", "exists"},
		{"exec", "exists", "true"},
		{"rm", "nosuch"},
		{"stop", "nosuch"},
		{"attach", "exists"},
	}
	for _, args := range refused {
		r := d.Isula(args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 1 || len(lines) != 1 || lines[0] == "" {
			t.Errorf("isula %s: want one error line and exit 1, got %s", strings.Join(args, " "), r)
		}
		if after := snapshot(); after != before {
			t.Fatalf("isula %s changed the state:\nbefore %q\nafter  %q", strings.Join(args, " "), before, after)
		}
	}
	t.Logf("%d bad command lines refused with one line and 125, %d refused operations with one line and 1; no state change", len(bad), len(refused))
}
