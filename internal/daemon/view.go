package daemon

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isulad-go/isulad/api/types"
	"github.com/isulad-go/isulad/internal/cgroups"
	"github.com/isulad-go/isulad/internal/container"
)

// Version of the engine, set at build time.
var (
	Version   = "0.1.0"
	GitCommit = "unknown"
)

// Inspect builds docker's inspect document for a container.
func (d *Daemon) Inspect(c *container.Container) types.ContainerJSON {
	c.Lock()
	j := types.ContainerJSON{
		ID: c.ID, Created: c.Created, State: c.State, Image: inspectImage(c), Name: "/" + c.Name,
		RestartCount: c.RestartCount, Driver: rootfsDriver(c), LogPath: d.logPath(c),
		HostConfig: c.HostConfig, Config: c.Config, CgroupsPath: c.CgroupsPath,
		BundlePath: d.store.Dir(c.ID), SystemdInit: c.SystemdInit,
	}
	j.Config.StopSignal = c.StopSignal
	c.Unlock()
	if args := processArgs(j.Config); len(args) > 0 {
		j.Path = args[0]
		j.Args = args[1:]
	}
	if j.Args == nil {
		j.Args = []string{}
	}
	j.HostChannels = d.hostChannelStatus(c)
	j.NetworkSettings = d.networkSettings(c) // network.go
	return j
}

// List returns ps rows, filtered.
func (d *Daemon) List(all bool, filters map[string][]string) ([]types.Container, error) {
	for k := range filters {
		switch k {
		case "status", "name", "id":
		default:
			return nil, fmt.Errorf("--filter %q: unknown filter (want status, name or id): %w", k, errInvalid)
		}
	}
	for _, v := range filters["status"] {
		switch v {
		case "created", "running", "paused", "restarting", "removing", "exited", "dead":
		default:
			return nil, fmt.Errorf("--filter status=%q: want created, running, paused, restarting, removing, exited or dead: %w", v, errInvalid)
		}
	}
	match := func(key, val string) bool {
		vs, ok := filters[key]
		if !ok {
			return true
		}
		for _, v := range vs {
			switch key {
			case "status":
				if v == val {
					return true
				}
			case "name":
				if strings.Contains(val, strings.TrimPrefix(v, "/")) {
					return true
				}
			case "id":
				if strings.HasPrefix(val, v) {
					return true
				}
			}
		}
		return false
	}
	out := []types.Container{}
	for _, c := range d.store.List() {
		c.Lock()
		st := c.State
		row := types.Container{
			ID: c.ID, Names: c.Name, Image: c.Config.Image, Command: strings.Join(processArgs(c.Config), " "),
			Created: c.Created, State: st.Status, Status: statusPhrase(st), Pid: st.Pid,
		}
		c.Unlock()
		row.Ports = d.portsColumn(c) // network.go
		_, hasStatus := filters["status"]
		if !all && !hasStatus && st.Status != string(container.Running) && st.Status != string(container.Paused) && st.Status != string(container.Restarting) {
			continue
		}
		if match("status", st.Status) && match("name", row.Names) && match("id", row.ID) {
			out = append(out, row)
		}
	}
	return out, nil
}

// statusPhrase is docker's human status: "Up 3 minutes", "Exited (0) 2 seconds ago".
func statusPhrase(st types.State) string {
	now := time.Now()
	switch st.Status {
	case "running":
		return "Up " + humanDuration(now.Sub(st.StartedAt))
	case "paused":
		return "Up " + humanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	case "removing":
		return "Removal In Progress"
	case "dead":
		return "Dead"
	case "exited":
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	}
	return "Created"
}

// humanDuration follows docker's go-units HumanDuration.
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Round(time.Hour).Hours())
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

// Top lists the container's processes with ps.
func (d *Daemon) Top(ctx context.Context, c *container.Container, psArgs []string) ([]string, [][]string, error) {
	if st := c.Status(); st != container.Running && st != container.Paused {
		return nil, nil, fmt.Errorf("container %s is not running: %w", c.Name, errConflict)
	}
	rt, err := d.runtime(c.Runtime)
	if err != nil {
		return nil, nil, err
	}
	pids, err := rt.Ps(ctx, c.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("listing processes of %s: %v", c.Name, err)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.CommandContext(ctx, "ps", psArgs...).Output()
	if err != nil {
		return nil, nil, fmt.Errorf("ps %s: %v: %w", strings.Join(psArgs, " "), err, errInvalid)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return nil, nil, fmt.Errorf("ps %s: output has no PID column: %w", strings.Join(psArgs, " "), errInvalid)
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	var rows [][]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol {
			continue
		}
		pid, _ := strconv.Atoi(f[pidCol])
		if !want[pid] {
			continue
		}
		if len(f) > len(titles) {
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		rows = append(rows, f)
	}
	return titles, rows, nil
}

// Info describes the daemon and the host.
func (d *Daemon) Info() types.Info {
	in := types.Info{
		ServerVersion: Version, DefaultRuntime: d.cfg.DefaultRuntime, Runtimes: map[string]string{},
		GraphRoot: d.cfg.Graph, StateRoot: d.cfg.State, NCPU: runtime.NumCPU(), CgroupDriver: "cgroupfs",
		CgroupVersion: cgroups.Mode(),
	}
	for _, c := range d.store.List() {
		in.Containers++
		switch c.Status() {
		case container.Running:
			in.ContainersRunning++
		case container.Paused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	for name, rc := range d.cfg.Runtimes {
		in.Runtimes[name] = runtimeUsable(name, rc.Path)
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		in.KernelVersion = unix.ByteSliceToString(u.Release[:])
		in.Name = unix.ByteSliceToString(u.Nodename[:])
	}
	if f, err := os.Open("/etc/os-release"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
				in.OperatingSystem = strings.Trim(v, `"`)
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				in.MemTotal = kb * 1024
			}
		}
		f.Close()
	}
	return in
}

// runtimeUsable says whether a runtime can run containers on this host's cgroup layout.
func runtimeUsable(name, path string) string {
	if _, err := os.Stat(path); err != nil {
		return "not installed (" + path + ")"
	}
	if name == "crun" && cgroups.Mode() == "hybrid" {
		if data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && strings.TrimSpace(string(data)) != "" {
			return "unusable: crun refuses this hybrid cgroup layout while controllers (" + strings.TrimSpace(string(data)) + ") are on cgroup2; move them to v1 (scripts/cgroup-hugetlb.sh move)"
		}
	}
	return "usable (" + path + ")"
}
