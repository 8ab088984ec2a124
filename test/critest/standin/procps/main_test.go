package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc makes a /proc with the given processes (pid -> comm, cmdline with NULs).
func fakeProc(t *testing.T, procs map[string][2]string) string {
	dir := t.TempDir()
	for pid, p := range procs {
		os.MkdirAll(filepath.Join(dir, pid), 0o755)
		os.WriteFile(filepath.Join(dir, pid, "comm"), []byte(p[0]+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, pid, "cmdline"), []byte(p[1]), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "self"), 0o755) // not a pid
	return dir
}

func TestPgrep(t *testing.T) {
	proc := fakeProc(t, map[string][2]string{
		"1":  {"sh", "sh\x00-c\x00top\x00"},
		"7":  {"sleep", "sleep\x004321\x00"},
		"12": {"top", "top\x00"},
		"30": {"sleepy", "sleepy\x00"},
	})
	for _, tc := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"sleep"}, "7\n30\n", 0},
		{[]string{"-x", "sleep"}, "7\n", 0},
		{[]string{"-l", "^to"}, "12 top\n", 0},
		{[]string{"-f", "sh -c top"}, "1\n", 0},
		{[]string{"nginx"}, "", 1},
		{[]string{"-q", "x"}, "", 2},
		{nil, "", 2},
		{[]string{"("}, "", 2},
	} {
		var out, errb strings.Builder
		code := pgrep(tc.args, proc, &out, &errb)
		if code != tc.code || out.String() != tc.out {
			t.Errorf("pgrep %q: exit %d out %q (%s); want %d %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out)
		}
	}
}

func TestIpcs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "shm"), []byte(
		"       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"+
			"-1029568231      32768  1644               1048576   100   0      0     33     0     0     0          0          0 1700000000                     0                     0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "msg"), []byte("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sem"), []byte("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"), 0o644)
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n"), 0o644)

	var out, errb strings.Builder
	if code := ipcs([]string{"-m"}, dir, passwd, &out, &errb); code != 0 {
		t.Fatalf("ipcs -m: exit %d: %s", code, errb.String())
	}
	o := out.String()
	for _, want := range []string{"Shared Memory Segments", "0xc2a20919 32768      www-data   644        1048576    0          dest"} {
		if !strings.Contains(o, want) {
			t.Errorf("ipcs -m output lacks %q:\n%s", want, o)
		}
	}
	if strings.Contains(o, "Message Queues") {
		t.Errorf("ipcs -m lists queues:\n%s", o)
	}
	out.Reset()
	ipcs(nil, dir, passwd, &out, &errb)
	for _, want := range []string{"Message Queues", "Shared Memory Segments", "Semaphore Arrays"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ipcs lacks %q", want)
		}
	}
	if code := ipcs([]string{"-z"}, dir, passwd, &out, &errb); code != 1 {
		t.Errorf("ipcs -z: exit %d", code)
	}
}
