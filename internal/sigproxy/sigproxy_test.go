package sigproxy

import (
	"syscall"
	"testing"
	"time"
)

func TestStartForwards(t *testing.T) {
	got := make(chan syscall.Signal, 1)
	stop := Start(func(s syscall.Signal) { got <- s })
	defer stop()
	syscall.Kill(syscall.Getpid(), syscall.SIGUSR1)
	select {
	case s := <-got:
		if s != syscall.SIGUSR1 || Name(s) != "SIGUSR1" {
			t.Fatalf("forwarded %v (%q), want SIGUSR1", s, Name(s))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGUSR1 not forwarded")
	}
}

func TestNames(t *testing.T) {
	for _, s := range Proxied {
		if n := Name(s.(syscall.Signal)); len(n) < 6 || n[:3] != "SIG" {
			t.Fatalf("Name(%v) = %q", s, n)
		}
	}
	if Name(syscall.SIGKILL) != "" {
		t.Fatal("SIGKILL is not proxied")
	}
}
