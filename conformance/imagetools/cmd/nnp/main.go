// Command nnp prints the effective uid of its process and exits 0. It is
// /usr/local/bin/nnp of the registry.k8s.io/e2e-test-images/nonewprivs image
// that `hack/conformance images` builds, installed setuid root (mode 4755,
// owner 0:0) so that a container started as a non-root user reports
// "Effective uid: 0" when the setuid bit is honoured and its own uid when the
// process runs with no_new_privs (allowPrivilegeEscalation: false). Built
// static (CGO_ENABLED=0).
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	if err := report(os.Stdout, os.Geteuid()); err != nil {
		fmt.Fprintf(os.Stderr, "nnp: %v\n", err)
		os.Exit(1)
	}
}

// report writes the one line the conformance suite matches in the
// container's log.
func report(w io.Writer, euid int) error {
	_, err := fmt.Fprintf(w, "Effective uid: %d\n", euid)
	return err
}
