// Package sigproxy is a client's --sig-proxy: the termination signals docker's clients
// forward to their container. The full client uses it; the front (cmd/isula/isula.c)
// proxies the same list and names (its `proxied`: keep the two in step).
package sigproxy

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Proxied are the signals a client forwards (docker's --sig-proxy).
var Proxied = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Start forwards the Proxied signals the process receives to send until the returned func
// is called.
func Start(send func(sig syscall.Signal)) (stop func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, Proxied...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				send(s.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// Name is the name a Proxied signal has on the wire ("SIGTERM"), as opts.SignalName gives
// it; "" for another signal.
func Name(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	}
	return ""
}

// Die ends the process by sig as if no handler had caught it: the Go runtime's own
// handling of sig (its default action) is restored and sig is raised.
func Die(sig syscall.Signal) {
	signal.Reset(sig)
	// To this thread (a signal to the process may go to another thread, after this one has
	// gone on): the runtime's handler runs here before tgkill returns, and ends the process
	// by sig.
	runtime.LockOSThread()
	syscall.Tgkill(os.Getpid(), syscall.Gettid(), sig)
	os.Exit(128 + int(sig)) // not reached unless sig is blocked on this thread
}
