package trash

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoveMovesAndDeletes(t *testing.T) {
	root := t.TempDir()
	b, err := Open(filepath.Join(root, ".trash"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "c1")
	if err := os.MkdirAll(filepath.Join(victim, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "sub/b"} {
		if err := os.WriteFile(filepath.Join(victim, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Fatalf("%s still there after Remove: %v", victim, err)
	}
	b.Wait()
	ents, err := os.ReadDir(filepath.Join(root, ".trash"))
	if err != nil || len(ents) != 0 {
		t.Fatalf("trash not emptied: %v %v", ents, err)
	}
	if err := b.Remove(filepath.Join(root, "missing")); err != nil {
		t.Fatalf("missing path: %v", err)
	}
}

func TestOpenEmptiesLeftovers(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, ".trash")
	if err := os.MkdirAll(filepath.Join(dir, "7-left", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("leftovers not removed: %v %v", ents, err)
	}
}

func TestOtherFileSystemIsDeletedInPlace(t *testing.T) {
	// /dev/shm is a tmpfs: a directory there cannot be renamed into a trash on the test's
	// temp dir unless that is the same tmpfs.
	shm, err := os.MkdirTemp("/dev/shm", "trash-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(shm)
	b, err := Open(filepath.Join(t.TempDir(), ".trash"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(shm, "c")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", victim, err)
	}
}

// The deletions run on a thread of their own at nice 19, and Wait still waits for all of
// them, from several bins at once.
func TestWorkerLowPriority(t *testing.T) {
	root := t.TempDir()
	var bins []*Bin
	for _, n := range []string{"a", "b"} {
		b, err := Open(filepath.Join(root, n, ".trash"))
		if err != nil {
			t.Fatal(err)
		}
		bins = append(bins, b)
	}
	for i := 0; i < 20; i++ {
		b := bins[i%2]
		victim := filepath.Join(filepath.Dir(b.dir), fmt.Sprintf("c%d", i))
		if err := os.MkdirAll(filepath.Join(victim, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(victim, "sub", "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := b.Remove(victim); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bins {
		b.Wait()
		if ents, err := os.ReadDir(b.dir); err != nil || len(ents) != 0 {
			t.Fatalf("%s not emptied: %v %v", b.dir, ents, err)
		}
	}
	// The worker's thread: the one thread of this process at nice 19.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("no /proc/self/task: %v", err)
	}
	niced := 0
	for _, task := range tasks {
		st, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "stat"))
		if err != nil {
			continue
		}
		// Field 19 is nice; the command (field 2) is in parentheses and may hold spaces.
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
		if len(f) > 16 && f[16] == "19" {
			niced++
		}
	}
	if niced != 1 {
		t.Fatalf("%d threads at nice 19, want the worker's one", niced)
	}
}
