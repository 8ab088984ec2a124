package rootfs

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func archiveOf(t *testing.T, root, name string, follow bool) ([]byte, SourceInfo, []string) {
	t.Helper()
	var (
		buf   bytes.Buffer
		info  SourceInfo
		warns []string
	)
	err := quick(t, "archive "+name, func() error {
		r, err := OpenRoot(root)
		if err != nil {
			return err
		}
		defer r.Close()
		s, err := r.OpenSource(name, follow)
		if err != nil {
			return err
		}
		defer s.Close()
		info = s.Info()
		return s.WriteTar(&buf, func(w string) { warns = append(warns, w) })
	})
	if err != nil {
		t.Fatalf("archive %s: %v", name, err)
	}
	return buf.Bytes(), info, warns
}

func extractInto(root, dst, srcName string, isDir bool, data []byte, opt ExtractOptions) ([]string, error) {
	r, err := OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var warns []string
	err = r.Extract(dst, srcName, isDir, bytes.NewReader(data), opt, func(w string) { warns = append(warns, w) })
	return warns, err
}

func TestCopyRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mkTree(t, src, map[string]string{"d/a": "A", "d/sub/b": "B"}, map[string]string{"d/l": "../etc/passwd"})
	os.Link(filepath.Join(src, "d/a"), filepath.Join(src, "d/hard"))
	if err := unix.Mkfifo(filepath.Join(src, "d/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, info, warns := archiveOf(t, src, "/d", false)
	if info.Name != "d" || !info.Mode.IsDir() {
		t.Fatalf("info %+v", info)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "/d/fifo") || !strings.Contains(warns[0], "a FIFO") {
		t.Fatalf("warnings %q, want one naming the FIFO", warns)
	}
	// dst exists: lands inside as d/; dst missing: d becomes it.
	for _, c := range []struct{ dst, at string }{{"/", "d"}, {"/new", "new"}} {
		if _, err := extractInto(dst, c.dst, info.Name, true, data, ExtractOptions{UID: os.Getuid(), GID: os.Getgid()}); err != nil {
			t.Fatalf("extract to %s: %v", c.dst, err)
		}
		b, err := os.ReadFile(filepath.Join(dst, c.at, "sub/b"))
		if err != nil || string(b) != "B" {
			t.Fatalf("%s/sub/b = %q, %v", c.at, b, err)
		}
		if l, _ := os.Readlink(filepath.Join(dst, c.at, "l")); l != "../etc/passwd" {
			t.Fatalf("symlink %q", l)
		}
		var s1, s2 unix.Stat_t
		unix.Stat(filepath.Join(dst, c.at, "a"), &s1)
		unix.Stat(filepath.Join(dst, c.at, "hard"), &s2)
		if s1.Ino != s2.Ino {
			t.Fatalf("hard link not kept")
		}
	}
}

func TestCopySourceStaysInRoot(t *testing.T) {
	root, host := setup(t)
	os.WriteFile(filepath.Join(host, "secret"), []byte("host"), 0o644)
	// The same path inside the rootfs: that is where the links lead.
	os.MkdirAll(filepath.Join(root, host), 0o755)
	os.WriteFile(filepath.Join(root, host, "secret"), []byte("inside"), 0o644)
	os.Symlink(host+"/secret", filepath.Join(root, "abs"))
	os.Symlink("../../../../../../"+host+"/secret", filepath.Join(root, "rel"))
	os.Symlink(host, filepath.Join(root, "dirlink"))
	for _, name := range []string{"/abs", "/rel", "/../../../" + host + "/secret"} {
		data, _, _ := archiveOf(t, root, name, true)
		tr := tar.NewReader(bytes.NewReader(data))
		if _, err := tr.Next(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(tr)
		if string(b) != "inside" {
			t.Fatalf("cp of %s read %q, want the rootfs' file", name, b)
		}
	}
	// Without -L the symlink itself travels.
	_, info, _ := archiveOf(t, root, "/abs", false)
	if info.LinkTarget != host+"/secret" {
		t.Fatalf("info %+v", info)
	}
	// Through a symlinked directory: inside, never the host's.
	data, _, _ := archiveOf(t, root, "/dirlink/secret", false)
	tr := tar.NewReader(bytes.NewReader(data))
	tr.Next()
	if b, _ := io.ReadAll(tr); string(b) != "inside" {
		t.Fatalf("/dirlink/secret read %q, want the rootfs' file", b)
	}
}

func TestCopySourceSpecialRefused(t *testing.T) {
	root := t.TempDir()
	unix.Mkfifo(filepath.Join(root, "fifo"), 0o644)
	r, _ := OpenRoot(root)
	defer r.Close()
	err := quick(t, "open a FIFO", func() error { _, err := r.OpenSource("/fifo", true); return err })
	if err == nil || !strings.Contains(err.Error(), "is a FIFO") {
		t.Fatalf("got %v, want a FIFO refusal", err)
	}
}

// tarOf builds an archive from entries (a name ending in "->X" is a symlink to X).
func tarOf(t testing.TB, entries ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		name, link, isLink := strings.Cut(e, "->")
		hdr := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len("data"))}
		switch {
		case isLink:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, link, 0
		case strings.HasSuffix(name, "/"):
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		case strings.HasSuffix(name, "|"):
			hdr.Name, hdr.Typeflag, hdr.Size = strings.TrimSuffix(name, "|"), tar.TypeFifo, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte("data"))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestExtractStaysInDestination(t *testing.T) {
	cases := []struct {
		name    string
		entries []string
		err     string
	}{
		{"symlink then through it", []string{"d/", "d/evil->%HOST%", "d/evil/x"}, "a symlink in the way"},
		{"relative symlink then through it", []string{"d/", "d/evil->../../../../../../../%HOST%", "d/evil/x"}, "a symlink in the way"},
		{"dotdot entry", []string{"d/", "d/../../x"}, "absolute or with"},
		{"absolute entry", []string{"/x"}, "absolute or with"},
		{"entry outside the top", []string{"d/", "e/x"}, "not under its top entry"},
		{"symlink replaced by file", []string{"d/", "d/evil->%HOST%/x", "d/evil"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst, host := setup(t)
			var entries []string
			for _, e := range c.entries {
				entries = append(entries, strings.ReplaceAll(e, "%HOST%", host))
			}
			_, err := extractInto(dst, "/new", "d", true, tarOf(t, entries...), ExtractOptions{})
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("got %v, want %q", err, c.err)
			}
			ents, _ := os.ReadDir(host)
			b, _ := os.ReadFile(filepath.Join(host, "victim"))
			if len(ents) != 1 || string(b) != "host\n" {
				t.Fatalf("written outside the destination: %v, victim %q", ents, b)
			}
		})
	}
}

