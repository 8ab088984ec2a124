// Command procps stands in for the pgrep and ipcs of the busybox in
// registry.k8s.io/e2e-test-images/busybox:1.29-2, which Debian's busybox-static (the base of
// every stand-in image) is built without. It is one binary, installed as /bin/pgrep and
// /bin/ipcs, and acts as the name it is started by:
//
//	pgrep [-f] [-l] [-x] PATTERN   the pids of the processes whose name (-f: command line)
//	                               matches the extended regular expression (-x: all of it),
//	                               this one left out; -l adds the name. Exit 1 when none.
//	ipcs [-m] [-q] [-s] [-a]       the System V shared memory segments, message queues and
//	                               semaphore arrays of the IPC namespace, from /proc/sysvipc
//	                               (all three when no option is given).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	name := filepath.Base(os.Args[0])
	var code int
	switch name {
	case "pgrep":
		code = pgrep(os.Args[1:], "/proc", os.Stdout, os.Stderr)
	case "ipcs":
		code = ipcs(os.Args[1:], "/proc/sysvipc", "/etc/passwd", os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "procps: started as %q; want pgrep or ipcs\n", name)
		code = 2
	}
	os.Exit(code)
}

func pgrep(args []string, proc string, stdout, stderr io.Writer) int {
	var full, list, exact bool
	var pattern string
	for i, a := range args {
		if a == "--" {
			if i+1 < len(args) {
				pattern = args[i+1]
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pattern = a
			break
		}
		for _, c := range a[1:] {
			switch c {
			case 'f':
				full = true
			case 'l':
				list = true
			case 'x':
				exact = true
			default:
				fmt.Fprintf(stderr, "pgrep: unknown option -%c (want -f, -l, -x)\n", c)
				return 2
			}
		}
	}
	if pattern == "" {
		fmt.Fprintln(stderr, "usage: pgrep [-flx] PATTERN")
		return 2
	}
	if exact {
		pattern = "^(?:" + pattern + ")$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		fmt.Fprintf(stderr, "pgrep: pattern %q: %v\n", pattern, err)
		return 2
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		fmt.Fprintf(stderr, "pgrep: %v\n", err)
		return 3
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	found := false
	for _, pid := range pids {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			continue // gone meanwhile
		}
		name := strings.TrimSuffix(string(comm), "\n")
		subject := name
		if full {
			if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmd) > 0 {
				subject = strings.TrimRight(strings.ReplaceAll(string(cmd), "\x00", " "), " ")
			}
		}
		if !re.MatchString(subject) {
			continue
		}
		found = true
		if list {
			fmt.Fprintf(stdout, "%d %s\n", pid, name)
		} else {
			fmt.Fprintf(stdout, "%d\n", pid)
		}
	}
	if !found {
		return 1
	}
	return 0
}

func ipcs(args []string, sysvipc, passwd string, stdout, stderr io.Writer) int {
	var shm, msg, sem bool
	for _, a := range args {
		switch a {
		case "-m":
			shm = true
		case "-q":
			msg = true
		case "-s":
			sem = true
		case "-a":
			shm, msg, sem = true, true, true
		default:
			fmt.Fprintf(stderr, "ipcs: unknown option %q (want -m, -q, -s or -a)\n", a)
			return 1
		}
	}
	if !shm && !msg && !sem {
		shm, msg, sem = true, true, true
	}
	users := readUsers(passwd)
	type table struct {
		on     bool
		file   string
		title  string
		header []string
		row    func(f map[string]string) []string
	}
	owner := func(f map[string]string) string {
		if n, ok := users[f["uid"]]; ok {
			return n
		}
		return f["uid"]
	}
	perms := func(f map[string]string) string {
		p, _ := strconv.ParseUint(f["perms"], 8, 32)
		return strconv.FormatUint(p&0o777, 8)
	}
	tables := []table{
		{msg, "msg", "Message Queues", []string{"key", "msqid", "owner", "perms", "used-bytes", "messages"},
			func(f map[string]string) []string {
				return []string{key(f["key"]), f["msqid"], owner(f), perms(f), f["cbytes"], f["qnum"]}
			}},
		{shm, "shm", "Shared Memory Segments", []string{"key", "shmid", "owner", "perms", "bytes", "nattch", "status"},
			func(f map[string]string) []string {
				p, _ := strconv.ParseUint(f["perms"], 8, 32)
				status := ""
				if p&0o1000 != 0 {
					status = "dest"
				}
				if p&0o2000 != 0 {
					status = strings.TrimSpace(status + " locked")
				}
				return []string{key(f["key"]), f["shmid"], owner(f), perms(f), f["size"], f["nattch"], status}
			}},
		{sem, "sem", "Semaphore Arrays", []string{"key", "semid", "owner", "perms", "nsems"},
			func(f map[string]string) []string {
				return []string{key(f["key"]), f["semid"], owner(f), perms(f), f["nsems"]}
			}},
	}
	for _, t := range tables {
		if !t.on {
			continue
		}
		rows, err := readSysvipc(filepath.Join(sysvipc, t.file))
		if err != nil {
			fmt.Fprintf(stderr, "ipcs: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "\n------ %s --------\n", t.title)
		fmt.Fprintln(stdout, columns(t.header))
		for _, r := range rows {
			fmt.Fprintln(stdout, columns(t.row(r)))
		}
	}
	fmt.Fprintln(stdout)
	return 0
}

func columns(cells []string) string {
	var b strings.Builder
	for _, c := range cells {
		fmt.Fprintf(&b, "%-10s ", c)
	}
	return strings.TrimRight(b.String(), " ")
}

// key prints a System V key as ipcs does, in hexadecimal (the kernel lists it as a signed int).
func key(s string) string {
	k, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	return fmt.Sprintf("0x%08x", uint32(k))
}

// readSysvipc reads one of /proc/sysvipc's tables: a header line naming the columns, then
// one line per object.
func readSysvipc(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return nil, sc.Err()
	}
	header := strings.Fields(sc.Text())
	var rows []map[string]string
	for sc.Scan() {
		vals := strings.Fields(sc.Text())
		r := map[string]string{}
		for i, h := range header {
			if i < len(vals) {
				r[h] = vals[i]
			}
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

// readUsers maps uids to names from the container's /etc/passwd (none if it cannot be read).
func readUsers(path string) map[string]string {
	users := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return users
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 2 {
			if _, ok := users[f[2]]; !ok {
				users[f[2]] = f[0]
			}
		}
	}
	return users
}
