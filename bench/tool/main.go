// Command tool is the helper of bench/run.sh.
//
//	tool time [-n 30] [-w 3] [-title T] [-vs A/B,...] [-json F] [-before CMD] [-after CMD] name=CMD...
//	    run the commands interleaved (round-robin, rotating the order every round, so the noise
//	    of a shared machine hits every contender alike) and print median, p10, p90 and ratios:
//	    the median of the per-round ratios (paired; with its IQR) and the ratio of the medians.
//	tool seq [-n 10] [-w 1] [-title T] [-base NAME] -ops op1,op2,.. name='cmd1|cmd2|...'...
//	    a sequence of steps per contender and round (e.g. create|start|stop|rm), each timed.
//	tool spec SRC DST CGROUPSPATH [ARG...]
//	    copy an OCI config.json, setting linux.cgroupsPath (and process.args if ARGs are given).
//	tool rss PID...      print the VmRSS (KiB) of each pid, then sum and mean.
//	tool stop RUNTIME ROOT ID SIGNAL [TIMEOUT]
//	    signal a raw runtime's container and wait (polling /proc) until its init is gone.
//
// A CMD is split on blanks and run directly (no shell, so no quoting); prefix it with "sh:"
// to run it with sh -c. {} in a command is the round number. Output goes to /dev/null; a
// non-zero exit fails the whole run.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		die("usage: tool time|seq|spec|rss|stop ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "time":
		timeCmd(args)
	case "seq":
		seqCmd(args)
	case "spec":
		specCmd(args)
	case "rss":
		rssCmd(args)
	case "stop":
		stopCmd(args)
	default:
		die("unknown subcommand " + os.Args[1])
	}
}

func die(msg string) {
	fmt.Fprintln(os.Stderr, "tool: "+msg)
	os.Exit(1)
}

// command builds the exec.Cmd of a CMD for round r.
func command(s string, r int) *exec.Cmd {
	s = strings.ReplaceAll(s, "{}", strconv.Itoa(r))
	if rest, ok := strings.CutPrefix(s, "sh:"); ok {
		return exec.Command("sh", "-c", rest)
	}
	f := strings.Fields(s)
	return exec.Command(f[0], f[1:]...)
}

// timed runs s and returns its wall time in ms. Its output goes to a file, not a pipe: a
// detached container (runc create) keeps its stdio open long after the command returned.
func timed(s string, r int) float64 {
	c := command(s, r)
	f, err := os.CreateTemp("", "bench-out-")
	if err != nil {
		die(err.Error())
	}
	defer os.Remove(f.Name())
	defer f.Close()
	c.Stdout, c.Stderr = f, f
	t0 := time.Now()
	err = c.Run()
	d := time.Since(t0)
	if err != nil {
		out, _ := os.ReadFile(f.Name())
		f.Close()
		os.Remove(f.Name()) // die exits without running the deferred removal
		die(fmt.Sprintf("%q: %v: %s", s, err, strings.TrimSpace(string(out))))
	}
	return float64(d.Microseconds()) / 1000
}

func hook(s string, name string, r int) {
	if s == "" {
		return
	}
	s = strings.ReplaceAll(s, "%s", name)
	c := command("sh:"+s, r)
	if out, err := c.CombinedOutput(); err != nil {
		die(fmt.Sprintf("%q: %v: %s", s, err, strings.TrimSpace(string(out))))
	}
}

type contender struct {
	Name    string               `json:"name"`
	Cmd     string               `json:"cmd"`
	Samples []float64            `json:"samples_ms"`
	Steps   map[string][]float64 `json:"steps_ms,omitempty"`
}

func parseContenders(args []string) []*contender {
	var cs []*contender
	for _, a := range args {
		name, cmd, ok := strings.Cut(a, "=")
		if !ok || strings.TrimSpace(cmd) == "" {
			die(fmt.Sprintf("want name=CMD, got %q", a))
		}
		cs = append(cs, &contender{Name: name, Cmd: cmd, Steps: map[string][]float64{}})
	}
	if len(cs) == 0 {
		die("no commands")
	}
	return cs
}

func byName(cs []*contender, n string) *contender {
	for _, c := range cs {
		if c.Name == n {
			return c
		}
	}
	die("no contender " + n)
	return nil
}

