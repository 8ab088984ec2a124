package hostchannel

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/testenv"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func needRoot(t *testing.T) {
	t.Helper()
	testenv.Root(t, "mounts")
}

// sandbox returns a fresh base directory (no symlinks in its path) and registers a cleanup
// that lazily unmounts everything at or below it, deepest first, even when the test fails.
func sandbox(t *testing.T) string {
	t.Helper()
	needRoot(t)
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAllBelow(t, base) })
	return base
}

func unmountAllBelow(t *testing.T, base string) {
	for range 100 {
		ms, err := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) { return !within(i.Mountpoint, base), false })
		if err != nil || len(ms) == 0 {
			return
		}
		sort.Slice(ms, func(i, j int) bool { return len(ms[i].Mountpoint) > len(ms[j].Mountpoint) || ms[i].ID > ms[j].ID })
		for _, m := range ms {
			if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil {
				t.Logf("cleanup: unmount %q: %v", m.Mountpoint, err)
			}
		}
	}
}

func newManager(t *testing.T, base string) *Manager {
	t.Helper()
	m, err := NewManager(filepath.Join(base, "records"), filepath.Join(base, "mounts"), slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func channel(host, ctr string, size int64) types.HostChannel {
	return types.HostChannel{PathOnHost: host, PathInContainer: ctr, Permissions: "rw", Size: size}
}

func mountsOn(t *testing.T, p string) []*mountinfo.Info {
	t.Helper()
	ms, err := mountsAt(p)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func records(t *testing.T, m *Manager) []string {
	t.Helper()
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestLifecycle(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "made parent", "sub", "ch one") // spaces: mountinfo escapes them
	ch := channel(hp, "/ch", MiB)

	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]fs.FileMode{hp: 0o700, filepath.Dir(hp): 0o755, filepath.Join(base, "made parent"): 0o755} {
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want a directory with mode %o", p, fi.Mode(), err, mode)
		}
	}
	if len(mountsOn(t, hp)) != 0 {
		t.Fatal("create mounted something")
	}
	if got := m.Owners(); len(got["c1"]) != 1 || got["c1"][0] != ch {
		t.Fatalf("Owners = %v", got)
	}
	if mounted, _ := m.Status(ch); mounted {
		t.Fatal("Status: mounted before Mount")
	}

	if mounted, err := m.Mount("c1", ch); err != nil || !mounted {
		t.Fatalf("Mount = %v, %v; want mounted", mounted, err)
	}
	ms := mountsOn(t, hp)
	if len(ms) != 1 || ms[0].FSType != "tmpfs" {
		t.Fatalf("mounts at %q: %+v", hp, ms)
	}
	opts := "," + ms[0].Options + ","
	for _, o := range []string{"nosuid", "nodev", "noexec"} {
		if !strings.Contains(opts, ","+o+",") {
			t.Errorf("mount options %q lack %s", ms[0].Options, o)
		}
	}
	// tmpfs shows mode= only when it is not its default 1777; the stat below checks it.
	if vfs := "," + ms[0].VFSOptions + ","; !strings.Contains(vfs, ",size=1024k,") || (strings.Contains(vfs, "mode=") && !strings.Contains(vfs, ",mode=1777,")) {
		t.Errorf("super options %q, want size=1024k and mode 1777", ms[0].VFSOptions)
	}
	fi, err := os.Stat(hp)
	if err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o777|fs.ModeSticky {
		t.Fatalf("tmpfs root mode %v, %v; want 1777", fi.Mode(), err)
	}
	// Mount again is a no-op.
	if mounted, err := m.Mount("c1", ch); err != nil || mounted {
		t.Fatalf("second Mount = %v, %v; want a no-op", mounted, err)
	}
	if ms2 := mountsOn(t, hp); len(ms2) != 1 || ms2[0].ID != ms[0].ID {
		t.Fatalf("second Mount changed the mounts: %+v", ms2)
	}
	// The size limit holds: writing stops with ENOSPC after exactly 1 MiB.
	f, err := os.Create(filepath.Join(hp, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var written int64
	for {
		n, err := f.Write(buf)
		written += int64(n)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write: %v", err)
			}
			break
		}
		if written > 2*MiB {
			t.Fatal("wrote more than twice the limit")
		}
	}
	f.Close()
	if written != MiB {
		t.Errorf("wrote %d bytes before ENOSPC, want %d", written, MiB)
	}
	if mounted, used := m.Status(ch); !mounted || used != MiB {
		t.Errorf("Status = %v, %d; want true, %d", mounted, used, MiB)
	}
	// Executables are not executable there.
	if err := os.WriteFile(filepath.Join(hp, "fill"), []byte("#!/bin/sh\necho pwned\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(filepath.Join(hp, "fill")).Run(); err == nil {
		t.Error("a file in the channel could be executed")
	}

	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if len(mountsOn(t, hp)) != 0 || exists(hp) || exists(filepath.Join(base, "made parent")) {
		t.Fatalf("leftovers after Remove: mounts %v, dir %v, parent %v", mountsOn(t, hp), exists(hp), exists(filepath.Join(base, "made parent")))
	}
	if r := records(t, m); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if mounted, used := m.Status(ch); mounted || used != 0 {
		t.Fatal("Status after Remove")
	}
}

func TestRemoveKeepsExistingParentsAndNonEmptyMadeParents(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "p1", "p2", "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "p1", "other"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(base, "p1", "p2")) || !exists(filepath.Join(base, "p1", "other")) || !exists(base) {
		t.Fatal("Remove removed the wrong things")
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	for name, mk := range map[string]func(p string) error{
		"dir":      func(p string) error { return os.Mkdir(p, 0o755) },
		"file":     func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"symlink":  func(p string) error { return os.Symlink(filepath.Join(base, "target"), p) },
		"dangling": func(p string) error { return os.Symlink("/nonexistent/x", p) },
	} {
		p := filepath.Join(base, name)
		if err := mk(p); err != nil {
			t.Fatal(err)
		}
		err := m.Create("c1", channel(p, "/ch", MiB))
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), fmt.Sprintf("host path %q already exists", p)) {
			t.Errorf("%s: Create = %v, want already exists", name, err)
		}
		if _, err := Validate([]types.HostChannel{channel(p, "/ch", MiB)}, CheckContext{}); !errors.Is(err, ErrExists) {
			t.Errorf("%s: Validate = %v, want ErrExists", name, err)
		}
	}
	if r := records(t, m); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}
}

