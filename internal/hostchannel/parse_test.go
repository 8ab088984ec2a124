package hostchannel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/isulad-go/isulad/api/types"
)

// fakeMem pins MemTotal and MemAvailable for the duration of a test.
func fakeMem(t *testing.T, total, avail int64) {
	t.Helper()
	old := readMeminfo
	readMeminfo = func() (int64, int64, error) { return total, avail, nil }
	t.Cleanup(func() { readMeminfo = old })
}

const (
	KiB = int64(1) << 10
	MiB = int64(1) << 20
	GiB = int64(1) << 30
	TiB = int64(1) << 40
)

func TestParseSize(t *testing.T) {
	ok := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1", 1}, {"4096", 4096}, {"007", 7},
		{"1B", 1}, {"1b", 1},
		{"1K", KiB}, {"1k", KiB}, {"1KB", KiB}, {"1kb", KiB}, {"1Kb", KiB}, {"1KiB", KiB}, {"1kib", KiB}, {"1KIB", KiB},
		{"32M", 32 * MiB}, {"32m", 32 * MiB}, {"32MB", 32 * MiB}, {"32mb", 32 * MiB}, {"32MiB", 32 * MiB}, {"32mIb", 32 * MiB},
		{"2G", 2 * GiB}, {"2g", 2 * GiB}, {"2GB", 2 * GiB}, {"2GiB", 2 * GiB}, {"2gib", 2 * GiB},
		{"1T", TiB}, {"1t", TiB}, {"1TB", TiB}, {"1TiB", TiB}, {"1tib", TiB},
		{"1.5M", 3 * MiB / 2}, {"1.5K", 1536}, {"0.5K", 512},
		{"1.0001K", 1024}, // 1024.1024 rounded down
		{"1.9999B", 1},    // rounded down
		{"0.1", 0},
		{"2.25G", 9 * GiB / 4},
		{"8388607T", 8388607 * TiB},
		{"9223372036854775807", 9223372036854775807},
		{"9223372036854775807.9", 9223372036854775807},
	}
	for _, c := range ok {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"", " ", ".5", "1.", ".", " 1M", "1M ", "1 M", "+1M", "-1M", "1e3", "1E3", "1e3M", "0x10",
		"1MM", "1KM", "1Bi", "1iB", "1P", "1PB", "1KiBB", "M", "1,5M", "1_000", "1.5.5", "\t1", "1\n",
		"8388608T", "9223372036854775808", "99999999999999999999999", "１M", "1Ｍ",
	}
	for _, s := range bad {
		got, err := ParseSize(s)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", s, got)
			continue
		}
		var se *SizeError
		if !errors.As(err, &se) || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSize(%q): error %v is not a *SizeError / ErrInvalid", s, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseSize(%q): error %q does not name the value on one line", s, err)
		}
	}
}