func timeCmd(args []string) {
	fs := flag.NewFlagSet("time", flag.ExitOnError)
	n := fs.Int("n", 30, "timed rounds")
	w := fs.Int("w", 3, "warm-up rounds (untimed)")
	out := fs.String("json", "", "write samples as JSON here")
	before := fs.String("before", "", "untimed sh command before each timed one ({} = round, %s = name)")
	after := fs.String("after", "", "untimed sh command after each timed one")
	title := fs.String("title", "", "table title")
	vs := fs.String("vs", "", "extra paired ratios: A/B,C/D")
	fs.Parse(args)
	cs := parseContenders(fs.Args())
	for r := 0; r < *w+*n; r++ {
		for k := range cs {
			c := cs[(k+r)%len(cs)]
			hook(*before, c.Name, r)
			d := timed(c.Cmd, r)
			hook(*after, c.Name, r)
			if r >= *w {
				c.Samples = append(c.Samples, d)
			}
		}
	}
	if *title != "" {
		fmt.Printf("\n**%s** (%d interleaved rounds after %d warm-up; wall ms)\n\n", *title, *n, *w)
	}
	fmt.Printf("| command | median | p10 | p90 | vs %s: paired ratio [IQR] | ratio of medians |\n|---|---:|---:|---:|---:|---:|\n", cs[0].Name)
	for i, c := range cs {
		pr, mr := "1", "1"
		if i > 0 {
			pr, mr = ratios(c.Samples, cs[0].Samples)
		}
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %s | %s |\n", c.Name, q(c.Samples, .5), q(c.Samples, .1), q(c.Samples, .9), pr, mr)
	}
	if *vs != "" {
		fmt.Printf("\n| pair | paired ratio [IQR] | ratio of medians |\n|---|---:|---:|\n")
		for _, p := range strings.Split(*vs, ",") {
			a, b, ok := strings.Cut(p, "/")
			if !ok {
				die("bad -vs " + p)
			}
			pr, mr := ratios(byName(cs, a).Samples, byName(cs, b).Samples)
			fmt.Printf("| %s / %s | %s | %s |\n", a, b, pr, mr)
		}
	}
	writeJSON(*out, cs)
}

// ratios: median [IQR] of the per-round ratios a[i]/b[i], and the ratio of medians.
func ratios(a, b []float64) (string, string) {
	var r []float64
	for i := range a {
		if i < len(b) && b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return fmt.Sprintf("%.2fx [%.2f-%.2f]", q(r, .5), q(r, .25), q(r, .75)), fmt.Sprintf("%.2fx", q(a, .5)/q(b, .5))
}

func seqCmd(args []string) {
	fs := flag.NewFlagSet("seq", flag.ExitOnError)
	n := fs.Int("n", 10, "timed rounds")
	w := fs.Int("w", 1, "warm-up rounds")
	title := fs.String("title", "", "table title")
	opsFlag := fs.String("ops", "create,start,stop,rm", "step names")
	out := fs.String("json", "", "write samples as JSON here")
	fs.Parse(args)
	ops := strings.Split(*opsFlag, ",")
	cs := parseContenders(fs.Args())
	for _, c := range cs {
		if len(strings.Split(c.Cmd, "|")) != len(ops) {
			die(fmt.Sprintf("%s: want %d steps separated by |", c.Name, len(ops)))
		}
	}
	for r := 0; r < *w+*n; r++ {
		for k := range cs {
			c := cs[(k+r)%len(cs)]
			for i, step := range strings.Split(c.Cmd, "|") {
				d := timed(strings.TrimSpace(step), r)
				if r >= *w {
					c.Steps[ops[i]] = append(c.Steps[ops[i]], d)
				}
			}
		}
	}
	if *title != "" {
		fmt.Printf("\n**%s** (%d interleaved rounds after %d warm-up; wall ms, median [p10-p90], paired ratio to %s)\n\n", *title, *n, *w, cs[0].Name)
	}
	fmt.Printf("| step |")
	for _, c := range cs {
		fmt.Printf(" %s |", c.Name)
	}
	fmt.Printf("\n|---|%s\n", strings.Repeat("---:|", len(cs)))
	for _, op := range ops {
		fmt.Printf("| %s |", op)
		for i, c := range cs {
			s := c.Steps[op]
			cell := fmt.Sprintf("%.1f [%.1f-%.1f]", q(s, .5), q(s, .1), q(s, .9))
			if i > 0 {
				pr, _ := ratios(s, cs[0].Steps[op])
				cell += " " + strings.Fields(pr)[0]
			}
			fmt.Printf(" %s |", cell)
		}
		fmt.Println()
	}
	writeJSON(*out, cs)
}

func writeJSON(path string, v any) {
	if path == "" {
		return
	}
	b, _ := json.MarshalIndent(v, "", " ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		die(err.Error())
	}
}

// q is the quantile p of xs (linear interpolation); NaN for none.
func q(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	x := p * float64(len(s)-1)
	lo, hi := int(math.Floor(x)), int(math.Ceil(x))
	return s[lo] + (s[hi]-s[lo])*(x-float64(lo))
}

func specCmd(args []string) {
	if len(args) < 3 {
		die("usage: tool spec SRC DST CGROUPSPATH [ARG...]")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		die(err.Error())
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		die(err.Error())
	}
	linux, _ := s["linux"].(map[string]any)
	if linux == nil {
		die("spec without linux")
	}
	// Mounts made from the container's own cgroup (a system container's cgroup2 dir on hybrid
	// hosts) follow the new path.
	if old, _ := linux["cgroupsPath"].(string); old != "" {
		if ms, ok := s["mounts"].([]any); ok {
			for _, m := range ms {
				if mm, ok := m.(map[string]any); ok {
					if src, ok := mm["source"].(string); ok && strings.HasSuffix(src, old) {
						mm["source"] = strings.TrimSuffix(src, old) + args[2]
					}
				}
			}
		}
	}
	linux["cgroupsPath"] = args[2]
	// Files the engine bind-mounts from the container's directory (hosts, resolv.conf,
	// hostname: made at its start) are made beside DST, with the same bind mounts.
	srcDir, dstDir := filepath.Dir(args[0]), filepath.Dir(args[1])
	if ms, ok := s["mounts"].([]any); ok {
		for _, m := range ms {
			mm, ok := m.(map[string]any)
			if !ok {
				continue
			}
			src, _ := mm["source"].(string)
			if filepath.Dir(src) != srcDir {
				continue
			}
			dst := filepath.Join(dstDir, filepath.Base(src))
			if _, err := os.Stat(dst); err != nil {
				content := ""
				switch filepath.Base(src) {
				case "hosts":
					content = "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
				case "hostname":
					content = "bench\n"
				}
				if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
					die(err.Error())
				}
			}
			mm["source"] = dst
		}
	}
	if len(args) > 3 {
		proc, _ := s["process"].(map[string]any)
		if proc == nil {
			die("spec without process")
		}
		proc["args"] = args[3:]
	}
	b, _ = json.Marshal(s)
	if err := os.WriteFile(args[1], b, 0o644); err != nil {
		die(err.Error())
	}
}