func TestSymlinkOrFileParentRefused(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	target := filepath.Join(base, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ hp, msg string }{
		{filepath.Join(base, "link", "ch"), "is a symbolic link"},
		{filepath.Join(base, "link", "deeper", "ch"), "is a symbolic link"},
		{filepath.Join(base, "file", "ch"), "is not a directory"},
	} {
		ch := channel(c.hp, "/ch", MiB)
		if _, err := Validate([]types.HostChannel{ch}, CheckContext{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Validate(%s) = %v", c.hp, err)
		}
		if err := m.Create("c1", ch); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Create(%s) = %v", c.hp, err)
		}
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Fatalf("something was made through the symlink: %v", ents)
	}
	if r := records(t, m); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}
}

func TestConcurrentCreate(t *testing.T) {
	base := sandbox(t)
	shared := newManager(t, base)
	hp := filepath.Join(base, "race", "ch")
	ch := channel(hp, "/ch", MiB)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		m := shared
		if i%2 == 1 { // half of them through their own Manager: exclusivity comes from the file system
			m = newManager(t, base)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = m.Create(fmt.Sprintf("c%d", i), ch)
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("both %d and %d won", winner, i)
			}
			winner = i
		} else if !errors.Is(err, ErrExists) {
			t.Errorf("create %d: %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody won")
	}
	owners := shared.Owners()
	if len(owners) != 1 || len(owners[fmt.Sprintf("c%d", winner)]) != 1 {
		t.Fatalf("Owners = %v", owners)
	}
	if err := shared.Remove(fmt.Sprintf("c%d", winner), ch); err != nil {
		t.Fatal(err)
	}
	if exists(hp) || exists(filepath.Dir(hp)) {
		t.Fatal("leftovers")
	}
}

// Issue 10, item 16: a new container's rootfs may not contain, or lie in, a channel.
func TestRootfsConflicts(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	ch := channel(filepath.Join(base, "rootfs", "srv", "ch"), "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("c1", ch) })
	for _, rootfs := range []string{filepath.Join(base, "rootfs"), ch.PathOnHost, filepath.Join(ch.PathOnHost, "x")} {
		if err := m.RootfsConflicts(rootfs); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "c1") {
			t.Errorf("RootfsConflicts(%s) = %v, want a refusal naming c1", rootfs, err)
		}
	}
	if err := m.RootfsConflicts(filepath.Join(base, "rootfs2")); err != nil {
		t.Errorf("an unrelated rootfs: %v", err)
	}
}

func TestCrossContainerConflicts(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	a := channel(filepath.Join(base, "x", "a"), "/a", MiB)
	if err := m.Create("ctr-a", a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("ctr-a", a) })
	err := m.Create("ctr-b", channel(filepath.Join(base, "x", "a", "b"), "/b", MiB))
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "lies inside the channel of container ctr-a") {
		t.Fatalf("nested create: %v", err)
	}
	err = m.Conflicts("ctr-b", channel(filepath.Join(base, "x"), "/b", MiB))
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "contains the channel of container ctr-a") {
		t.Fatalf("containing: %v", err)
	}
	err = m.Create("ctr-b", a)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("same path: %v", err)
	}
	// Another container may not mount, unmount or remove it.
	if _, err := m.Mount("ctr-b", a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Mount by another owner: %v", err)
	}
	if err := m.Remove("ctr-b", a); !errors.Is(err, ErrNotFound) || !exists(a.PathOnHost) {
		t.Fatalf("Remove by another owner: %v", err)
	}
}

