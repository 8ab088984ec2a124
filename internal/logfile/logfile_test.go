package logfile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain\n", "quote\" back\\ tab\t cr\r", "<html>&", "\x00\x1f\x7f", "héllo ✓", "bad \xff\xfe utf8", "\u2028\u2029", ""} {
		ts := []byte("2024-01-02T03:04:05.5Z")
		got := AppendEntry(nil, "stdout", []byte(s), ts)
		want, _ := json.Marshal(map[string]string{"log": s, "stream": "stdout", "time": string(ts)})
		if string(got) != string(want)+"\n" {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func readAll(t *testing.T, path string, tail int) []Entry {
	t.Helper()
	var es []Entry
	if err := Read(context.Background(), path, tail, false, func(e Entry) error {
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return es
}

func TestWriteSplitsLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	w.Write("stdout", []byte("a\nb\npart"), now)
	w.Write("stderr", []byte("ial\n"), now)
	w.Close()
	es := readAll(t, path, -1)
	want := []string{"stdout:a\n", "stdout:b\n", "stdout:part", "stderr:ial\n"}
	if len(es) != len(want) {
		t.Fatalf("got %v", es)
	}
	for i, e := range es {
		if e.Stream+":"+e.Log != want[i] || !e.Time.Equal(now) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"time":"2024-01-02T02:04:05.000000006Z"`) {
		t.Errorf("time not UTC RFC3339Nano: %s", b)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	w, err := NewWriter(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if err := w.Write("stdout", []byte(fmt.Sprintf("line %02d\n", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	for _, name := range []string{"log", "log.1", "log.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 200 {
			t.Errorf("%s has %d bytes", name, st.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "log.3")); err == nil {
		t.Error("log.3 kept with max-file 3")
	}
	es := readAll(t, path, -1)
	if len(es) == 0 || es[len(es)-1].Log != "line 39\n" {
		t.Fatalf("last entry %+v", es)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Log <= es[i-1].Log {
			t.Fatalf("out of order: %q after %q", es[i].Log, es[i-1].Log)
		}
	}
	// Tail spanning files.
	for _, n := range []int{0, 1, 3, len(es) - 1, len(es), len(es) + 5} {
		got := readAll(t, path, n)
		exp := n
		if exp > len(es) {
			exp = len(es)
		}
		if len(got) != exp {
			t.Fatalf("tail %d: %d entries", n, len(got))
		}
		if exp > 0 && got[0].Log != es[len(es)-exp].Log {
			t.Fatalf("tail %d starts with %q", n, got[0].Log)
		}
	}
}

func TestRotationMaxFileOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, _ := NewWriter(path, 100, 1)
	for i := 0; i < 20; i++ {
		w.Write("stdout", []byte(fmt.Sprintf("l%02d\n", i)), time.Now())
	}
	w.Close()
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Fatal("rotated file kept with max-file 1")
	}
	es := readAll(t, path, -1)
	if len(es) == 0 || es[len(es)-1].Log != "l19\n" {
		t.Fatalf("%+v", es)
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, _ := NewWriter(path, 300, 5)
	w.Write("stdout", []byte("first\n"), time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1000)
	errc := make(chan error)
	go func() {
		errc <- Read(ctx, path, 1, true, func(e Entry) error {
			got <- e.Log
			return nil
		})
	}()
	if s := <-got; s != "first\n" {
		t.Fatalf("got %q", s)
	}
	for i := 0; i < 50; i++ {
		w.Write("stderr", []byte(fmt.Sprintf("n%02d\n", i)), time.Now())
		if i%10 == 0 {
			time.Sleep(2 * pollInterval)
		}
	}
	deadline := time.After(5 * time.Second)
	for i := 0; i < 50; i++ {
		select {
		case s := <-got:
			if want := fmt.Sprintf("n%02d\n", i); s != want {
				t.Fatalf("got %q want %q", s, want)
			}
		case <-deadline:
			t.Fatalf("timeout after %d entries", i)
		}
	}
	w.Write("stdout", []byte("last\n"), time.Now())
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "last\n" {
		t.Fatalf("final drain got %q", s)
	}
	w.Close()
}

func TestReadMissing(t *testing.T) {
	if err := Read(context.Background(), filepath.Join(t.TempDir(), "nope"), -1, false, func(Entry) error { return nil }); !os.IsNotExist(err) {
		t.Fatalf("err %v", err)
	}
}

// One write holding many lines (a 32 KiB read of a busy pipe) still rotates at max size.
func TestRotateWithinOneWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := NewWriter(path, 1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	var big []byte
	for i := 0; i < 500; i++ {
		big = append(big, fmt.Sprintf("line-%03d\n", i)...)
	}
	if err := w.Write("stdout", big, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1024 {
			t.Errorf("%s is %d bytes, over max-size 1024", p, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Errorf("more files than max-file")
	}
}
