package cli

import (
	"bytes"
	"testing"

	apiv1 "github.com/isulad-go/isulad/api/v1"
	"github.com/isulad-go/isulad/internal/cli/runopts"
)

// afterRun is what the front (cmd/isula/isula.c) sends the daemon for a command line it
// serves: the arguments after the word run (internal/front's tests check the hello).
func afterRun(args []string) []string {
	for i, a := range args {
		if a == "run" {
			return args[i+1:]
		}
	}
	return nil
}

// The daemon builds, from the command line a front sends, the very create request the full
// client sends for it (one definition of the flags, internal/cli/runopts), and serves the
// same runs.
func TestFrontSameRequest(t *testing.T) {
	rootfs := t.TempDir()
	for _, args := range [][]string{
		{"run", "--external-rootfs", rootfs, "none", "sh", "-c", "echo a; exit 3"},
		{"run", "--rm", "--name", "web", "-e", "A=1", "-e", "FROMHOST", "-e", "NOTSET", "-l", "k=v",
			"-m", "64m", "--cpus", "1.5", "--pids-limit", "50", "--stop-timeout", "3", "--stop-signal", "INT",
			"--tmpfs", "/t:size=1m", "--read-only", "--cap-drop", "ALL", "--network", "none",
			"--entrypoint", "", "-w", "/tmp", "-u", "0:0", "-h", "box", "--sig-proxy=false",
			"--pull", "never", "--external-rootfs", rootfs, "none", "true"},
		{"-H", "unix:///x.sock", "run", "--external-rootfs", rootfs, "none", "<&>"},
	} {
		f := &fakeClient{stream: []*apiv1.StreamOut{ready, exitMsg(0, "")}}
		if code, _, errs := run(t, f, args...); code != 0 {
			t.Fatalf("%q: full client: %d %s", args, code, errs)
		}
		a := f.sent[0].GetAttach()
		p, ok := runopts.PlanRun(afterRun(args), func(k string) (string, bool) {
			if k == "FROMHOST" {
				return "hostval", true
			}
			return "", false
		})
		if !ok {
			t.Fatalf("%q: the daemon does not serve it", args)
		}
		if a == nil || !bytes.Equal(a.CreateJson, p.Create) {
			t.Fatalf("%q: the daemon's create request differs:\nfull:   %s\ndaemon: %s", args, a.GetCreateJson(), p.Create)
		}
	}
}
