package statedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the checks are about root-owned directories")
	}
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := mk("good", 0o700)
	worldWritable := mk("ww", 0o777)
	groupWritable := mk("gw", 0o770)
	sticky := mk("sticky", 0o777|os.ModeSticky)
	underSticky := mk("sticky/graph", 0o700)
	open := mk("open", 0o777)
	underOpen := mk("open/graph", 0o700)
	foreign := mk("foreign", 0o700)
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	underForeign := mk("foreign/graph", 0o700)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		want string // "" means accepted
	}{
		{good, ""},
		{link, ""},
		{underSticky, ""},
		{worldWritable, "is writable by group or others (mode 0777"},
		{groupWritable, "is writable by group or others (mode 0770"},
		{sticky, "is writable by group or others (mode 1777"},
		{underOpen, `its parent "` + open + `" is writable by group or others`},
		{foreign, "is owned by uid 65534"},
		{underForeign, `its parent "` + foreign + `" is owned by uid 65534`},
		{file, "is not a directory"},
		{filepath.Join(base, "missing"), "no such file"},
	} {
		err := Check(c.dir)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%s) = %v, want accepted", c.dir, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir)):
			t.Errorf("Check(%s) = %v, want an error naming it and saying %q", c.dir, err, c.want)
		}
	}
	if r, err := Resolve(link); err != nil || r != good {
		t.Errorf("Resolve(%s) = %q, %v; want %q", link, r, err, good)
	}
	// Ensure makes what is missing and refuses what another user could write.
	made := filepath.Join(base, "new", "graph", "hostchannels")
	if err := Ensure(made); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(made); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("Ensure made %v, %v; want mode 0700", fi.Mode(), err)
	}
	if err := Ensure(filepath.Join(worldWritable, "sub")); err == nil || !strings.Contains(err.Error(), worldWritable) {
		t.Errorf("Ensure below a world-writable directory: %v, want a refusal naming it", err)
	}
}