// vmRSS returns a pid's VmRSS in KiB.
func vmRSS(pid string) (int, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return 0, fmt.Errorf("no VmRSS for %s", pid)
}

func rssCmd(args []string) {
	sum, n, max := 0, 0, 0
	for _, p := range args {
		v, err := vmRSS(p)
		if err != nil {
			continue
		}
		sum += v
		n++
		if v > max {
			max = v
		}
	}
	if n == 0 {
		die("no live pid")
	}
	fmt.Printf("%d %d %d %d\n", n, sum, sum/n, max) // count, sum KiB, mean KiB, max KiB
}

func stopCmd(args []string) {
	if len(args) < 4 {
		die("usage: tool stop RUNTIME ROOT ID SIGNAL [TIMEOUT]")
	}
	rt, root, id, sig := args[0], args[1], args[2], args[3]
	timeout := 30 * time.Second
	if len(args) > 4 {
		d, err := time.ParseDuration(args[4])
		if err != nil {
			die(err.Error())
		}
		timeout = d
	}
	out, err := exec.Command(rt, "--root", root, "state", id).Output()
	if err != nil {
		die(fmt.Sprintf("%s state %s: %v", rt, id, err))
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if json.Unmarshal(out, &st) != nil || st.Pid <= 0 {
		die("no pid in state of " + id)
	}
	if out, err := exec.Command(rt, "--root", root, "kill", id, sig).CombinedOutput(); err != nil {
		die(fmt.Sprintf("%s kill: %v: %s", rt, err, out))
	}
	deadline := time.Now().Add(timeout)
	// A signal that arrives before the container's shell has set its trap is lost (pid 1 of
	// a namespace ignores what it has no handler for): send it again now and then.
	resend := time.Now().Add(250 * time.Millisecond)
	for time.Now().Before(deadline) {
		if time.Now().After(resend) {
			exec.Command(rt, "--root", root, "kill", id, sig).Run()
			resend = time.Now().Add(250 * time.Millisecond)
		}
		if syscall.Kill(st.Pid, 0) == syscall.ESRCH {
			return
		}
		// A zombie counts as gone: its parent (pid 1 for a detached runtime) reaps it.
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
				return
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	die("timeout waiting for " + id)
}