func TestParse(t *testing.T) {
	fakeMem(t, 8*GiB, 6*GiB)
	want := func(h, c, m string, n int64) types.HostChannel {
		return types.HostChannel{PathOnHost: h, PathInContainer: c, Permissions: m, Size: n}
	}
	ok := []struct {
		in   string
		want types.HostChannel
	}{
		{"/srv/ch:/ch", want("/srv/ch", "/ch", "rw", 64*MiB)},
		{"/srv/ch:/ch:", want("/srv/ch", "/ch", "rw", 64*MiB)},
		{"/srv/ch:/ch:ro", want("/srv/ch", "/ch", "ro", 64*MiB)},
		{"/srv/ch:/ch:rw", want("/srv/ch", "/ch", "rw", 64*MiB)},
		{"/srv/ch:/ch::", want("/srv/ch", "/ch", "rw", 64*MiB)},
		{"/srv/ch:/ch::1M", want("/srv/ch", "/ch", "rw", MiB)},
		{"/srv/ch:/ch:ro:", want("/srv/ch", "/ch", "ro", 64*MiB)},
		{"/testdir:/testdir:rw:32M", want("/testdir", "/testdir", "rw", 32*MiB)},
		{"/srv/ch:/ch:ro:1.5M", want("/srv/ch", "/ch", "ro", 3*MiB/2)},
		{"/srv/ch:/ch:rw:4096", want("/srv/ch", "/ch", "rw", 4096)},
		{"/srv/ch:/ch:rw:4k", want("/srv/ch", "/ch", "rw", 4096)},
		{"/srv/ch:/ch:rw:4G", want("/srv/ch", "/ch", "rw", 4*GiB)}, // exactly MemTotal/2
		{"//srv//./x/../ch/:/a/./b//c/", want("/srv/ch", "/a/b/c", "rw", 64*MiB)},
		{"/srv/ch/..:/ch", want("/srv", "/ch", "rw", 64*MiB)},
		{"/srv/with space:/with space", want("/srv/with space", "/with space", "rw", 64*MiB)},
		{"/procfs:/proc2", want("/procfs", "/proc2", "rw", 64*MiB)},
		{"/srv/ch:/devices", want("/srv/ch", "/devices", "rw", 64*MiB)},
		{"/srv/ch:/run", want("/srv/ch", "/run", "rw", 64*MiB)},
		{"/srv/ch:/tmp", want("/srv/ch", "/tmp", "rw", 64*MiB)},
	}
	for _, c := range ok {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", `bad format "" (want host:container[:rw|ro[:size]])`},
		{"/srv/ch", `bad format "/srv/ch"`},
		{"/a:/b:rw:1M:x", `bad format "/a:/b:rw:1M:x"`},
		{"/a:/b:rw:1M:", `bad format`},
		{"/a:/b:c:d:e:f", `bad format`},
		{"srv/ch:/ch", `host path "srv/ch" must be absolute`},
		{"./ch:/ch", `host path "./ch" must be absolute`},
		{":/ch", `host path is empty`},
		{"/:/ch", `host path "/" is the root directory`},
		{"/a/..:/ch", `host path "/a/.." is the root directory`},
		{"/proc/x:/ch", `host path "/proc/x" lies inside the pseudo-filesystem /proc`},
		{"/sys:/ch", `host path "/sys" lies inside the pseudo-filesystem /sys`},
		{"/dev/shm/x:/ch", `host path "/dev/shm/x" lies inside the pseudo-filesystem /dev`},
		{"/srv/../dev/x:/ch", `lies inside the pseudo-filesystem /dev`},
		{"/srv/ch:", `container path is empty`},
		{"/srv/ch:ch", `container path "ch" must be absolute`},
		{"/srv/ch:/", `container path "/" is the container's root`},
		{"/srv/ch://", `container path "//" is the container's root`},
		{"/srv/ch:/x/..", `container path "/x/.." is the container's root`},
		{"/srv/ch:/proc", `container path "/proc" lies inside /proc`},
		{"/srv/ch:/proc/x", `container path "/proc/x" lies inside /proc`},
		{"/srv/ch:/sys", `container path "/sys" lies inside /sys`},
		{"/srv/ch:/sys/fs/cgroup", `lies inside /sys`},
		{"/srv/ch:/dev", `container path "/dev" lies inside /dev`},
		{"/srv/ch:/dev/shm", `container path "/dev/shm" lies inside /dev`},
		{"/srv/ch:/x/../dev/", `container path "/x/../dev/" lies inside /dev`},
		{"/srv/ch:/ch:RW", `invalid mode "RW" (want rw or ro)`},
		{"/srv/ch:/ch:Ro", `invalid mode "Ro" (want rw or ro)`},
		{"/srv/ch:/ch:rx", `invalid mode "rx" (want rw or ro)`},
		{"/srv/ch:/ch:readonly:1M", `invalid mode "readonly"`},
		{"/srv/ch:/ch: rw", `invalid mode " rw"`},
		{"/srv/ch:/ch:rw:abc", `invalid size "abc" (want digits`},
		{"/srv/ch:/ch:rw:.5M", `invalid size ".5M"`},
		{"/srv/ch:/ch:rw:1.M", `invalid size "1.M"`},
		{"/srv/ch:/ch:rw: 1M", `invalid size " 1M"`},
		{"/srv/ch:/ch:rw:1M ", `invalid size "1M "`},
		{"/srv/ch:/ch:rw:+1M", `invalid size "+1M"`},
		{"/srv/ch:/ch:rw:-1M", `invalid size "-1M"`},
		{"/srv/ch:/ch:rw:1e3", `invalid size "1e3"`},
		{"/srv/ch:/ch:rw:0", `size 0 is below the minimum of one page (4096 bytes)`},
		{"/srv/ch:/ch:rw:4095", `size 4095 is below the minimum of one page (4096 bytes)`},
		{"/srv/ch:/ch:rw:1K", `size 1024 is below the minimum of one page (4096 bytes)`},
		{"/srv/ch:/ch:rw:3.99K", `size 4085 is below the minimum`},
		{"/srv/ch:/ch:rw:4294967297", `size 4294967297 exceeds half of total memory (4294967296 bytes)`},
		{"/srv/ch:/ch:rw:5G", `size 5368709120 exceeds half of total memory (4294967296 bytes)`},
		{"/srv/ch:/ch:rw:1T", `exceeds half of total memory`},
	}
	for _, c := range bad {
		got, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error %q", c.in, got, c.msg)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): %v is not ErrInvalid", c.in, err)
		}
		if !strings.HasPrefix(err.Error(), "host channel: ") || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Parse(%q) error = %q, want it to contain %q", c.in, err, c.msg)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error is not one line: %q", c.in, err)
		}
	}
}

