package logfile

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCRIWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "0.log")
	w, err := NewCRIWriter(p)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 60, time.FixedZone("x", 3600))
	w.Write("stdout", []byte("one\ntwo\npart"), at)
	w.Write("stderr", []byte("err\n"), at)
	w.Write("stdout", []byte("\n"), at)
	// The kubelet renames the file, then asks for a reopen: the next line is in a new file.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("before reopen\n"), at)
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("after\n"), at)
	w.Close()
	old, _ := os.ReadFile(p + ".1")
	ts := "2026-01-02T02:04:05.000000060Z"
	want := ts + " stdout F one\n" + ts + " stdout F two\n" + ts + " stdout P part\n" + ts + " stderr F err\n" +
		ts + " stdout F \n" + ts + " stdout F before reopen\n"
	if string(old) != want {
		t.Errorf("rotated file:\n%s\nwant:\n%s", old, want)
	}
	cur, _ := os.ReadFile(p)
	if string(cur) != ts+" stdout F after\n" {
		t.Errorf("reopened file: %q", cur)
	}
	// The kubelet's parser (pkg/kubelet/kuberuntime/logs) wants exactly this shape.
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [PF] .*$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(old)+string(cur), "\n"), "\n") {
		if !re.MatchString(l) {
			t.Errorf("not a CRI log line: %q", l)
		}
	}
}

// The engine's own reader (isula logs) reads CRI logs too.
func TestReadCRILog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "0.log")
	w, _ := NewCRIWriter(p)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	w.Write("stdout", []byte("one\npar"), at)
	w.Write("stdout", []byte("t\n"), at)
	w.Write("stderr", []byte("err\n"), at)
	w.Close()
	os.WriteFile(p+".junk", nil, 0o600)
	var got []string
	if err := Read(context.Background(), p, 2, false, func(e Entry) error {
		got = append(got, e.Stream+":"+e.Log)
		if !e.Time.Equal(at) {
			t.Errorf("time %v", e.Time)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "stdout:t\n|stderr:err\n" {
		t.Errorf("tail 2 of a CRI log: %q", got)
	}
	for _, bad := range []string{"x stdout F a\n", "2026-01-02T03:04:05Z stdin F a\n", "2026-01-02T03:04:05Z stdout X a\n", "2026-01-02T03:04:05Z stdout F\n"} {
		if _, ok := parseCRILine([]byte(bad)); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}
