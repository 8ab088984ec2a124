// Command webserver stands in for nginx and httpd in the images critest pulls
// (registry.k8s.io/e2e-test-images/nginx:1.14-2 and httpd:2.4.39-4, and cri-tools'
// hostnet-nginx). It is installed as /usr/sbin/nginx or /usr/local/apache2/bin/httpd and
// behaves as that server does where critest looks:
//
//   - it serves the files of the server's document root over HTTP on the port of the server's
//     config file (`listen N;` in /etc/nginx/conf.d/default.conf, `Listen N` in
//     /usr/local/apache2/conf/httpd.conf), every address;
//   - nginx runs as "nginx: master process nginx -g daemon off;" (critest reads /proc/1/cmdline
//     for "master process") and writes its pid to /var/run/nginx.pid (critest compares it with
//     what pidof nginx finds in a host-PID container); httpd writes
//     /usr/local/apache2/logs/httpd.pid and says "httpd" on stderr at start (critest looks for it
//     in the container's log);
//   - SIGTERM, SIGINT and SIGQUIT stop it (exit 0), also as PID 1.
//
// Which server it is comes from the name of its executable, not from argv[0], which nginx
// rewrites.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is what differs between the two servers.
type server struct {
	name     string
	conf     string // config file the port and root are read from
	listenKw string // its keyword for the port
	rootKw   string // its keyword for the document root
	port     int    // defaults when the file does not say
	root     string
	pidFile  string
}

var servers = map[string]server{
	"nginx": {name: "nginx", conf: "/etc/nginx/conf.d/default.conf", listenKw: "listen", rootKw: "root",
		port: 80, root: "/usr/share/nginx/html", pidFile: "/var/run/nginx.pid"},
	"httpd": {name: "httpd", conf: "/usr/local/apache2/conf/httpd.conf", listenKw: "Listen", rootKw: "DocumentRoot",
		port: 80, root: "/usr/local/apache2/htdocs", pidFile: "/usr/local/apache2/logs/httpd.pid"},
}

const nginxTitlePrefix = "nginx: master process "

func main() {
	exe, err := os.Executable()
	if err != nil {
		fatal("webserver", err)
	}
	s, ok := servers[filepath.Base(exe)]
	if !ok {
		fatal("webserver", fmt.Errorf("installed as %q; want an executable named nginx or httpd", exe))
	}
	if s.name == "nginx" && !strings.HasPrefix(os.Args[0], nginxTitlePrefix) {
		// nginx's master names itself after its command line; so does this one, by exec'ing
		// itself with that argv[0] (the kernel keeps the executable's name, nginx, as comm).
		title := nginxTitlePrefix + strings.Join(append([]string{"nginx"}, os.Args[1:]...), " ")
		fatal(s.name, syscall.Exec(exe, []string{title}, os.Environ()))
	}
	if err := s.readConf(); err != nil {
		fatal(s.name, err)
	}
	fatal(s.name, s.run())
}

func fatal(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}

// readConf takes the port and the document root from the server's config file, if present.
func (s *server) readConf() error {
	f, err := os.Open(s.conf)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	port, root, err := parseConf(bufio.NewScanner(f), s.listenKw, s.rootKw)
	if err != nil {
		return fmt.Errorf("%s: %v", s.conf, err)
	}
	if port != 0 {
		s.port = port
	}
	if root != "" {
		s.root = root
	}
	return nil
}

// parseConf finds the first `<listenKw> PORT` and `<rootKw> DIR` lines (a trailing `;` and
// quotes are dropped; `#` starts a comment).
func parseConf(sc *bufio.Scanner, listenKw, rootKw string) (port int, root string, err error) {
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		if len(f) < 2 {
			continue
		}
		val := strings.Trim(f[1], `"`)
		switch f[0] {
		case listenKw:
			if port != 0 {
				continue
			}
			p := val
			if i := strings.LastIndexByte(p, ':'); i >= 0 {
				p = p[i+1:]
			}
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return 0, "", fmt.Errorf("%s %q: want a port number 1-65535", listenKw, val)
			}
			port = n
		case rootKw:
			if root == "" {
				root = val
			}
		}
	}
	return port, root, sc.Err()
}

func (s *server) run() error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(s.port))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.pidFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: stand-in web server, pid %d, serving %s on %s\n", s.name, os.Getpid(), s.root, l.Addr())

	files := http.FileServer(http.Dir(s.root))
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// An access log line on stdout, as both images log.
			fmt.Printf("%s - - [%s] \"%s %s %s\" %s\n", r.RemoteAddr, time.Now().Format("02/Jan/2006:15:04:05 -0700"),
				r.Method, r.URL.RequestURI(), r.Proto, r.UserAgent())
			files.ServeHTTP(w, r)
		}),
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case sig := <-stop:
		fmt.Fprintf(os.Stderr, "%s: %v, stopping\n", s.name, sig)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Remove(s.pidFile)
		os.Exit(0)
	}
	return nil
}
