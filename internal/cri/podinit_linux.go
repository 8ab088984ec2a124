package cri

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/procwait"
)

// A pod that shares one PID namespace among its containers (shareProcessNamespace) needs a
// process: a PID namespace lives only as long as its init. That init is this binary run again
// under the name podInitArg0 in a new PID namespace: it ignores signals and reaps the orphans
// of the pod's containers, nothing else. It is started only for such pods; the others have no
// process at all (docs/cri.md).

const podInitArg0 = "isulad-pod-init"

func init() {
	if os.Args[0] == podInitArg0 && os.Getpid() == 1 {
		podInitMain()
	}
}

// podInitMain is PID 1 of a pod's PID namespace.
func podInitMain() {
	// A PID 1 gets no signal from its namespace it has no handler for; from outside only
	// SIGKILL matters. Ignoring the rest keeps a stray kill from ending the pod.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	// Ready: closing fd 3 (the write end of startPodInit's pipe) tells it this process is the
	// pod init by name and ignores signals, so it can be found and is not ended by a stray one.
	unix.Close(3)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-ch
	}
}

// podInit is a running pod init, by pid and start time (so a recycled pid is never taken
// for it).
type podInit struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procStart is a process's start time in clock ticks after boot (field 22 of /proc/pid/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("bad /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive tells whether the pod init still runs.
func (p podInit) alive() bool {
	if p.Pid <= 0 {
		return false
	}
	st, err := procStart(p.Pid)
	return err == nil && st == p.Start
}

// kill ends the pod init, and with it every process left in its PID namespace.
func (p podInit) kill() {
	if p.alive() {
		unix.Kill(p.Pid, unix.SIGKILL)
	}
}

// startPodInit starts a pod init in a new PID namespace, pins the namespace at dir/pid and
// records the init in dir/init.json (so an interrupted RunPodSandbox can be swept).
func startPodInit(dir string) (podInit, error) {
	pinned := filepath.Join(dir, "pid")
	f, err := os.OpenFile(pinned, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return podInit{}, fmt.Errorf("pod PID namespace: %w", err)
	}
	f.Close()
	ready, readyW, err := os.Pipe()
	if err != nil {
		os.Remove(pinned)
		return podInit{}, fmt.Errorf("pod PID namespace: %w", err)
	}
	defer ready.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{podInitArg0}, Dir: "/",
		ExtraFiles:  []*os.File{readyW},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		os.Remove(pinned)
		return podInit{}, fmt.Errorf("pod PID namespace: starting its init: %w", err)
	}
	go procwait.Wait(cmd) // reaped by the daemon while it runs; by the host's init after a restart
	p := podInit{Pid: cmd.Process.Pid}
	// Until the child has run this binary as the pod init (its command line and signal
	// dispositions), it is not yet findable as one: wait for it to close fd 3, or to die.
	if _, err := ready.Read(make([]byte, 1)); err != io.EOF {
		cmd.Process.Kill()
		os.Remove(pinned)
		return podInit{}, fmt.Errorf("pod PID namespace: its init did not start: %v", err)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid)); string(cmdline) != podInitArg0+"\x00" {
		cmd.Process.Kill()
		os.Remove(pinned)
		return podInit{}, errors.New("pod PID namespace: its init exited at start")
	}
	fail := func(err error) (podInit, error) {
		cmd.Process.Kill()
		unpinNamespaces(dir)
		os.Remove(filepath.Join(dir, "init.json"))
		return podInit{}, err
	}
	if p.Start, err = procStart(p.Pid); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "init.json"), fmt.Appendf(nil, `{"pid":%d,"start":%d}`, p.Pid, p.Start), 0o600); err != nil {
		return fail(err)
	}
	if err := unix.Mount(fmt.Sprintf("/proc/%d/ns/pid", p.Pid), pinned, "", unix.MS_BIND, ""); err != nil {
		return fail(fmt.Errorf("pod PID namespace: pinning it: %w", err))
	}
	return p, nil
}

// killPodInitIn ends the init recorded in dir/init.json, if it still runs; without that file
// (removed by hand), the init of the PID namespace pinned at dir/pid.
func killPodInitIn(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "init.json"))
	if err == nil {
		var p podInit
		if _, err := fmt.Sscanf(string(b), `{"pid":%d,"start":%d}`, &p.Pid, &p.Start); err == nil {
			p.kill()
		}
		os.Remove(filepath.Join(dir, "init.json"))
		return
	}
	if p, ok := initOfPinnedPIDNamespace(filepath.Join(dir, "pid")); ok {
		p.kill()
	}
}

// initOfPinnedPIDNamespace finds the pod init whose PID namespace is pinned at path: the
// process named podInitArg0 whose /proc/<pid>/ns/pid is that namespace and that is PID 1 in it.
func initOfPinnedPIDNamespace(path string) (podInit, bool) {
	if !namespacePinned(path) {
		return podInit{}, false
	}
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return podInit{}, false
	}
	want := fmt.Sprintf("pid:[%d]", st.Ino)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); link != want {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if string(cmd) != podInitArg0+"\x00" || !strings.Contains(string(status), "NSpid:\t"+e.Name()+"\t1\n") {
			continue
		}
		if start, err := procStart(pid); err == nil {
			return podInit{Pid: pid, Start: start}, true
		}
	}
	return podInit{}, false
}
