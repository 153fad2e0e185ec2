//go:build tools

// Module helm builds the real helm (helm.sh/helm/v3, the version gantry's
// Helm SDK is at), the peer of the helm lint and template tests, against
// the dependency versions gantry itself uses: the packages both share
// come out of the build cache that gantry's own build filled, and the
// peer renders with the same code paths as the SDK it is compared with.
// go.mod lists gantry's requirements for that reason; `go mod tidy` keeps
// the ones helm builds with. scripts/test.sh runs:
//
//	go -C tools/helm build -o "$(go env GOPATH)/bin/helm" helm.sh/helm/v3/cmd/helm
package tools

import _ "helm.sh/helm/v3/cmd/helm"
