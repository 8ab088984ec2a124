// Command isula-full is the full client of the isulad container engine: every command.
// The front, cmd/isula, serves an attached run itself and execs this for the rest, with
// the same arguments (argv[0] too: help and errors still say isula).
package main

import (
	"os"
	"runtime"

	"github.com/isulad-go/isulad/internal/cli"
	"github.com/isulad-go/isulad/internal/quickexit"
)

func main() {
	// A client waits on one connection: a single P keeps idle Ps from spinning for work,
	// 2 ms of CPU in a `run --rm` (7.6 against 9.7 ms, perf stat), which 100 clients
	// started at once pay in full. GOMAXPROCS in the environment still decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	quickexit.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