func TestParseAvailableMemory(t *testing.T) {
	fakeMem(t, 8*GiB, 1*GiB)
	if _, err := Parse("/srv/ch:/ch:rw:1G"); err != nil {
		t.Fatalf("1G with 1G available: %v", err)
	}
	_, err := Parse("/srv/ch:/ch:rw:2G")
	if err == nil || !strings.Contains(err.Error(), "size 2147483648 exceeds the host's available memory (1073741824 bytes)") {
		t.Fatalf("2G with 1G available: %v", err)
	}
}

func TestParsePageSize(t *testing.T) {
	fakeMem(t, 8*GiB, 6*GiB)
	old := pageSize
	pageSize = func() int { return 65536 }
	t.Cleanup(func() { pageSize = old })
	if _, err := Parse("/a:/b:rw:64K"); err != nil {
		t.Fatal(err)
	}
	_, err := Parse("/a:/b:rw:65535")
	if err == nil || !strings.Contains(err.Error(), "size 65535 is below the minimum of one page (65536 bytes)") {
		t.Fatalf("got %v", err)
	}
}

// TestParseRealMeminfo checks the limits against this host's real page size and meminfo.
func TestParseRealMeminfo(t *testing.T) {
	total, avail, err := readProcMeminfo()
	if err != nil {
		t.Fatal(err)
	}
	ps := int64(os.Getpagesize())
	if _, err := Parse(fmt.Sprintf("/a:/b:rw:%d", ps)); err != nil {
		t.Errorf("one page: %v", err)
	}
	if _, err := Parse(fmt.Sprintf("/a:/b:rw:%d", ps-1)); err == nil {
		t.Error("one page minus one byte accepted")
	}
	if _, err := Parse(fmt.Sprintf("/a:/b:rw:%d", total/2+1)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("exceeds half of total memory (%d bytes)", total/2)) {
		t.Errorf("MemTotal/2+1: %v", err)
	}
	if total/2 <= avail {
		if _, err := Parse(fmt.Sprintf("/a:/b:rw:%d", total/2)); err != nil {
			t.Errorf("MemTotal/2: %v", err)
		}
	}
}

func TestCheck(t *testing.T) {
	fakeMem(t, 8*GiB, 6*GiB)
	got, err := Check(types.HostChannel{PathOnHost: "/srv//ch/", PathInContainer: "/ch/", Size: MiB})
	if err != nil || got != (types.HostChannel{PathOnHost: "/srv/ch", PathInContainer: "/ch", Permissions: "rw", Size: MiB}) {
		t.Errorf("Check = %+v, %v", got, err)
	}
	// A raw API call with size 0 is refused, not an unlimited tmpfs.
	if _, err := Check(types.HostChannel{PathOnHost: "/srv/ch", PathInContainer: "/ch", Permissions: "rw"}); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("size 0 accepted: %v", err)
	}
	if _, err := Check(types.HostChannel{PathOnHost: "/srv/ch", PathInContainer: "/ch", Permissions: "rw", Size: -1}); err == nil {
		t.Error("negative size accepted")
	}
	if _, err := Check(types.HostChannel{PathOnHost: "/srv/c\x00h", PathInContainer: "/ch", Size: MiB}); err == nil {
		t.Error("NUL accepted")
	}
}

// The runtime binds the backing mount (in the root-only mount directory), never the host
// path, which a user owning one of its ancestors could swap for a symlink.
func TestSpecMounts(t *testing.T) {
	m := &Manager{mountDir: "/run/isulad/hostchannels"}
	ms := m.SpecMounts([]types.HostChannel{
		{PathOnHost: "/srv/a", PathInContainer: "/a", Permissions: "rw", Size: MiB},
		{PathOnHost: "/srv/b", PathInContainer: "/b", Permissions: "ro", Size: MiB},
	})
	if len(ms) != 2 {
		t.Fatal(ms)
	}
	for i, mode := range []string{"rw", "ro"} {
		m := ms[i]
		want := "/run/isulad/hostchannels/" + strings.TrimSuffix(recordName([]string{"/srv/a", "/srv/b"}[i]), ".json")
		if m.Type != "bind" || m.Source != want || m.Destination != []string{"/a", "/b"}[i] {
			t.Errorf("mount %d = %+v", i, m)
		}
		if strings.Join(m.Options, ",") != "rbind,rprivate,nosuid,nodev,noexec,"+mode {
			t.Errorf("mount %d options = %v", i, m.Options)
		}
	}
}