func TestCreateFailureUndoes(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	testHookBeforeLeaf = func() error { return errors.New("injected failure") }
	t.Cleanup(func() { testHookBeforeLeaf = nil })
	err := m.Create("c1", channel(filepath.Join(base, "new1", "new2", "ch"), "/ch", MiB))
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Create = %v", err)
	}
	if exists(filepath.Join(base, "new1")) {
		t.Fatal("made parents left behind")
	}
	if r := records(t, m); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}
}

func TestSwappedForSymlinkBeforeMount(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	// Swap the directory for a symlink to somewhere else.
	if err := os.Rename(hp, filepath.Join(base, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, hp); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Mount through a symlink: %v, want ErrUnsafe", err)
	}
	if len(mountsOn(t, victim)) != 0 || len(mountsOn(t, hp)) != 0 || len(mountsOn(t, filepath.Join(base, "moved"))) != 0 {
		t.Fatal("something was mounted")
	}
	// A different directory at the path (same name, other inode) is refused too.
	if err := os.Remove(hp); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(hp, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Mount on a replaced directory: %v, want ErrUnsafe", err)
	}
	if len(mountsOn(t, hp)) != 0 {
		t.Fatal("mounted on the replaced directory")
	}
	// Remove never removes what it did not make.
	if err := os.Remove(hp); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, hp); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(hp); err != nil || fi.Mode()&fs.ModeSymlink == 0 || !exists(victim) {
		t.Fatal("Remove removed the symlink or its target")
	}
}

