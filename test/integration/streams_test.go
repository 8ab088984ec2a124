package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent `exec -t` into one container: each exec gets its own console socket, so each
// session sees its own terminal and nothing else, and none is left without one (issue 10,
// defect 2: they shared <state>/pty.sock).
func TestConcurrentExecTTY(t *testing.T) {
	d := StartDaemon(t)
	id := d.Must("run", "-d", "--external-rootfs", busyboxRoot, "none", "sleep", "600")
	const n = 8
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The token is built inside the container, so the command line (which a
			// cross-wired terminal would not show anyway) cannot pass for the output.
			results[i] = d.Isula("exec", "-t", id, "sh", "-c", fmt.Sprintf("tty >/dev/null && echo tok-$((%d*1000+7))-end; sleep 0.5", i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		want := fmt.Sprintf("tok-%d-end", i*1000+7)
		if r.Code != 0 || !strings.Contains(r.Stdout, want) || strings.Count(r.Stdout, "tok-") != 1 {
			t.Errorf("exec %d (want only %s): %s", i, want, r)
		}
	}
	// Nothing of the execs stays in the container's state directory.
	ents, err := os.ReadDir(filepath.Join(d.State, "containers", id))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch e.Name() {
		case "shim.pid", "init.pid", "shim.log":
		default:
			t.Errorf("left in the state dir: %s", e.Name())
		}
	}
}

// An attached `isula run` whose reader is slow gets every byte: the container's writes wait
// for the reader (as with docker attach), and the log holds everything too (issue 10,
// defect 11: 589,824 of 52,428,800 bytes arrived, exit 0).
func TestRunSlowReaderGetsEveryByte(t *testing.T) {
	d := StartDaemon(t)
	const size = 32 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "isula"), "-H", "unix://"+d.Sock,
		"run", "--name", "slow", "--external-rootfs", busyboxRoot, "none",
		"sh", "-c", fmt.Sprintf("dd if=/dev/zero bs=1048576 count=%d 2>/dev/null; echo done", size>>20))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The reader sleeps (the container is long done by itself in that time), then reads
	// slowly.
	time.Sleep(4 * time.Second)
	var got int64
	buf := make([]byte, 64<<10)
	var tail []byte
	for {
		n, err := out.Read(buf)
		got += int64(n)
		if n > 0 {
			tail = append(tail, buf[:n]...)
			if len(tail) > 16 {
				tail = tail[len(tail)-16:]
			}
		}
		if err != nil {
			break
		}
		if got < 4<<20 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("isula run: %v; stderr: %s", err, stderr.String())
	}
	if want := int64(size + len("done\n")); got != want || !strings.HasSuffix(string(tail), "done\n") {
		t.Errorf("the slow reader got %d bytes, want %d (stderr: %s)", got, want, stderr.String())
	}
	// The log is complete as well.
	logs := exec.CommandContext(ctx, filepath.Join(binDir, "isula"), "-H", "unix://"+d.Sock, "logs", "slow")
	lo, err := logs.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, lo)
	if err := logs.Wait(); err != nil {
		t.Errorf("isula logs: %v", err)
	}
	if want := int64(size + len("done\n")); n != want {
		t.Errorf("the log holds %d bytes, want %d", n, want)
	}
}
