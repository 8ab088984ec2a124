// Command isulad-shim supervises one container; the daemon starts it (see
// internal/shim).
package main

import (
	"os"

	"github.com/isulad-go/isulad/internal/shim"
)

func main() {
	os.Exit(shim.Main(os.Args[1:]))
}