func TestExtractDestinationRules(t *testing.T) {
	dst := t.TempDir()
	os.MkdirAll(filepath.Join(dst, "dir"), 0o755)
	os.WriteFile(filepath.Join(dst, "file"), []byte("old"), 0o644)
	unix.Mkfifo(filepath.Join(dst, "fifo"), 0o644)
	devOK := unix.Mknod(filepath.Join(dst, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) == nil
	file := tarOf(t, "f")
	defer func() {
		var st unix.Stat_t
		for _, n := range []string{"fifo", "null"} {
			if unix.Lstat(filepath.Join(dst, n), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
				t.Errorf("%s was replaced by a regular file", n)
			}
		}
	}()
	for _, c := range []struct {
		dst, src string
		isDir    bool
		data     []byte
		at, err  string
	}{
		{"/dir", "f", false, file, "dir/f", ""},
		{"/file", "f", false, file, "file", ""},
		{"/newfile", "f", false, file, "newfile", ""},
		{"/fifo", "f", false, file, "", "is a FIFO: want a directory"},               // refused, never opened or replaced
		{"/null", "f", false, file, "", "is a character device"},                     // cp c:/x /dev/null keeps /dev/null
		{"/", "null", false, tarOf(t, "null"), "", "cp replaces only regular files"}, // cp c:/null /dev/ too
		{"/", "fifo", false, tarOf(t, "fifo->x"), "", "cp replaces only regular files"},
		{"/missing/", "f", false, file, "", "does not exist"},
		{"/nodir/x", "f", false, file, "", "does not exist"},
		{"/file", "d", true, tarOf(t, "d/", "d/f"), "", "cannot copy a directory"},
		{"/dir", "d", true, tarOf(t, "d/", "d/f", "d/p|"), "dir/d/f", ""},
		{"/contents", "", true, tarOf(t, "./", "f"), "contents/f", ""},
	} {
		var err error
		quick(t, "extract to "+c.dst, func() error {
			_, err = extractInto(dst, c.dst, c.src, c.isDir, c.data, ExtractOptions{UID: os.Getuid(), GID: os.Getgid()})
			return nil
		})
		if (c.dst == "/null" || c.src == "null") && !devOK {
			continue // mknod needs CAP_MKNOD
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, want %q", c.dst, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.dst, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dst, c.at)); err != nil || string(b) != "data" {
			t.Errorf("%s: %s = %q, %v", c.dst, c.at, b, err)
		}
	}
}

func TestExtractDropsSetuidWithoutArchiveMode(t *testing.T) {
	dst := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "su", Mode: 0o4755, Typeflag: tar.TypeReg, Uid: 1234})
	tw.Close()
	for _, keep := range []bool{false, true} {
		if _, err := extractInto(dst, "/su", "su", false, buf.Bytes(), ExtractOptions{KeepOwner: keep}); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		unix.Stat(filepath.Join(dst, "su"), &st)
		if got := st.Mode&unix.S_ISUID != 0; got != keep || (keep && st.Uid != 1234) {
			t.Fatalf("keep=%v: mode %o uid %d", keep, st.Mode, st.Uid)
		}
	}
}
