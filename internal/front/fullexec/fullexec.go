// Package fullexec execs the full client, isula-full, beside the front. It imports only os,
// strings and syscall (internal/front/handover runs it from an init function).
package fullexec

import (
	"os"
	"strings"
	"syscall"
)

// FullName is the full client's file name, in the front's directory.
const FullName = "isula-full"

// ExecFull replaces the process with the full client, same argv and environment; it
// returns (125, with one line on stderr) only when that cannot be done.
func Exec() int {
	exe, err := os.Executable()
	if err != nil {
		os.Stderr.WriteString("Error: cannot find the isula binary's directory to run " + FullName + ": " + err.Error() + "\n")
		return 125
	}
	full := exe[:strings.LastIndexByte(exe, '/')+1] + FullName
	err = syscall.Exec(full, os.Args, os.Environ())
	os.Stderr.WriteString("Error: cannot run the full client " + full + ": " + errText(err) + "\n")
	return 125
}

// errText is err's text; syscall.Errno's text is the libc one ("no such file or directory").
func errText(err error) string {
	if err == nil {
		return "exec returned"
	}
	return err.Error()
}
