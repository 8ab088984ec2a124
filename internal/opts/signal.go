package opts

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Linux real-time signal range as seen by programs linked with glibc (32 and 33 are taken by
// the C library), the same as docker's.
const (
	SigRTMin = 34
	SigRTMax = 64
)

var signalNames = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS,
	"CHLD": syscall.SIGCHLD, "CLD": syscall.SIGCLD, "CONT": syscall.SIGCONT,
	"FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "IOT": syscall.SIGIOT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "POLL": syscall.SIGPOLL,
	"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "STKFLT": syscall.SIGSTKFLT, "STOP": syscall.SIGSTOP,
	"SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU,
	"URG": syscall.SIGURG, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
	"VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH, "XCPU": syscall.SIGXCPU,
	"XFSZ": syscall.SIGXFSZ,
}

// canonical names for SignalName (aliases CLD, IOT, POLL left out).
var signalByNum = func() map[syscall.Signal]string {
	m := map[syscall.Signal]string{}
	for n, s := range signalNames {
		if n == "CLD" || n == "IOT" || n == "POLL" {
			continue
		}
		m[s] = n
	}
	return m
}()

const signalWant = "a name such as TERM, SIGKILL or SIGRTMIN+3, or a number from 1 to 64"

// ParseSignal parses a signal: a name with or without "SIG" (case-insensitive), RTMIN,
// RTMIN+n, RTMAX, RTMAX-n (within 34..64), or a decimal number from 1 to 64. The error names
// --signal; use WithFlag for --stop-signal.
func ParseSignal(s string) (syscall.Signal, error) {
	bad := func(reason string) (syscall.Signal, error) {
		return 0, newErr("--signal", s, reason, signalWant)
	}
	if s == "" {
		return bad("empty")
	}
	if s[0] >= '0' && s[0] <= '9' {
		if !isDigits(s) || len(s) > 3 {
			return bad("")
		}
		n, _ := strconv.Atoi(s)
		if n < 1 || n > 64 {
			return bad("out of range")
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	name = strings.TrimPrefix(name, "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	if rest, ok := strings.CutPrefix(name, "RTMIN"); ok {
		return rtSignal(rest, '+', SigRTMin, bad)
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX"); ok {
		return rtSignal(rest, '-', SigRTMax, bad)
	}
	return bad("unknown signal")
}

func rtSignal(rest string, op byte, base int, bad func(string) (syscall.Signal, error)) (syscall.Signal, error) {
	if rest == "" {
		return syscall.Signal(base), nil
	}
	if rest[0] != op || !isDigits(rest[1:]) || len(rest) > 3 {
		return bad("")
	}
	n, _ := strconv.Atoi(rest[1:])
	if n > SigRTMax-SigRTMin {
		return bad("out of the real-time range")
	}
	if op == '+' {
		return syscall.Signal(base + n), nil
	}
	return syscall.Signal(base - n), nil
}

// SignalName returns the canonical name of sig: "SIGTERM", "SIGRTMIN+3", "SIGRTMAX", or the
// number for signals without a name (32, 33).
func SignalName(sig syscall.Signal) string {
	if n, ok := signalByNum[sig]; ok {
		return "SIG" + n
	}
	switch {
	case int(sig) == SigRTMax:
		return "SIGRTMAX"
	case int(sig) >= SigRTMin && int(sig) < SigRTMax:
		if sig == SigRTMin {
			return "SIGRTMIN"
		}
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-SigRTMin)
	}
	return strconv.Itoa(int(sig))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
