package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVolumes(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	if out := d.Must("volume", "create", "--label", "tier=db", "data"); out != "data" {
		t.Fatalf("create: %q", out)
	}
	mp := d.Must("volume", "inspect", "-f", "{{.Mountpoint}} {{.Driver}} {{.Labels.tier}}", "data")
	if mp != filepath.Join(d.Graph, "volumes", "data", "_data")+" local db" {
		t.Fatalf("inspect: %q", mp)
	}
	// Two containers share it; a third names a volume that does not exist yet: made.
	w := d.Must("run", "-d", "-v", "data:/data", "--external-rootfs", rf, "none", "sh", "-c", "echo written > /data/f; exec sleep 1000")
	WaitFor(t, "the write", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(d.Graph, "volumes/data/_data/f"))
		return string(b) == "written\n"
	})
	if out := d.Must("run", "--rm", "-v", "data:/in:ro", "--external-rootfs", rf, "none", "cat", "/in/f"); out != "written" {
		t.Fatalf("second container reads %q", out)
	}
	if r := d.Isula("run", "--rm", "-v", "data:/in:ro", "--external-rootfs", rf, "none", "sh", "-c", "echo x > /in/g"); r.Code == 0 {
		t.Fatalf(":ro volume written: %s", r)
	}
	d.Must("run", "--rm", "-v", "fresh:/f", "--external-rootfs", rf, "none", "true")
	if ls := d.Must("volume", "ls", "-q"); ls != "data\nfresh" {
		t.Fatalf("ls: %q", ls)
	}
	if out := d.Must("volume", "inspect", "-f", "{{json .UsedBy}}", "data"); !strings.Contains(out, `"`) {
		t.Fatalf("UsedBy: %s", out)
	}
	// In use: refused with one line; the data outlives the container.
	r := d.Isula("volume", "rm", "data")
	if r.Code != 1 || !strings.Contains(r.Stderr, "in use") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("rm in use: %s", r)
	}
	d.Must("rm", "-f", w)
	// A create refused at validation makes no volume.
	if r := d.Isula("run", "-v", "never:/x", "--cap-add", "NOPE", "--external-rootfs", rf, "none", "true"); r.Code != 125 {
		t.Fatalf("bad create: %s", r)
	}
	if _, err := os.Stat(filepath.Join(d.Graph, "volumes", "never")); err == nil {
		t.Fatalf("a refused create left its volume")
	}
	// Across a daemon restart; then prune removes both unused ones.
	d.Stop()
	d.Start()
	if out := d.Must("run", "--rm", "-v", "data:/d", "--external-rootfs", rf, "none", "cat", "/d/f"); out != "written" {
		t.Fatalf("after restart: %q", out)
	}
	keep := d.Must("create", "-v", "data:/d", "--external-rootfs", rf, "none", "true")
	out := d.Must("volume", "prune", "-f")
	if out != "Deleted Volumes:\nfresh" {
		t.Fatalf("prune: %q", out)
	}
	d.Must("rm", keep)
	d.Must("volume", "rm", "data")
	if ents, _ := os.ReadDir(filepath.Join(d.Graph, "volumes")); len(ents) != 0 {
		t.Fatalf("left in volumes/: %v", ents)
	}
	for _, bad := range [][]string{{"volume", "create", "a/b"}, {"volume", "create", "x", "y"}, {"volume", "ls", "--format", "{{.Nope"}} {
		if r := d.Isula(bad...); r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: %s", bad, r)
		}
	}
	if r := d.Isula("volume", "inspect", "nosuch"); r.Code != 1 || !strings.Contains(r.Stderr, "no such volume") {
		t.Errorf("inspect missing: %s", r)
	}
	if r := d.Isula("volume", "rm", "-f", "nosuch"); r.Code != 0 {
		t.Errorf("rm -f missing: %s", r)
	}
}
