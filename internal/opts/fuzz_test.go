package opts

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/errdefs"
)

// fuzzErr checks the invariants of every error: an invalid argument, one line.
func fuzzErr(t *testing.T, in string, err error) {
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("%q: error %v is not an invalid argument", in, err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("%q: multi-line error %q", in, err.Error())
	}
}

func cleanAbs(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }

func checkMount(t *testing.T, in string, m types.Mount) {
	if !cleanAbs(m.Target) || m.Target == "/" {
		t.Fatalf("%q: bad target %q", in, m.Target)
	}
	switch m.Type {
	case MountBind:
		if !cleanAbs(m.Source) || m.TmpfsSize != 0 || m.TmpfsMode != 0 {
			t.Fatalf("%q: bad bind %+v", in, m)
		}
		if m.Propagation != "" && !propagations[m.Propagation] {
			t.Fatalf("%q: bad propagation %+v", in, m)
		}
	case MountVolume:
		if !ValidVolumeName(m.Source) || m.TmpfsSize != 0 || m.TmpfsMode != 0 {
			t.Fatalf("%q: bad volume %+v", in, m)
		}
		return // a volume becomes a bind only in the daemon, once the volume exists
	case MountTmpfs:
		if m.Source != "" || m.TmpfsSize < 0 || m.TmpfsMode > 0o7777 || m.Propagation != "" {
			t.Fatalf("%q: bad tmpfs %+v", in, m)
		}
	default:
		t.Fatalf("%q: bad type %+v", in, m)
	}
	// What a parser accepts, the API check accepts unchanged.
	if c, err := ValidateMount(m); err != nil || c != m {
		t.Fatalf("%q: ValidateMount(%+v) = %+v, %v", in, m, c, err)
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"/a:/b", "/a:/b:ro", "/a:/b:rw,rshared,z", "a:/b", "/a:/", "/a:/b:ro,rw", "/a/../b:/c/./d:Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseVolume(s)
		if err != nil {
			fuzzErr(t, s, err)
			return
		}
		checkMount(t, s, m)
		if m.Type != MountBind && m.Type != MountVolume {
			t.Fatalf("%q: neither a bind nor a volume", s)
		}
		// Idempotent on its canonical form.
		canon := m.Source + ":" + m.Target
		if m2, err := ParseVolume(canon); err != nil || m2.Source != m.Source || m2.Target != m.Target {
			t.Fatalf("%q: canonical %q gives %+v, %v", s, canon, m2, err)
		}
	})
}

func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"type=bind,source=/a,target=/b", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777",
		`type=bind,"src=/a,b",dst=/c,readonly`, "type=bind,src=/a,dst=/b,bind-propagation=rslave,ro=false"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		if err != nil {
			fuzzErr(t, s, err)
			return
		}
		checkMount(t, s, m)
	})
}

func FuzzParseTmpfs(f *testing.F) {
	for _, s := range []string{"/t", "/run:rw,noexec,nosuid,size=65536k", "/t:size=1g,mode=755,ro", "/t:", "/t:mode=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseTmpfs(s)
		if err != nil {
			fuzzErr(t, s, err)
			return
		}
		checkMount(t, s, m)
		if m.Type != MountTmpfs {
			t.Fatalf("%q: not tmpfs", s)
		}
	})
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"0", "16m", "1.5g", "1e3", "-1", " 1", "9223372036854775807", "8191.99999p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		if err != nil {
			fuzzErr(t, s, err)
			return
		}
		if n < 0 {
			t.Fatalf("%q: negative %d", s, n)
		}
		if strings.ContainsAny(s, " \t\n+-eE") {
			// No unit contains an "e": an accepted "e" would be an exponent.
			t.Fatalf("%q: accepted a sign, space or exponent", s)
		}
		if s2, err := ParseMemorySwap(s); err != nil || s2 != n {
			t.Fatalf("%q: swap parser disagrees: %d %v", s, s2, err)
		}
	})
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"TERM", "sigkill", "9", "RTMIN+3", "SIGRTMAX-2", "0", "65", "RTMIN+31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err != nil {
			fuzzErr(t, s, err)
			return
		}
		if sig < 1 || sig > 64 {
			t.Fatalf("%q: out of range %d", s, sig)
		}
		if back, err := ParseSignal(SignalName(sig)); err != nil || back != sig {
			t.Fatalf("%q: round trip via %q: %d %v", s, SignalName(sig), back, err)
		}
	})
}

func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n# c\n\nB\n", "\xEF\xBB\xBFX=y\r\n", "=x\n", "A B=1", "A=\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lookup := func(k string) (string, bool) { return "v", k == "B" }
		out, err := parseEnvReader(strings.NewReader(string(data)), "f", lookup)
		if err != nil {
			fuzzErr(t, string(data), err)
			if !strings.Contains(err.Error(), "f:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := ValidateEnv(out); err != nil {
			t.Fatalf("parsed file gives an invalid environment %q: %v", out, err)
		}
		for _, e := range out {
			if !utf8.ValidString(e) {
				t.Fatalf("invalid UTF-8 %q", e)
			}
		}
	})
}

func FuzzParseRestartPolicy(f *testing.F) {
	for _, s := range []string{"no", "always", "on-failure:3", "unless-stopped", "on-reboot", "on-failure:-1", "always:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRestartPolicy(s)
		if err != nil {
			fuzzErr(t, s, err)
			return
		}
		if err := ValidateRestartPolicy(p); err != nil {
			t.Fatalf("%q: parsed %+v fails validation: %v", s, p, err)
		}
		if p.MaximumRetryCount < 0 || (p.MaximumRetryCount != 0 && p.Name != RestartOnFailure) {
			t.Fatalf("%q: %+v", s, p)
		}
	})
}
