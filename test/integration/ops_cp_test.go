package integration

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// timed runs isula and fails the test if it takes longer than limit (a cp that opened a FIFO
// would block for ever).
func (d *Daemon) timed(limit time.Duration, args ...string) Result {
	d.t.Helper()
	start := time.Now()
	r := d.Isula(args...)
	if el := time.Since(start); el > limit {
		d.t.Fatalf("isula %s took %s (limit %s): %s", strings.Join(args, " "), el, limit, r)
	}
	return r
}

func shaFile(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestCpBothWays(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	host := d.TempDir()
	os.MkdirAll(filepath.Join(host, "src/sub"), 0o755)
	os.WriteFile(filepath.Join(host, "src/a"), []byte("alpha\n"), 0o640)
	os.WriteFile(filepath.Join(host, "src/sub/b"), []byte("beta\n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(host, "src/link"))

	id := d.Must("run", "-d", "--tmpfs", "/mnt/t", "--external-rootfs", rf, "none", "sleep", "1000")
	// Host -> container: a directory into an existing one, a file to a new name.
	d.Must("cp", filepath.Join(host, "src"), id+":/tmp")
	d.Must("cp", filepath.Join(host, "src/a"), id+":/tmp/renamed")
	if out := d.Must("exec", id, "cat", "/tmp/src/a", "/tmp/src/sub/b", "/tmp/renamed"); out != "alpha\nbeta\nalpha" {
		t.Fatalf("inside: %q", out)
	}
	if out := d.Must("exec", id, "readlink", "/tmp/src/link"); out != "/etc/passwd" {
		t.Fatalf("symlink inside: %q", out)
	}
	// The live view: a --tmpfs mount of the running container is written, not the rootfs under it.
	d.Must("cp", filepath.Join(host, "src/a"), id+":/mnt/t/")
	if out := d.Must("exec", id, "cat", "/mnt/t/a"); out != "alpha" {
		t.Fatalf("tmpfs: %q", out)
	}
	if _, err := os.Stat(filepath.Join(rf, "mnt/t/a")); err == nil {
		t.Fatalf("cp wrote under the tmpfs, into the rootfs directory")
	}
	// Container -> host, and to a tar on stdout.
	d.Must("cp", id+":/tmp/src", filepath.Join(host, "back"))
	if b, _ := os.ReadFile(filepath.Join(host, "back/sub/b")); string(b) != "beta\n" {
		t.Fatalf("back/sub/b = %q", b)
	}
	if st, _ := os.Stat(filepath.Join(host, "back/a")); st == nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v", st)
	}
	if l, _ := os.Readlink(filepath.Join(host, "back/link")); l != "/etc/passwd" {
		t.Fatalf("symlink back: %q", l)
	}
	r := d.Isula("cp", id+":/tmp/src/sub", "-")
	tr := tar.NewReader(strings.NewReader(r.Stdout))
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if r.Code != 0 || strings.Join(names, ",") != "sub/,sub/b" {
		t.Fatalf("cp to stdout: %v %s", names, r)
	}
	// A tar on stdin, into the container.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "fromstdin", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("in\n"))
	tw.Close()
	if r := d.IsulaStdin(buf.String(), "cp", "-", id+":/tmp"); r.Code != 0 {
		t.Fatalf("cp - : %s", r)
	}
	if out := d.Must("exec", id, "cat", "/tmp/fromstdin"); out != "in" {
		t.Fatalf("fromstdin: %q", out)
	}
	// -L follows a symlink in SRC; without it the link itself is copied.
	d.Must("cp", "-L", id+":/tmp/src/link", filepath.Join(host, "followed"))
	if b, _ := os.ReadFile(filepath.Join(host, "followed")); !strings.HasPrefix(string(b), "root:") {
		t.Fatalf("-L: %q", b)
	}

	// A stopped container: its rootfs.
	d.Must("stop", "-t", "0", id)
	d.Must("cp", filepath.Join(host, "src/sub/b"), id+":/stopped")
	if b, _ := os.ReadFile(filepath.Join(rf, "stopped")); string(b) != "beta\n" {
		t.Fatalf("stopped container: %q", b)
	}
	d.Must("cp", id+":/stopped", filepath.Join(host, "fromstopped"))
	if b, _ := os.ReadFile(filepath.Join(host, "fromstopped")); string(b) != "beta\n" {
		t.Fatalf("from the stopped container: %q", b)
	}
	// Bad arguments: one line, exit 125; missing container: exit 1.
	for _, args := range [][]string{{"cp", "a", "b"}, {"cp", id + ":/a", id + ":/b"}, {"cp", "x"}} {
		if r := d.Isula(args...); r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: %s", args, r)
		}
	}
	if r := d.Isula("cp", "nosuch:/a", host); r.Code != 1 || !strings.Contains(r.Stderr, "nosuch") {
		t.Errorf("no such container: %s", r)
	}
}

func TestCpStaysInsideRootfs(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	victim := d.TempDir() // a host directory the container must not reach
	os.WriteFile(filepath.Join(victim, "secret"), []byte("host secret\n"), 0o600)
	os.Symlink(victim, filepath.Join(rf, "abs"))
	os.Symlink("../../../../../../../.."+victim, filepath.Join(rf, "rel"))
	os.Symlink(victim+"/secret", filepath.Join(rf, "filelink"))
	src := filepath.Join(d.TempDir(), "f")
	os.WriteFile(src, []byte("payload\n"), 0o644)
	id := d.Must("run", "-d", "--external-rootfs", rf, "none", "sleep", "1000")

	for _, dst := range []string{"/abs/x", "/rel/x", "/abs/", "/rel/", "/../../../../" + victim + "/x", "/filelink"} {
		d.Isula("cp", src, id+":"+dst) // may work (inside) or fail: never on the host
	}
	for _, p := range []string{"/abs/secret", "/rel/secret", "/filelink", "/../../../../" + victim + "/secret"} {
		out := filepath.Join(d.TempDir(), "out")
		d.Isula("cp", "-L", id+":"+p, out)
		if b, _ := os.ReadFile(out); strings.Contains(string(b), "host secret") {
			t.Fatalf("cp -L %s read the host's file", p)
		}
	}
	// A hostile tar on stdin: a symlink to the host, then a file through it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: victim})
	tw.WriteHeader(&tar.Header{Name: "evil/x", Mode: 0o644, Size: 4, Typeflag: tar.TypeReg})
	tw.Write([]byte("bad\n"))
	tw.Close()
	if r := d.IsulaStdin(buf.String(), "cp", "-", id+":/tmp"); r.Code == 0 || !strings.Contains(r.Stderr, "symlink in the way") {
		t.Fatalf("hostile tar: %s", r)
	}
	ents, _ := os.ReadDir(victim)
	if len(ents) != 1 {
		t.Fatalf("the host directory was written: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(rf, victim, "x")); err == nil {
		t.Logf("absolute symlinks led inside the rootfs, as a chroot would")
	}
	// Copying out: the container plants a symlink to a host dir at a name the archive also
	// holds a file under; the host side never writes through it.
	d.Must("exec", id, "sh", "-c", "mkdir -p /out && ln -s "+victim+" /out/l")
	dst := d.TempDir()
	d.Must("cp", id+":/out", dst)
	if l, _ := os.Readlink(filepath.Join(dst, "out/l")); l != victim {
		t.Fatalf("symlink copied out as %q", l)
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 1 {
		t.Fatalf("the host directory was written: %v", ents)
	}
}

func TestCpFIFODoesNotHang(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	id := d.Must("run", "-d", "--external-rootfs", rf, "none", "sleep", "1000")
	d.Must("exec", id, "sh", "-c", "mkdir /q && mkfifo /q/fifo && echo x > /q/file")
	dst := d.TempDir()
	r := d.timed(10*time.Second, "cp", id+":/q/fifo", dst)
	if r.Code != 1 || !strings.Contains(r.Stderr, "is a FIFO") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("cp of a FIFO: %s", r)
	}
	r = d.timed(10*time.Second, "cp", id+":/q", dst)
	if r.Code != 0 || !strings.Contains(r.Stderr, "skipping /q/fifo") {
		t.Fatalf("cp of a dir with a FIFO: %s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "q/file")); string(b) != "x\n" {
		t.Fatalf("q/file = %q", b)
	}
	// A FIFO at the destination is refused, never opened nor replaced; so is a device on
	// the host (cp to /dev/null must not delete /dev/null).
	src := filepath.Join(d.TempDir(), "fifo")
	os.WriteFile(src, []byte("now a file\n"), 0o644)
	if r := d.timed(10*time.Second, "cp", src, id+":/q/fifo"); r.Code == 0 || !strings.Contains(r.Stderr, "is a FIFO") {
		t.Fatalf("cp onto a FIFO: %s", r)
	}
	if out := d.Must("exec", id, "sh", "-c", "test -p /q/fifo && echo fifo"); out != "fifo" {
		t.Fatalf("/q/fifo: %q", out)
	}
	if r := d.timed(10*time.Second, "cp", id+":/q/file", "/dev/null"); r.Code == 0 || !strings.Contains(r.Stderr, "is a character device") {
		t.Fatalf("cp onto /dev/null: %s", r)
	}
	if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a device: %v %v", st, err)
	}
	// And a host FIFO given as SRC is refused at once.
	hf := filepath.Join(d.TempDir(), "hostfifo")
	if err := mkfifo(hf); err != nil {
		t.Fatal(err)
	}
	if r := d.timed(10*time.Second, "cp", hf, id+":/q/"); r.Code == 0 || !strings.Contains(r.Stderr, "is a FIFO") {
		t.Fatalf("cp of a host FIFO: %s", r)
	}
}

func TestCpLargeFile(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	id := d.Must("run", "-d", "--external-rootfs", rf, "none", "sleep", "1000")
	dir := d.TempDir()
	src := filepath.Join(dir, "big")
	f, _ := os.Create(src)
	if _, err := io.CopyN(f, rand.Reader, 100<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	d.Must("cp", src, id+":/big")
	in := time.Since(start)
	start = time.Now()
	d.Must("cp", id+":/big", filepath.Join(dir, "back"))
	out := time.Since(start)
	t.Logf("100 MiB: in %s, out %s", in, out)
	if shaFile(t, src) != shaFile(t, filepath.Join(dir, "back")) || shaFile(t, src) != shaFile(t, filepath.Join(rf, "big")) {
		t.Fatalf("the copies differ")
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
