package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/internal/reaper"
	"github.com/isulad-go/isulad/internal/unixsock"
)

// runtime drives the OCI runtime binary. Every invocation is a child started
// with ForkExec and reaped by the shim's reaper.
type runtime struct {
	bin      string
	root     string
	stateDir string
	reaper   *reaper.Reaper
}

// seq numbers the console sockets of concurrent runtime invocations (execs run side by
// side): each has its own, so none can take over another's.
var seq atomic.Uint64

func nextSeq() string { return strconv.FormatUint(seq.Add(1), 10) }

// run runs the runtime with args (after the global flags) and stdio (nil
// entries are /dev/null) and waits for it. Its error carries the runtime's
// error messages, read from its --log: a memfd the runtime has as fd 3 and opens
// as /proc/self/fd/3 (a file per call in the state directory was an inode made
// and freed on every start's path; on ext4 that is a scan of the recently freed
// ones, docs/PERFORMANCE.md).
func (r *runtime) run(name string, stdio [3]*os.File, args ...string) error {
	lfd, err := unix.MemfdCreate("runtime-"+name+"-log", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%s %s: the log's memfd: %w", r.bin, name, err)
	}
	logFile := os.NewFile(uintptr(lfd), "runtime-"+name+"-log")
	defer logFile.Close()
	argv := []string{r.bin}
	if r.root != "" {
		argv = append(argv, "--root", r.root)
	}
	argv = append(argv, "--log", "/proc/self/fd/3", "--log-format", "json")
	argv = append(argv, args...)

	var devnull *os.File
	files := make([]uintptr, 4)
	files[3] = logFile.Fd()
	for i, f := range stdio {
		if f == nil {
			if devnull == nil {
				var err error
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return err
				}
				defer devnull.Close()
			}
			f = devnull
		}
		files[i] = f.Fd()
	}
	pid, err := syscall.ForkExec(r.bin, argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.bin, name, err)
	}
	e := <-r.reaper.Wait(pid)
	if e.Status == 0 {
		return nil
	}
	return r.failure(name, logFile, e.Status)
}

// failure is the error of a runtime call that exited with status, its messages read from
// its JSON log.
func (r *runtime) failure(name string, log io.ReaderAt, status int) error {
	msg := runtimeErrors(io.NewSectionReader(log, 0, 1<<20))
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", status)
	}
	// runc says "runc run failed: ..." itself; crun does not name itself.
	if base := filepath.Base(r.bin); !strings.HasPrefix(msg, base+" ") {
		msg = base + " " + name + ": " + msg
	}
	return errors.New(msg)
}

// runtimeErrors returns the error-level messages of a runtime's JSON log.
func runtimeErrors(f io.Reader) string {
	var msgs, all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				all = append(all, s)
			}
			continue
		}
		if e.Level == "error" || e.Level == "fatal" {
			msgs = append(msgs, e.Msg)
		}
		all = append(all, e.Msg)
	}
	if len(msgs) == 0 {
		msgs = all
	}
	return strings.Join(msgs, ": ")
}

// consoleSocket receives the pty master a runtime sends on a
// --console-socket.
type consoleSocket struct {
	dir  string
	path string
	l    *unixsock.Listener
	got  chan *os.File // the received pty master, nil if receiving failed
}

// newConsoleSocket listens on a path of its own (concurrent execs each have
// one) that is short (the runtime connects by path, so it must fit in
// sun_path): in dir if short enough, else in a temporary directory. It
// accepts the runtime's connection in the background; await returns what it
// carried.
func newConsoleSocket(dir string) (*consoleSocket, error) {
	cs := &consoleSocket{}
	name := "pty-" + nextSeq() + ".sock"
	path := filepath.Join(dir, name)
	if len(path) > 100 {
		d, err := os.MkdirTemp("", "isulad-shim-")
		if err != nil {
			return nil, err
		}
		cs.dir = d
		path = filepath.Join(d, name)
	}
	l, err := unixsock.Listen(path) // replaces a file left by a killed shim
	if err != nil {
		cs.close()
		return nil, err
	}
	cs.path, cs.l = path, l
	cs.got = make(chan *os.File, 1)
	go func() {
		f, err := cs.receive()
		if err != nil {
			f = nil
		}
		cs.got <- f
	}()
	return cs, nil
}

// await returns the pty master the runtime sent, waiting for it at most 5 s
// (the runtime sends it before its create returns).
func (cs *consoleSocket) await() (*os.File, error) {
	select {
	case f := <-cs.got:
		if f != nil {
			return f, nil
		}
	case <-time.After(5 * time.Second):
	}
	return nil, errors.New("no console received from the runtime")
}

// receive accepts one connection and returns the file descriptor it
// carries, as a non-blocking *os.File.
func (cs *consoleSocket) receive() (*os.File, error) {
	c, err := cs.l.Accept()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: %d control messages", len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("console socket: expected one fd")
	}
	unix.CloseOnExec(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

func (cs *consoleSocket) close() {
	if cs.l != nil {
		cs.l.Close()
	}
	if cs.path != "" {
		os.Remove(cs.path)
	}
	if cs.dir != "" {
		os.RemoveAll(cs.dir)
	}
}

// setWinsize sets a pty's size without switching the file to blocking mode.
func setWinsize(f *os.File, w, h uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: w, Row: h})
	})
	if err != nil {
		return err
	}
	return ierr
}

// readPidFile reads a pid file written by the runtime.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, b)
	}
	return pid, nil
}

// writeFileAtomic writes data to path through a temporary file and a rename,
// so a reader (a restarting daemon) sees the old content or the new, never a
// torn file. It does not fsync: the shim writes only runtime state (shim.pid,
// init.pid, exit.json under --state, a tmpfs on a normal host), which means
// nothing after a machine crash, when every container is gone anyway; the
// syncs cost 0.3-2 ms each on the start and exit paths (docs/PERFORMANCE.md).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writePidFile writes pid to path. A new file is written in place: one write(2) of a few
// bytes, so a reader sees all of it or an empty file, never a part (the engine reads
// neither pid file; they are for tools and operators, as containerd's shim's are). One
// already there (from an earlier shim of the container) is replaced atomically, as
// writeFileAtomic does. In place, a first start's pid files cost no second name and no
// rename.
func writePidFile(path string, pid int) error {
	data := []byte(strconv.Itoa(pid))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return writeFileAtomic(path, data)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// oomKilled reports whether the OOM killer struck in the container's memory
// cgroup (cgroup v1 memory.oom_control or v2 memory.events). Read it before
// the runtime deletes the cgroup.
func oomKilled(cgroupsPath string) bool {
	if !strings.HasPrefix(cgroupsPath, "/") {
		return false
	}
	p := filepath.Clean(cgroupsPath)
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", p, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", p, "memory.events"),
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n > 0
			}
		}
	}
	return false
}
