// Command nnp stands in for the program of registry.k8s.io/e2e-test-images/nonewprivs:1.3: it
// is installed setuid root and prints the effective user ID it runs with. Started by a
// non-root user, it prints "Effective uid: 0" when the setuid bit took effect and the user's
// ID when no_new_privs kept it from doing so (critest's NoNewPrivs specs).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
