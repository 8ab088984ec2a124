// Package front is the light isula client (cmd/isula). It serves the common cases, an
// attached non-interactive `isula run` and `isula run -d`, over the light protocol
// (internal/lightproto), and execs the full client (isula-full, beside it) with the same
// arguments and environment for everything else. It must not link gRPC or protobuf: their
// package initialisation and page faults are ~2 ms of every client start
// (docs/ARCHITECTURE.md, "Front and full client"). Nor does it parse run's flags: it sends
// the command line, and the daemon parses it with the full client's flag definitions and
// request building (internal/cli/runopts.PlanRun), or hands it back.
//
// What it serves it must print exactly as the full client does: the same messages and exit
// codes.
package front

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/isulad-go/isulad/internal/errdefs"
	"github.com/isulad-go/isulad/internal/front/fullexec"
	"github.com/isulad-go/isulad/internal/lightproto"
	"github.com/isulad-go/isulad/internal/sigproxy"
	"github.com/isulad-go/isulad/internal/unixsock"
)

// Kept in step with internal/cli (cli.go): the front cannot import it (gRPC).
const (
	defaultHost = "unix:///var/run/isulad.sock"
	hostEnv     = "ISULAD_HOST"
	exitEngine  = 125
)

// Plan is what the front does with a command line.
type Plan struct {
	Serve bool   // serve it over the light protocol; else exec the full client
	Host  string // -H as given (for messages)
	Path  string // the daemon's socket
	Hello lightproto.Hello
	// Fallback: a not-found error before the container is made (the image is not here)
	// execs the full client, which pulls it (--pull=missing) and runs.
	Fallback bool
	// ExitAfter: the process exits as soon as Run returned (Main), so a connection that
	// got its exit is left to that exit to close.
	ExitAfter bool
	// OneP: the process goes on with one P once the hello is sent (Main, unless
	// GOMAXPROCS is in the environment). A client waits on one connection; the resize's
	// stop of the world and the second P's teardown were 0.4 ms in front of the connect
	// when main did it first (docs/PERFORMANCE.md, issue 14's sixth round).
	OneP bool
}

// Prepare reads the command line up to the word run, before which only -H/--host may come
// (else the full client runs it), and finds the daemon's socket. The arguments after run
// and the environment go to the daemon in the hello: it parses them as the full client
// would (runopts.PlanRun) and serves them or hands them back. Parsing them here, with the
// flag definitions and the packages behind them, was ~0.9 ms of the front's start
// (docs/PERFORMANCE.md, issue 14's sixth round). getenv reads the environment; environ is
// all of it.
func Prepare(args []string, getenv func(string) string, environ []string) Plan {
	host := defaultHost
	if h := getenv(hostEnv); h != "" {
		host = h
	}
	i := 0 // args[i] is "run"
	for ; i < len(args) && args[i] != "run"; i++ {
		switch a := args[i]; {
		case (a == "-H" || a == "--host") && i+1 < len(args):
			host = args[i+1]
			i++
		case strings.HasPrefix(a, "-H="):
			host = strings.TrimPrefix(a, "-H=")
		case strings.HasPrefix(a, "--host="):
			host = strings.TrimPrefix(a, "--host=")
		default:
			return Plan{}
		}
	}
	if i+1 >= len(args) {
		return Plan{} // no run, or nothing after it
	}
	path, ok := socketPath(host)
	if !ok {
		return Plan{}
	}
	return Plan{Serve: true, Host: host, Path: path,
		Hello: lightproto.Hello{Argv: args[i+1:], Env: environ}}
}

// socketPath is the full client's dialTarget: unix:///path, unix:/path or /path. A path
// over sun_path's limit is left to the full client.
func socketPath(h string) (string, bool) {
	var p string
	switch {
	case strings.HasPrefix(h, "unix://"):
		p = strings.TrimPrefix(h, "unix://")
	case strings.HasPrefix(h, "unix:/"):
		p = strings.TrimPrefix(h, "unix:")
	default:
		p = h
	}
	if !strings.HasPrefix(p, "/") || len(p) > 107 {
		return "", false
	}
	return p, true
}

// Main runs the front with the process's arguments and returns only when it served them.
func Main() int {
	p := Prepare(os.Args[1:], os.Getenv, os.Environ())
	if !p.Serve {
		return ExecFull()
	}
	p.ExitAfter = true
	p.OneP = os.Getenv("GOMAXPROCS") == ""
	code, full := Run(p, os.Stdout, os.Stderr)
	if full {
		return ExecFull()
	}
	return code
}

// ExecFull replaces the process with the full client (internal/front/fullexec).
func ExecFull() int { return fullexec.Exec() }

