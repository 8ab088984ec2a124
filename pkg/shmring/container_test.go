package shmring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/testenv"
)

// TestAcrossContainerBoundary exchanges messages between this process and a
// process in a real container (raw runc) through a host channel: a
// size-limited tmpfs mounted here and bind-mounted into the container. The
// container runs the static isula-ring binary as "echo h2c c2h"; the host
// sends checksummed messages and verifies what comes back.
func TestAcrossContainerBoundary(t *testing.T) {
	testenv.Root(t, "mounts a tmpfs and runs runc")
	runc := testenv.LookPath(t, "runc")
	goBin := testenv.LookPath(t, "go") // builds the container's helper
	tmp := t.TempDir()
	bundle := filepath.Join(tmp, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	channel := filepath.Join(tmp, "channel")
	runRoot := filepath.Join(tmp, "runc")
	for _, d := range []string{rootfs, channel, runRoot, filepath.Join(rootfs, "proc"),
		filepath.Join(rootfs, "dev"), filepath.Join(rootfs, "sys"), filepath.Join(rootfs, "ch")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The helper: the real tool, statically linked.
	build := exec.Command(goBin, "build", "-o", filepath.Join(rootfs, "isula-ring"), "../../cmd/isula-ring")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build isula-ring: %v\n%s", err, out)
	}

	// The host channel.
	if err := unix.Mount("tmpfs", channel, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=16m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(channel, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount channel: %v", err)
		}
	})

	// Host ends of the rings, made before the container starts.
	ho := fastOpts(Producer)
	ho.Mode = 0o666
	h2c, err := Create(filepath.Join(channel, "h2c.ring"), 1<<20, ho)
	if err != nil {
		t.Fatal(err)
	}
	defer h2c.Close()
	ho.Role = Consumer
	c2h, err := Create(filepath.Join(channel, "c2h.ring"), 1<<20, ho)
	if err != nil {
		t.Fatal(err)
	}
	defer c2h.Close()

	// A full tmpfs fails at Create, not later with SIGBUS.
	if _, err := Create(filepath.Join(channel, "huge.ring"), 16<<20, nil); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("ring larger than the channel: %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(channel); len(ents) != 2 {
		t.Errorf("channel holds %d entries after failed create, want 2", len(ents))
	}

	id := fmt.Sprintf("shmring-test-%016x", randU64())
	cgroup := "/" + id
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = []string{"/isula-ring", "echo", "/ch/h2c.ring", "/ch/c2h.ring", "--peer-timeout", "2s"}
	spec.Root.Path = "rootfs"
	spec.Root.Readonly = true
	spec.Hostname = "shmring"
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: "/ch", Type: "bind", Source: channel,
		Options: []string{"rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"},
	})
	spec.Linux.CgroupsPath = cgroup
	if raw, err = json.MarshalIndent(&spec, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(runc, "--root", runRoot, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		exec.Command(runc, "--root", runRoot, "kill", id, "KILL").Run()
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
		if out, err := exec.Command(runc, "--root", runRoot, "delete", "-f", id).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "does not exist") {
			t.Errorf("runc delete: %v\n%s", err, out)
		}
		// runc delete must have removed the container's cgroups.
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroup)
		more, _ := filepath.Glob("/sys/fs/cgroup/*/*" + cgroup)
		for _, d := range append(dirs, more...) {
			t.Errorf("cgroup %s left behind", d)
			unix.Rmdir(d)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 20000
	sbuf := make([]byte, 70000)
	rbuf := make([]byte, 70000)
	recvOne := func(seq uint64) {
		t.Helper()
		k, err := c2h.RecvContext(ctx, rbuf)
		if err != nil {
			t.Fatalf("recv echo %d: %v\ncontainer stdout: %s\nstderr: %s", seq, err, stdout.String(), stderr.String())
		}
		if err := checkMsg(rbuf[:k], seq); err != nil {
			t.Fatal(err)
		}
	}
	// Keep up to 8 messages in flight so both directions wait and wake.
	for seq := uint64(0); seq < n; seq++ {
		if err := h2c.SendContext(ctx, makeMsg(sbuf, seq)); err != nil {
			t.Fatalf("send %d: %v\nstderr: %s", seq, err, stderr.String())
		}
		if seq >= 8 {
			recvOne(seq - 8)
		}
	}
	for seq := uint64(n - 8); seq < n; seq++ {
		recvOne(seq)
	}
	// Closing our producer end makes the container's echo see EOF, close
	// its producer end and exit 0; we then see EOF too.
	if err := h2c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c2h.RecvContext(ctx, rbuf); err != io.EOF {
		t.Fatalf("after close: %v, want io.EOF", err)
	}
	select {
	case err := <-waited:
		waited <- err
		if err != nil {
			t.Fatalf("container: %v\nstderr: %s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("container did not exit after EOF")
	}
}
