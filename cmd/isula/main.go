// Command isula is the isulad container engine's client. It is a small front: an attached,
// non-interactive `isula run` it serves itself over the daemon's light protocol; every
// other command line it hands to the full client, isula-full in the same directory, by
// exec with the same arguments and environment (internal/front).
package main

import (
	"github.com/isulad-go/isulad/internal/front"
	"github.com/isulad-go/isulad/internal/quickexit"
	// Before the other packages' init: a command line that is not run is handed to
	// isula-full at once.
	_ "github.com/isulad-go/isulad/internal/front/handover"
)

func main() {
	// front.Main goes on with one P once its hello is out (a client waits on one
	// connection). At the exit, the other threads are moved to this one's CPU first: the
	// caller's wait returns once the last of them is gone (internal/quickexit).
	quickexit.Exit(front.Main())
}
