// Command isula is the client of the isulad container engine.
package main

import (
	"os"

	"github.com/isulad-go/isulad/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
