//go:build tools

// Package sonobuoy only pins github.com/vmware-tanzu/sonobuoy (see go.mod);
// hack/conformance runs `go build github.com/vmware-tanzu/sonobuoy` here.
package sonobuoy

import _ "github.com/vmware-tanzu/sonobuoy"