func TestForeignMountIsNotOurs(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	// Someone else mounts on the directory before the first start.
	if err := unix.Mount("foreign", hp, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := m.Status(ch); mounted {
		t.Fatal("a foreign mount counts as the channel")
	}
	if _, err := m.Mount("c1", ch); !errors.Is(err, ErrBusy) {
		t.Fatalf("Mount over a foreign mount: %v, want ErrBusy", err)
	}
	if err := m.Remove("c1", ch); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove with a foreign mount: %v, want ErrBusy", err)
	}
	if ms := mountsOn(t, hp); len(ms) != 1 || ms[0].Source != "foreign" {
		t.Fatalf("the foreign mount was touched: %+v", ms)
	}
	if err := unix.Unmount(hp, 0); err != nil {
		t.Fatal(err)
	}
	// Ours, then a foreign mount stacked on top of it.
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("foreign", hp, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount("c1", ch); !errors.Is(err, ErrBusy) {
		t.Fatalf("Unmount under a foreign mount: %v, want ErrBusy", err)
	}
	if err := m.Remove("c1", ch); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove under a foreign mount: %v, want ErrBusy", err)
	}
	if ms := mountsOn(t, hp); len(ms) != 2 {
		t.Fatalf("mounts touched: %+v", ms)
	}
	if err := unix.Unmount(hp, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if exists(hp) || len(mountsOn(t, hp)) != 0 {
		t.Fatal("leftovers")
	}
}

func TestUnmountForFailedStart(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("c1", ch) })
	if err := m.Unmount("c1", ch); err != nil {
		t.Fatalf("Unmount of an unmounted channel: %v", err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if len(mountsOn(t, hp)) != 0 || !exists(hp) || len(records(t, m)) != 1 {
		t.Fatal("Unmount must unmount only")
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := m.Status(ch); !mounted {
		t.Fatal("not mounted after a new Mount")
	}
}

func TestReconcile(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	kept := channel(filepath.Join(base, "kept"), "/k", MiB)
	orphan := channel(filepath.Join(base, "orph", "an"), "/o", MiB)
	removing := channel(filepath.Join(base, "removing"), "/r", MiB)
	for _, c := range []struct {
		owner string
		ch    types.HostChannel
	}{{"known", kept}, {"gone", orphan}, {"known", removing}} {
		if err := m.Create(c.owner, c.ch); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Mount(c.owner, c.ch); err != nil {
			t.Fatal(err)
		}
	}
	// A removal interrupted right after it was recorded.
	r, err := m.loadRecord(removing.PathOnHost)
	if err != nil {
		t.Fatal(err)
	}
	r.State = stateRemoving
	if err := m.saveRecord(r); err != nil {
		t.Fatal(err)
	}
	// A create killed after mkdir, before dev/ino were recorded.
	half := channel(filepath.Join(base, "half", "ch"), "/h", MiB)
	hr := &record{Owner: "gone2", Channel: half, State: stateCreating, Parents: []madeDir{{Path: filepath.Join(base, "half")}}, Dir: madeDir{Path: half.PathOnHost}}
	if err := m.createRecord(hr); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(half.PathOnHost, 0o700); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash.
	if err := os.WriteFile(filepath.Join(m.dir, ".tmp-123"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	m2 := newManager(t, base) // the daemon restarted
	if err := m2.Reconcile(func(o string) bool { return o == "known" }); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []types.HostChannel{orphan, removing, half} {
		if exists(ch.PathOnHost) || len(mountsOn(t, ch.PathOnHost)) != 0 {
			t.Errorf("%s left behind", ch.PathOnHost)
		}
	}
	if exists(filepath.Join(base, "orph")) || exists(filepath.Join(base, "half")) {
		t.Error("made parents left behind")
	}
	if mounted, _ := m2.Status(kept); !mounted {
		t.Error("the owned channel was unmounted")
	}
	if got := m2.Owners(); len(got) != 1 || len(got["known"]) != 1 || got["known"][0] != kept {
		t.Errorf("Owners = %v", got)
	}
	if r := records(t, m2); len(r) != 1 {
		t.Errorf("records = %v", r)
	}
	if err := m2.Remove("known", kept); err != nil {
		t.Fatal(err)
	}
}

// A daemon killed between the backing mount and the bind onto the host path: the next start
// binds the tmpfs it finds (data kept), and reconciliation of an orphan removes both.
func TestKilledBetweenBackingAndBind(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	orphan := channel(filepath.Join(base, "orphan"), "/o", MiB)
	for owner, c := range map[string]types.HostChannel{"known": ch, "gone": orphan} {
		if err := m.Create(owner, c); err != nil {
			t.Fatal(err)
		}
		fd, err := m.mountBacking(c.PathOnHost, c.Size)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	if err := os.WriteFile(filepath.Join(m.backingPath(hp), "data"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	// And a backing mount whose record is gone altogether.
	norecord := filepath.Join(base, "no-record")
	fd, err := m.mountBacking(norecord, MiB)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	m2 := newManager(t, base) // the daemon restarted
	if err := m2.Reconcile(func(o string) bool { return o == "known" }); err != nil {
		t.Fatal(err)
	}
	if exists(orphan.PathOnHost) || exists(m.backingPath(orphan.PathOnHost)) || exists(m.backingPath(norecord)) {
		t.Error("the orphan's directory or a backing mount is left")
	}
	if mounted, err := m2.Mount("known", ch); err != nil || mounted {
		t.Fatalf("Mount = %v, %v; want the existing tmpfs bound (mounted false)", mounted, err)
	}
	if b, err := os.ReadFile(filepath.Join(hp, "data")); err != nil || string(b) != "kept" {
		t.Fatalf("host path sees %q, %v; want the backing tmpfs's data", b, err)
	}
	if err := m2.Remove("known", ch); err != nil {
		t.Fatal(err)
	}
	if exists(hp) || exists(m.backingPath(hp)) || len(mountsOn(t, hp)) != 0 {
		t.Fatal("leftovers after Remove")
	}
}

// unmountBehindBack unmounts a channel's tmpfs as a reboot would: bind and backing mount.
func unmountBehindBack(t *testing.T, m *Manager, hp string) {
	t.Helper()
	for _, p := range []string{hp, m.backingPath(hp)} {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRebootSimulation(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "var-run", "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("c1", ch) })
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hp, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The tmpfs vanishes behind the Manager's back (as after a reboot): the next start mounts a fresh one.
	unmountBehindBack(t, m, hp)
	if mounted, _ := m.Status(ch); mounted {
		t.Fatal("Status says mounted")
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(hp, "data")) || len(mountsOn(t, hp)) != 1 {
		t.Fatal("not a fresh tmpfs")
	}
	// The directory and its made parent vanish too (host path on a tmpfs): Mount makes them again.
	unmountBehindBack(t, m, hp)
	if err := os.RemoveAll(filepath.Join(base, "var-run")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := m.Status(ch); !mounted {
		t.Fatal("not mounted after the directory was made again")
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(base, "var-run")) {
		t.Fatal("made parent left after Remove")
	}
}

func TestNonRootHostUserCanWrite(t *testing.T) {
	base := sandbox(t)
	// t.TempDir's top directory is 0700; let the unprivileged user through.
	for p := base; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("c1", ch) })
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `echo hello > "$1/from-nobody" && cat "$1/from-nobody"`, "sh", hp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("uid 65534 could not write: %v %q", err, out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(hp, "from-nobody"), &st); err != nil || st.Uid != 65534 {
		t.Fatalf("file owner %d, %v", st.Uid, err)
	}
}

func TestDaemonRestartKeepsData(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hp, "data"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := mountsOn(t, hp)

	m2 := newManager(t, base)
	if err := m2.Reconcile(func(o string) bool { return o == "c1" }); err != nil {
		t.Fatal(err)
	}
	if got := m2.Owners(); len(got["c1"]) != 1 {
		t.Fatalf("Owners after restart = %v", got)
	}
	if mounted, used := m2.Status(ch); !mounted || used == 0 {
		t.Fatalf("Status after restart = %v, %d", mounted, used)
	}
	if _, err := m2.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	after := mountsOn(t, hp)
	if len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("Mount after restart was not a no-op: %+v", after)
	}
	if b, err := os.ReadFile(filepath.Join(hp, "data")); err != nil || string(b) != "kept" {
		t.Fatalf("data lost: %q %v", b, err)
	}
	if err := m2.Chown("c1", ch, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(hp, &st); err != nil || st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != 0o1777 {
		t.Fatalf("after Chown: uid %d gid %d mode %o %v", st.Uid, st.Gid, st.Mode&0o7777, err)
	}
	if err := m2.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if exists(hp) {
		t.Fatal("left behind")
	}
}

func TestValidate(t *testing.T) {
	base := sandbox(t)
	ctx := CheckContext{
		GraphDir:   filepath.Join(base, "graph"),
		StateDir:   filepath.Join(base, "state"),
		Rootfs:     filepath.Join(base, "rootfs"),
		MountDests: []string{"/data", "/tmpfs/"},
	}
	for _, d := range []string{"graph", "state", "rootfs", "real-graph"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// An engine dir given through a symlink is compared by its real path too.
	if err := os.Symlink(filepath.Join(base, "real-graph"), filepath.Join(base, "graph-link")); err != nil {
		t.Fatal(err)
	}
	// A pseudo-filesystem mounted somewhere unusual.
	procDir := filepath.Join(base, "myproc")
	if err := os.Mkdir(procDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("proc", procDir, "proc", 0, ""); err != nil {
		t.Fatal(err)
	}
	ok := func(h, c string) types.HostChannel { return channel(filepath.Join(base, h), c, MiB) }
	if _, err := Validate([]types.HostChannel{ok("a", "/a"), ok("b", "/b"), ok("new/c", "/c/d")}, ctx); err != nil {
		t.Fatalf("valid list: %v", err)
	}
	// The channels come back in Check's normal form: clean paths, the default mode.
	loose := types.HostChannel{PathOnHost: base + "//a/", PathInContainer: "/x/./y/", Size: MiB}
	if got, err := Validate([]types.HostChannel{loose}, ctx); err != nil || len(got) != 1 ||
		got[0].PathOnHost != filepath.Join(base, "a") || got[0].PathInContainer != "/x/y" || got[0].Permissions != DefaultMode {
		t.Fatalf("Validate(%+v) = %+v, %v; want the normal form", loose, got, err)
	}
	cases := []struct {
		chs  []types.HostChannel
		ctx  CheckContext
		kind error
		msg  string
	}{
		{[]types.HostChannel{ok("a", "/a"), ok("a", "/b")}, ctx, ErrInvalid, "is given twice"},
		{[]types.HostChannel{ok("a", "/a"), ok("a/b", "/b")}, ctx, ErrInvalid, "lies inside host path"},
		{[]types.HostChannel{ok("a/b", "/a"), ok("a", "/b")}, ctx, ErrInvalid, "contains host path"},
		{[]types.HostChannel{ok("a", "/x"), ok("b", "/x/")}, ctx, ErrInvalid, `container path "/x" is given twice`},
		{[]types.HostChannel{ok("a", "/x"), ok("b", "/x/y")}, ctx, ErrInvalid, "lies inside container path"},
		{[]types.HostChannel{ok("a", "/data")}, ctx, ErrInvalid, "also the destination of another mount"},
		{[]types.HostChannel{ok("a", "/tmpfs")}, ctx, ErrInvalid, "also the destination of another mount"},
		{[]types.HostChannel{ok("graph/x", "/a")}, ctx, ErrInvalid, "lies inside the engine's graph directory (--graph)"},
		{[]types.HostChannel{ok("state/x/y", "/a")}, ctx, ErrInvalid, "lies inside the engine's state directory (--state)"},
		{[]types.HostChannel{ok("rootfs/ch", "/a")}, ctx, ErrInvalid, "lies inside the container's rootfs"},
		{[]types.HostChannel{ok("real-graph/x", "/a")}, CheckContext{GraphDir: filepath.Join(base, "graph-link")}, ErrInvalid, "lies inside the engine's graph directory"},
		{[]types.HostChannel{ok("new", "/a")}, CheckContext{GraphDir: filepath.Join(base, "new", "graph")}, ErrInvalid, "contains the engine's graph directory"},
		{[]types.HostChannel{ok("myproc/x", "/a")}, ctx, ErrInvalid, "lies inside the proc filesystem mounted at"},
		{[]types.HostChannel{ok("a", "/a")}, CheckContext{Rootfs: filepath.Join(base, "a", "rootfs")}, ErrInvalid, "contains the container's rootfs"},
		{[]types.HostChannel{ok("graph", "/a")}, CheckContext{}, ErrExists, "already exists"},
		{[]types.HostChannel{channel("/sys/fs/cgroup/x", "/a", MiB)}, ctx, ErrInvalid, "pseudo-filesystem /sys"},
		{[]types.HostChannel{channel(base+"/a", "/a", 0)}, ctx, ErrInvalid, "below the minimum of one page"},
		{[]types.HostChannel{{PathOnHost: base + "/a", PathInContainer: "/a", Permissions: "rx", Size: MiB}}, ctx, ErrInvalid, `invalid mode "rx"`},
	}
	for i, c := range cases {
		_, err := Validate(c.chs, c.ctx)
		if !errors.Is(err, c.kind) || err == nil || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("case %d: Validate = %v, want %v containing %q", i, err, c.kind, c.msg)
		}
	}
	// A cgroup mount outside /sys counts as a pseudo-filesystem too.
	cg := filepath.Join(base, "cg")
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("cgroup", cg, "cgroup", 0, "none,name=hostchanneltest"); err == nil {
		_, err := Validate([]types.HostChannel{ok("cg/x", "/a")}, ctx)
		if err == nil || !strings.Contains(err.Error(), "lies inside the cgroup filesystem") {
			t.Errorf("cgroup mount: %v", err)
		}
	} else {
		t.Logf("cannot mount a named cgroup hierarchy (%v); skipping that case", err)
	}
}

// Something appears at the host path between the checks and mkdir: Create fails and the
// rollback leaves the other party's directory alone.
func TestCreateRaceWithOutsider(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	testHookBeforeLeaf = func() error { return os.Mkdir(hp, 0o755) }
	t.Cleanup(func() { testHookBeforeLeaf = nil })
	err := m.Create("c1", channel(hp, "/ch", MiB))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Create = %v, want ErrExists", err)
	}
	if fi, err := os.Lstat(hp); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatal("the outsider's directory was removed or changed")
	}
	if r := records(t, m); len(r) != 0 {
		t.Fatalf("records left: %v", r)
	}
}

// A parent swapped for a symlink that leads to the very same directory (same device and
// inode) is still refused: no symlink is followed anywhere on the path.
func TestParentSwappedForSymlinkBeforeMount(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "p", "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(base, "p"), filepath.Join(base, "p2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "p2"), filepath.Join(base, "p")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Mount through a symlinked parent: %v, want ErrUnsafe", err)
	}
	if len(mountsOn(t, hp)) != 0 || len(mountsOn(t, filepath.Join(base, "p2", "ch"))) != 0 {
		t.Fatal("something was mounted")
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(base, "p2", "ch")) {
		t.Fatal("Remove went through the symlink")
	}
}

// Issue 10, items 10 and 16: what create must refuse before anything is made.
func TestValidateRefusesAtCreate(t *testing.T) {
	base := sandbox(t)
	rootfs := filepath.Join(base, "rootfs")
	other := filepath.Join(base, "other-rootfs")
	for _, d := range []string{"rootfs/etc", "rootfs/srv/data", "other-rootfs/etc"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"rootfs/etc/hosts", "rootfs/file"} {
		if err := os.WriteFile(filepath.Join(base, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(rootfs, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink inside the rootfs resolves inside it, as the runtime resolves it.
	if err := os.Symlink("/etc/hosts", filepath.Join(rootfs, "hosts-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/srv", filepath.Join(rootfs, "srv-link")); err != nil {
		t.Fatal(err)
	}
	ctx := CheckContext{Rootfs: rootfs, OtherRootfs: []string{other}, MountDests: []string{"/mnt"}}
	ok := func(h, c string) types.HostChannel { return channel(filepath.Join(base, h), c, MiB) }
	for _, chs := range [][]types.HostChannel{
		{ok("a", "/srv/data")}, {ok("a", "/new/dir")}, {ok("a", "/srv-link/data")}, {ok("a", "/mnt/file")},
	} {
		if _, err := Validate(chs, ctx); err != nil {
			t.Errorf("Validate(%v) = %v, want accepted", chs, err)
		}
	}
	long := "/" + strings.Repeat("d/", 2100) + "ch" // 4203 bytes
	fakeMem(t, 8*GiB, 6*GiB)
	cases := []struct {
		chs []types.HostChannel
		msg string
	}{
		{[]types.HostChannel{channel(long, "/a", MiB)}, "is 4203 bytes long (want at most 4095"},
		{[]types.HostChannel{channel("/srv/"+strings.Repeat("n", 256), "/a", MiB)}, "is 256 bytes long (want at most 255"},
		{[]types.HostChannel{ok("a", long)}, "container path"},
		{[]types.HostChannel{ok("a", "/etc/hosts")}, `container path "/etc/hosts" is a regular file in the rootfs`},
		{[]types.HostChannel{ok("a", "/hosts-link")}, `container path "/hosts-link" is a regular file in the rootfs`},
		{[]types.HostChannel{ok("a", "/fifo")}, "is a FIFO in the rootfs"},
		{[]types.HostChannel{ok("a", "/file/below")}, "lies below something in the rootfs that is not a directory"},
		{[]types.HostChannel{ok("other-rootfs/etc/ch", "/a")}, "lies inside the rootfs of another container"},
		{[]types.HostChannel{ok("a", "/a"), ok("b", "/b"), channel(filepath.Join(base, "c"), "/c", 2*GiB)}, ""},
		{[]types.HostChannel{channel(filepath.Join(base, "a"), "/a", 3*GiB), channel(filepath.Join(base, "b"), "/b", 3*GiB)},
			"sizes 3221225472 + 3221225472 add up to 6442450944 bytes, more than half of total memory (4294967296 bytes)"},
	}
	for i, c := range cases {
		_, err := Validate(c.chs, ctx)
		if c.msg == "" {
			if err != nil {
				t.Errorf("case %d: Validate = %v, want accepted", i, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") || len(err.Error()) > 400 {
			t.Errorf("case %d: Validate = %v, want one ErrInvalid line containing %q", i, err, c.msg)
		}
	}
}

func TestMerge(t *testing.T) {
	a := channel("/srv/a", "/a", MiB)
	b := channel("/srv/b", "/b", MiB)
	loose := types.HostChannel{PathOnHost: "/srv/a/", PathInContainer: "/a", Size: MiB} // a in another spelling
	for i, c := range []struct {
		legacy *types.HostChannel
		list   []types.HostChannel
		want   []types.HostChannel
		bad    bool
	}{
		{nil, nil, nil, false},
		{&a, nil, []types.HostChannel{a}, false},
		{nil, []types.HostChannel{a, b}, []types.HostChannel{a, b}, false},
		{&a, []types.HostChannel{a, b}, []types.HostChannel{a, b}, false},
		{&loose, []types.HostChannel{a, b}, []types.HostChannel{a, b}, false},
		{&b, []types.HostChannel{a}, nil, true},
	} {
		got, err := Merge(c.legacy, c.list)
		if c.bad {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "given together with HostChannels") {
				t.Errorf("case %d: Merge = %v, %v; want a refusal", i, got, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("case %d: Merge = %v, %v; want %v", i, got, err, c.want)
		}
	}
}

// Issue 10, item 10: the tmpfs bounds inodes in proportion to its size.
func TestInodesBounded(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", 4096)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("c1", ch) })
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(hp, &st); err != nil {
		t.Fatal(err)
	}
	if st.Files != minInodes {
		t.Errorf("a one-page channel has %d inodes, want %d", st.Files, minInodes)
	}
	n := 0
	for ; n < 2*minInodes; n++ {
		if err := os.Mkdir(filepath.Join(hp, strconv.Itoa(n)), 0o700); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	if n >= minInodes {
		t.Errorf("made %d empty directories in a one-page channel, want fewer than %d", n, minInodes)
	}
	if got, want := nrInodes(64*MiB), 64*MiB/int64(os.Getpagesize()); got != want {
		t.Errorf("nrInodes(64M) = %d, want %d", got, want)
	}
}

// Issue 10, item 1: once mounted, the host path can be swapped for a symlink by whoever owns
// one of its ancestors; the source the runtime binds is the backing mount, which still is
// the channel's tmpfs, and no path the attacker controls leads there.
func TestBindSourceSurvivesSwap(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	hp := filepath.Join(base, "att", "d", "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hp, "mine"), []byte("m"), 0o600); err != nil {
		t.Fatal(err)
	}
	att := filepath.Join(base, "att")
	if err := os.Rename(filepath.Join(att, "d"), filepath.Join(att, "d.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(att, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(att, "d", "ch")); err != nil {
		t.Fatal(err)
	}
	src := m.SpecMounts([]types.HostChannel{ch})[0].Source
	if within(src, base) && !within(src, m.mountDir) {
		t.Fatalf("bind source %q is not in the mount directory %q", src, m.mountDir)
	}
	if exists(filepath.Join(src, "secret")) || !exists(filepath.Join(src, "mine")) {
		t.Fatal("the bind source does not lead to the channel's tmpfs")
	}
	for p := src; p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			t.Fatalf("bind source %q passes through %q (%v, %v)", src, p, fi.Mode(), err)
		}
	}
	// Mount again refuses to stack a second bind while the first is elsewhere.
	if _, err := m.Mount("c1", ch); !errors.Is(err, ErrBusy) && !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Mount after the swap = %v, want a refusal", err)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) { return !within(i.Mountpoint, base), false }); len(ms) != 0 {
		t.Fatalf("mounts left: %+v", ms[0])
	}
	if !exists(filepath.Join(victim, "secret")) {
		t.Fatal("the victim was touched")
	}
}

// Issue 10, item 9: a parent renamed while the channel is mounted; Remove finds the bind
// where it is now and unmounts it, and only then drops the record.
func TestRemoveFindsMovedMount(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "p1", "sub", "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(base, "p1", "sub.moved", "ch")
	if err := os.Rename(filepath.Join(base, "p1", "sub"), filepath.Dir(moved)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), moved) {
		t.Fatalf("Mount with the bind moved away = %v, want ErrBusy naming %s", err, moved)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if len(mountsOn(t, moved)) != 0 || exists(m.backingPath(hp)) || len(records(t, m)) != 0 {
		t.Fatalf("after Remove: mounts at %s %v, backing %v, records %v", moved, mountsOn(t, moved), exists(m.backingPath(hp)), records(t, m))
	}
}

// Issue 10, item 9: Remove refuses (and keeps the record) while the channel's bind cannot be
// unmounted safely; it never says removed while the channel is mounted.
func TestRemoveRefusesWhileMountedOver(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	// The bind's mount point leads to something else: a foreign mount stacked over it.
	if err := unix.Mount("foreign", hp, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	err := m.Remove("c1", ch)
	if !errors.Is(err, ErrBusy) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Remove under a foreign mount = %v, want one ErrBusy line", err)
	}
	if len(records(t, m)) != 1 {
		t.Fatal("the record was dropped while the channel is mounted")
	}
	if err := unix.Unmount(hp, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
}

// Issue 10, item 9: a Mount that fails after the tmpfs is mounted leaves nothing mounted.
func TestMountFailureLeavesNothing(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	hp := filepath.Join(base, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove("c1", ch) })
	testHookAfterBacking = func() error { return errors.New("injected") }
	t.Cleanup(func() { testHookAfterBacking = nil })
	if _, err := m.Mount("c1", ch); err == nil {
		t.Fatal("Mount succeeded past the injected failure")
	}
	if ms, _ := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) { return !within(i.Mountpoint, base), false }); len(ms) != 0 {
		t.Fatalf("a failed Mount left %s mounted", ms[0].Mountpoint)
	}
	if exists(m.backingPath(hp)) {
		t.Fatal("a failed Mount left its backing directory")
	}
	testHookAfterBacking = nil
	if mounted, err := m.Mount("c1", ch); err != nil || !mounted {
		t.Fatalf("Mount after the failure = %v, %v", mounted, err)
	}
}

// Issue 10, item 5: a record someone else could have written (not the daemon's, or
// writable by others) naming a root-owned tmpfs is ignored by reconciliation: that tmpfs
// stays mounted and its mount point stays.
func TestReconcileIgnoresForgedRecord(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	target := filepath.Join(base, "roots-tmpfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	fd, err := openNoFollow(target, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := mountIDOf(fd)
	dev, ino, _ := fstat(fd)
	unix.Close(fd)
	forged := &record{Owner: "gone", Channel: channel(target, "/x", MiB), State: stateCreated,
		Dir: madeDir{Path: target, Dev: dev, Ino: ino}, MountID: id}
	if err := m.createRecord(forged); err != nil {
		t.Fatal(err)
	}
	for _, how := range []func(p string) error{
		func(p string) error { return os.Chown(p, 65534, 65534) },
		func(p string) error { os.Chown(p, 0, 0); return os.Chmod(p, 0o666) },
	} {
		if err := how(filepath.Join(m.dir, recordName(target))); err != nil {
			t.Fatal(err)
		}
		if err := newManager(t, base).Reconcile(func(string) bool { return false }); err != nil {
			t.Fatal(err)
		}
		if ms := mountsOn(t, target); len(ms) != 1 {
			t.Fatalf("reconciliation of a forged record touched %s: %+v", target, ms)
		}
	}
	// Even a record of the daemon's own naming a tmpfs that is not on its backing directory
	// only gets refused: the tmpfs is not the engine's.
	os.Chmod(filepath.Join(m.dir, recordName(target)), 0o600)
	if err := newManager(t, base).Reconcile(func(string) bool { return false }); err == nil {
		t.Log("reconcile reported no error")
	}
	if ms := mountsOn(t, target); len(ms) != 1 {
		t.Fatalf("reconciliation unmounted a tmpfs that is not the engine's: %+v", ms)
	}
}

// The host path's parent is a shared mount with a peer in this namespace: the bind onto the
// host path propagates to the peer, and unmounting the one unmounts the other. Remove must
// not mistake the vanished copy for a mount it cannot reach.
func TestRemoveWithPropagatedCopy(t *testing.T) {
	base := sandbox(t)
	m := newManager(t, base)
	shared, peer := filepath.Join(base, "shared"), filepath.Join(base, "peer")
	for _, d := range []string{shared, peer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(shared, shared, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(shared, peer, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	hp := filepath.Join(shared, "ch")
	ch := channel(hp, "/ch", MiB)
	if err := m.Create("c1", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mount("c1", ch); err != nil {
		t.Fatal(err)
	}
	if len(mountsOn(t, filepath.Join(peer, "ch"))) != 1 {
		t.Fatal("the bind did not propagate to the peer (the test needs it)")
	}
	if mounted, err := m.Mount("c1", ch); err != nil || mounted {
		t.Fatalf("second Mount = %v, %v; want a no-op despite the propagated copy", mounted, err)
	}
	if err := m.Remove("c1", ch); err != nil {
		t.Fatal(err)
	}
	if len(mountsOn(t, hp)) != 0 || len(mountsOn(t, filepath.Join(peer, "ch"))) != 0 || exists(m.backingPath(hp)) {
		t.Fatal("mounts left after Remove")
	}
}

// A container without channels is valid whatever its context, and gets an empty list.
func TestValidateNone(t *testing.T) {
	got, err := Validate(nil, CheckContext{Rootfs: "/nonexistent-rootfs", GraphDir: "/g"})
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Validate(nil) = %v, %v; want an empty list and no error", got, err)
	}
}