func TestMemoryWarning(t *testing.T) {
	ch := func(n int64) types.HostChannel {
		return types.HostChannel{PathOnHost: "/a", PathInContainer: "/a", Size: n}
	}
	cases := []struct {
		chs   []types.HostChannel
		limit int64
		warn  bool
	}{
		{[]types.HostChannel{ch(64 * MiB)}, 0, false},
		{[]types.HostChannel{ch(64 * MiB)}, -1, false},
		{nil, 16 * MiB, false},
		{[]types.HostChannel{ch(64 * MiB)}, 128 * MiB, false}, // exactly half
		{[]types.HostChannel{ch(64*MiB + 1)}, 128 * MiB, true},
		{[]types.HostChannel{ch(64 * MiB)}, 16 * MiB, true},
		{[]types.HostChannel{ch(32 * MiB), ch(33 * MiB)}, 128 * MiB, true},
		{[]types.HostChannel{ch(50)}, 101, false},
		{[]types.HostChannel{ch(51)}, 101, true},
	}
	for i, c := range cases {
		w := MemoryWarning(c.chs, c.limit)
		if (w != "") != c.warn {
			t.Errorf("case %d: warning %q, want warn=%v", i, w, c.warn)
		}
		if strings.HasPrefix(w, "WARNING") {
			t.Errorf("case %d: warning %q carries its own prefix; the client adds \"WARNING: \"", i, w)
		}
		if w != "" && (!strings.Contains(w, "more than half of the memory limit") || !strings.Contains(w, "raising -m") || strings.Contains(w, "\n")) {
			t.Errorf("case %d: warning text %q", i, w)
		}
	}
	w := MemoryWarning([]types.HostChannel{ch(64 * MiB)}, 16*MiB)
	if !strings.Contains(w, fmt.Sprint(80*MiB)) {
		t.Errorf("warning does not suggest -m + channel size: %q", w)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/srv/ch:/ch", "/srv/ch:/ch:ro", "/a:/b:rw:32M", "/a/../b/:/c/./d::1.5G", "a:b:c:d:e", "/proc/x:/y", "/x:/dev", "/x:/y:rw:1e3", "/x:/y:rw:4095", ":", "/:/"} {
		f.Add(s)
	}
	// Fixed memory figures keep the fuzzer deterministic (MemAvailable moves).
	const total = 8 << 30
	old := readMeminfo
	readMeminfo = func() (int64, int64, error) { return total, 6 << 30, nil }
	f.Cleanup(func() { readMeminfo = old })
	ps := int64(os.Getpagesize())
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for _, p := range []string{ch.PathOnHost, ch.PathInContainer} {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || strings.Contains(p, ":") || strings.Contains(p, "\x00") {
				t.Fatalf("Parse(%q): bad path %q", s, p)
			}
		}
		for _, r := range []string{"/proc", "/sys", "/dev"} {
			if within(ch.PathInContainer, r) || within(ch.PathOnHost, r) {
				t.Fatalf("Parse(%q): path in %s: %+v", s, r, ch)
			}
		}
		if ch.Permissions != "rw" && ch.Permissions != "ro" {
			t.Fatalf("Parse(%q): mode %q", s, ch.Permissions)
		}
		if ch.Size < ps || ch.Size > total/2 {
			t.Fatalf("Parse(%q): size %d out of range", s, ch.Size)
		}
		// Parsing is idempotent on its own output.
		again, err := Parse(fmt.Sprintf("%s:%s:%s:%d", ch.PathOnHost, ch.PathInContainer, ch.Permissions, ch.Size))
		if err != nil || again != ch {
			t.Fatalf("Parse(%q) = %+v, re-parse = %+v, %v", s, ch, again, err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "1.5M", "32MiB", ".5", "1.", "+1", "1e3", " 1", "1 ", "9223372036854775807", "1.9999B", "2gB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, n)
		}
		// Syntax invariants: starts with a digit, no space/sign/exponent-only forms.
		if s == "" || s[0] < '0' || s[0] > '9' || strings.ContainsAny(s, " +-\t\n") {
			t.Fatalf("ParseSize accepted %q", s)
		}
		if i := strings.IndexByte(s, '.'); i >= 0 && (i+1 >= len(s) || s[i+1] < '0' || s[i+1] > '9') {
			t.Fatalf("ParseSize accepted %q", s)
		}
		// Plain digits mean bytes.
		if strings.Trim(s, "0123456789") == "" {
			if want, err := strconv.ParseInt(s, 10, 64); err != nil || n != want {
				t.Fatalf("ParseSize(%q) = %d", s, n)
			}
		}
	})
}
