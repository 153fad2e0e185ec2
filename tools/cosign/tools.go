//go:build tools

// Module cosign builds the real cosign (github.com/sigstore/cosign/v2,
// the version in go.mod), the peer of gantry's signing tests, against the
// dependency versions gantry itself uses: the modules both share resolve
// to gantry's versions, so their packages, already compiled for gantry's
// tests, come out of the build cache instead of compiling twice. go.mod
// lists gantry's requirements for that reason; `go mod tidy` keeps the
// ones cosign builds with. scripts/test.sh runs:
//
//	go -C tools/cosign build -o "$(go env GOPATH)/bin/cosign" github.com/sigstore/cosign/v2/cmd/cosign
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
