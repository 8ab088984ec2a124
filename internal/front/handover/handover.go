// Package handover execs the full client (isula-full, beside the front) for a command line
// that is not `run`, from its init function: before the front's heavier packages are
// initialised (distribution/reference and go-digest compile their regular expressions at
// init, ~0.8 ms), so that every other command pays as little as possible for the front.
//
// Only cmd/isula imports it (its init would exec any other program). It must import nothing
// but os, strings and fullexec (os, strings, syscall): Go initialises packages in
// dependency order, taking the first by import path among those ready, and with these
// imports this one is ready, and first, before go-digest and distribution/reference are
// (they need fmt and regexp). internal/front's tests check the order (GODEBUG=inittrace).
package handover

import (
	"os"
	"strings"

	"github.com/isulad-go/isulad/internal/front/fullexec"
)

func init() {
	if !mayBeRun(os.Args[1:]) {
		os.Exit(fullexec.Exec())
	}
}

// mayBeRun says whether args could be a run the front serves: -H/--host flags, then `run`.
func mayBeRun(args []string) bool {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "run":
			return true
		case (a == "-H" || a == "--host") && i+1 < len(args):
			i++
		case strings.HasPrefix(a, "-H=") || strings.HasPrefix(a, "--host="):
		default:
			return false
		}
	}
	return false
}