// Run serves p: it returns the exit code, or full when the full client must run the
// command instead (nothing was made: the daemon cannot be reached on the light protocol,
// or the image is not here and --pull=missing).
func Run(p Plan, stdout, stderr io.Writer) (code int, full bool) {
	conn, err := unixsock.Dial(context.Background(), p.Path)
	if err != nil {
		return 0, true // the full client says why
	}
	// Left open once the exit came: the process's exit closes it, and the daemon starts the
	// next spare shim at that end of the connection, which then does not compete with the
	// last moments of this process.
	keepOpen := false
	defer func() {
		if !keepOpen {
			conn.Close()
		}
	}()
	if err := lightproto.WriteHello(conn, p.Hello); err != nil {
		return 0, true
	}
	if p.OneP {
		runtime.GOMAXPROCS(1) // while the daemon creates the container
	}
	// The signal proxy is set up once the hello is out (with a command line, at the plan),
	// while the daemon creates the container, and armed at FrameReady: its setup (os/signal's
	// thread and loop, ~1 ms of CPU here) then neither delays the start nor competes with a
	// short container's exit on the way back, as it did when it was made at FrameReady
	// (docs/PERFORMANCE.md, issue 14's fifth round).
	var ready atomic.Bool
	var stopProxy func()
	defer func() {
		if stopProxy != nil {
			stopProxy()
		}
	}()
	startProxy := func() {
		if p.Hello.SigProxy && !p.Hello.Detach { // the daemon proxies nothing for -d
			stopProxy = proxySignals(conn, &ready)
		}
	}
	planned := len(p.Hello.Argv) == 0 // a hello with a create request needs no plan
	if planned {
		startProxy()
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	created, first := false, true
	id := ""
	for {
		typ, payload, err := lightproto.ReadFrame(r)
		if !planned {
			// The daemon's answer to the command line. Anything but its plan (its
			// handover, an error, the end of the connection: a daemon that does not parse
			// command lines) comes before anything was made: the full client runs it.
			var plan lightproto.Plan
			if err != nil || typ != lightproto.FramePlan || json.Unmarshal(payload, &plan) != nil {
				return 0, true
			}
			planned = true
			p.Hello.SigProxy, p.Hello.Detach, p.Fallback = plan.SigProxy, plan.Detach, plan.Fallback
			startProxy()
			continue
		}
		if err != nil {
			if first {
				// The daemon closed without a word (it refused the caller, or it
				// does not speak the light protocol): nothing was made.
				return 0, true
			}
			fmt.Fprintf(stderr, "Error: the daemon at %s ended the stream before the container's exit: %s\n", p.Host, errText(err))
			return exitEngine, false
		}
		first = false
		switch typ {
		case lightproto.FrameStdout:
			stdout.Write(payload)
		case lightproto.FrameStderr:
			stderr.Write(payload)
		case lightproto.FrameCreated:
			var c lightproto.Created
			if json.Unmarshal(payload, &c) == nil {
				created, id = true, c.ID
				for _, w := range c.Warnings {
					fmt.Fprintf(stderr, "WARNING: %s\n", w)
				}
			}
		case lightproto.FrameReady:
			ready.Store(true)
		case lightproto.FrameExit:
			keepOpen = p.ExitAfter
			var x lightproto.Exit
			if err := json.Unmarshal(payload, &x); err != nil {
				fmt.Fprintf(stderr, "Error: bad exit message from the daemon: %v\n", err)
				return exitEngine, false
			}
			if p.Hello.Detach && x.Code == 0 && x.Error == "" {
				// run -d: the id, after the warnings (the full client's createStart).
				fmt.Fprintln(stdout, id)
				return 0, false
			}
			// As the full client's streamExit.
			code := x.Code
			if x.Error != "" {
				if code == 0 {
					code = exitEngine
				}
				fmt.Fprintf(stderr, "Error response from daemon: %s\n", oneLine(x.Error))
			}
			return code, false
		case lightproto.FrameError:
			var e lightproto.Error
			if err := json.Unmarshal(payload, &e); err != nil {
				fmt.Fprintf(stderr, "Error: bad error message from the daemon: %v\n", err)
				return exitEngine, false
			}
			kind := lightproto.KindOf(e.Kind)
			if kind == errdefs.ErrNotFound && !created && p.Fallback {
				return 0, true
			}
			printDaemonError(stderr, p.Host, kind, e.Message)
			return exitEngine, false
		}
	}
}

// printDaemonError prints an error of the daemon's Attach as the full client's apiErr and
// report do (run exits 125 for all of them).
func printDaemonError(w io.Writer, host string, kind error, msg string) {
	if msg == "" {
		msg = kind.Error()
	}
	msg = errdefs.OneLine(msg)
	switch {
	case kind == errdefs.ErrUnavailable && isConnMsg(msg):
		if strings.Contains(msg, "permission denied") {
			fmt.Fprintf(w, "Cannot connect to the isulad daemon at %s: permission denied (the socket is for root only).\n", host)
		} else {
			fmt.Fprintf(w, "Cannot connect to the isulad daemon at %s. Is the daemon running?\n", host)
		}
	case kind == errdefs.ErrCanceled:
		fmt.Fprintln(w, "Error: canceled")
	default:
		fmt.Fprintf(w, "Error response from daemon: %s\n", oneLine(msg))
	}
}

// isConnMsg is the full client's isConnErr test on an Unavailable status's message.
func isConnMsg(m string) bool {
	return strings.Contains(m, "connection error") || strings.Contains(m, "transport") ||
		strings.Contains(m, "dial unix") || strings.Contains(m, "connect:")
}

// oneLine is the full client's (internal/cli).
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func errText(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed"
	}
	return err.Error()
}

// proxySignals forwards the full client's sig-proxy signals as signal frames once ready is
// set (the container is started). A signal before that ends the front as it would without
// the proxy: the connection's end tells the daemon the client is gone, as when the proxy
// was set up only at the start. The returned func stops it.
func proxySignals(w io.Writer, ready *atomic.Bool) func() {
	return sigproxy.Start(func(sig syscall.Signal) {
		if !ready.Load() {
			sigproxy.Die(sig)
		}
		lightproto.WriteJSON(w, lightproto.FrameSignal, lightproto.Signal{Name: sigproxy.Name(sig)})
	})
}
