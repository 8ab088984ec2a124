package integration

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type eventJSON struct {
	Type, Action, ID string
	Attributes       map[string]string
	TimeNano         int64
}

// eventStream is an `isula events` client running in the background.
type eventStream struct {
	cmd   *exec.Cmd
	lines chan eventJSON
}

func (d *Daemon) startEvents(t *testing.T, args ...string) *eventStream {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "isula"), append([]string{"-H", "unix://" + d.Sock, "events", "--format", "{{json .}}"}, args...)...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &eventStream{cmd: cmd, lines: make(chan eventJSON, 1000)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e eventJSON
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				s.lines <- e
			}
		}
		close(s.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return s
}

// until collects events until one with action (of container id) arrives.
func (s *eventStream) until(t *testing.T, id, action string) []eventJSON {
	t.Helper()
	var got []eventJSON
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e, ok := <-s.lines:
			if !ok {
				t.Fatalf("events ended before %s %s; got %v", action, id, actions(got))
			}
			got = append(got, e)
			if e.ID == id && e.Action == action {
				return got
			}
		case <-timeout:
			t.Fatalf("no %s event for %s; got %v", action, id, actions(got))
		}
	}
}

func actions(es []eventJSON) string {
	var a []string
	for _, e := range es {
		a = append(a, e.Type+":"+e.Action)
	}
	return strings.Join(a, " ")
}

func TestEventsLiveAndAfterRestart(t *testing.T) {
	d := StartDaemon(t)
	rf := Rootfs(t)
	t0 := time.Now()
	live := d.startEvents(t)
	onlyDie := d.startEvents(t, "--filter", "event=die", "--filter", "type=container")
	// The first event must reach them: wait until the daemon has both subscribed.
	WaitFor(t, "the events clients to connect", 10*time.Second, func() bool {
		return strings.Count(d.Log(), "events client subscribed") == 2
	})
	ch := filepath.Join(d.TempDir(), "ch")
	id := d.Must("create", "--name", "ev1", "--host-channel", ch+":/ch:rw:1M", "--external-rootfs", rf, "none", "sleep", "1000")
	d.Must("start", id)
	d.Must("exec", id, "true")
	d.Must("pause", id)
	d.Must("unpause", id)
	d.Must("rename", id, "ev2")
	d.Must("restart", "-t", "0", id)
	d.Must("stop", "-t", "0", id)
	d.Must("start", id)
	d.Must("kill", "-s", "TERM", id)
	d.Must("rm", "-f", id)
	got := live.until(t, id, "rm")
	want := "container:create hostchannel:mount container:start container:exec_create container:exec_start container:exec_die " +
		"container:pause container:unpause container:rename container:die container:start container:restart container:die container:stop " +
		"container:start container:kill container:die hostchannel:unmount container:rm"
	if a := actions(got); a != want {
		t.Fatalf("events:\n got %s\nwant %s", a, want)
	}
	for _, e := range got {
		if e.Action == "die" && e.Attributes["exitCode"] != "137" && e.Attributes["exitCode"] != "143" {
			t.Errorf("die without its exit code: %+v", e)
		}
		if e.Action == "kill" && e.Attributes["signal"] != "SIGTERM" {
			t.Errorf("kill: %+v", e)
		}
		if e.Action == "rename" && (e.Attributes["oldName"] != "ev1" || e.Attributes["name"] != "ev2") {
			t.Errorf("rename: %+v", e)
		}
	}
	dies := onlyDie.until(t, id, "die")
	dies = append(dies, onlyDie.until(t, id, "die")...)
	dies = append(dies, onlyDie.until(t, id, "die")...)
	if a := actions(dies); a != "container:die container:die container:die" {
		t.Fatalf("filtered: %s", a)
	}

	// The OOM killer: an oom event, then die 137.
	oom := d.Must("run", "-d", "-m", "32m", "--memory-swap", "32m", "--external-rootfs", rf, "none", "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)")
	got = live.until(t, oom, "die")
	if a := actions(got); !strings.HasSuffix(a, "container:oom container:die") || got[len(got)-1].Attributes["exitCode"] != "137" {
		t.Fatalf("oom: %s %+v", a, got[len(got)-1])
	}
	d.Must("rm", oom)
	live.until(t, oom, "rm")

	// After a daemon restart (and a SIGKILL), --since still sees all of it.
	d.Stop()
	d.Start()
	d.Kill()
	d.Start()
	since := strconv.FormatInt(t0.Unix(), 10)
	out := d.Must("events", "--since", since, "--until", "0s", "--filter", "container="+id, "--format", "{{.Action}}")
	if strings.Join(strings.Fields(out), " ") != "create mount start exec_create exec_start exec_die pause unpause rename die start restart die stop start kill die unmount rm" {
		t.Fatalf("--since after restart: %q", out)
	}
	// The name as it was then selects too; --until in the past bounds the output.
	if out := d.Must("events", "--since", since, "--until", "0s", "--filter", "container=ev1", "--filter", "event=create", "--format", "{{.ID}}"); out != id {
		t.Fatalf("by the old name: %q", out)
	}
	for _, bad := range [][]string{{"events", "--since", "yesterday"}, {"events", "--filter", "color=red"}, {"events", "--format", "{{.X"}} {
		if r := d.Isula(bad...); r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%v: %s", bad, r)
		}
	}
}

// TestStreamsDoNotHoldUpDaemonStop: an events, stats or logs -f client that follows for ever
// used to make a clean daemon stop wait for gRPC's graceful-stop bound (3 s) before it cut them.
func TestStreamsDoNotHoldUpDaemonStop(t *testing.T) {
	d := StartDaemon(t)
	stop := func() time.Duration {
		start := time.Now()
		d.Stop()
		return time.Since(start)
	}
	base := stop()
	d.Start()
	id := d.Must("run", "-d", "--external-rootfs", Rootfs(t), "none", "sleep", "1000")
	logs := exec.Command(filepath.Join(binDir, "isula"), "-H", "unix://"+d.Sock, "logs", "-f", id)
	logs.Start()
	ev := exec.Command(filepath.Join(binDir, "isula"), "-H", "unix://"+d.Sock, "events")
	st := exec.Command(filepath.Join(binDir, "isula"), "-H", "unix://"+d.Sock, "stats")
	var evErr, stErr strings.Builder
	ev.Stderr, st.Stderr = &evErr, &stErr
	ev.Start()
	st.Start()
	WaitFor(t, "the events client to subscribe", 10*time.Second, func() bool {
		return strings.Contains(d.Log(), "events client subscribed")
	})
	took := stop()
	ev.Wait()
	st.Wait()
	logs.Wait()
	t.Logf("daemon stop: %s alone, %s with an events, a stats and a logs -f client", base, took)
	if took > base+2*time.Second {
		t.Fatalf("the streaming clients held the stop up: %s (alone %s)", took, base)
	}
	for _, e := range []string{evErr.String(), stErr.String()} {
		if !strings.Contains(e, "shutting down") || strings.Count(strings.TrimSpace(e), "\n") != 0 {
			t.Errorf("client's last words: %q", e)
		}
	}
	d.Start()
}
