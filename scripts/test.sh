#!/usr/bin/env bash
# Runs every test of gantry. The example service's own unit (-race) and
# integration tests run inside e2e/TestExamplePipeline, through gantry's
# go-test steps with real PostgreSQL, Redis and SQS services.
#
#   ./scripts/test.sh
#
# Installs missing prerequisites first (scripts/deps.sh); go vet, which
# needs none of them, runs while they build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh &
deps=$!
# A failing vet ends the script; the installs need not go on.
trap 'kill "$deps" 2>/dev/null || true' EXIT
echo "==> go vet (while the prerequisites install)"
go vet ./...
wait "$deps"
. scripts/env.sh
# cosign, the peer of the signing tests: the real cosign of tools/cosign's
# go.mod, built against gantry's dependency versions so that the packages
# go vet just compiled are reused.
cosign_version=$(go -C tools/cosign list -m -f '{{.Version}}' github.com/sigstore/cosign/v2)
cosign=$(go env GOPATH)/bin/cosign
if [ ! -x "$cosign" ] || [ "$(go version -m "$cosign" | awk '$1 == "mod" {print $3}')" != "$cosign_version" ]; then
	echo "==> building cosign $cosign_version (tools/cosign)"
	go -C tools/cosign build -o "$cosign" github.com/sigstore/cosign/v2/cmd/cosign
fi
echo "==> gantry tests (unit, integration with real services and peer tools, e2e)"
go test -count=1 -timeout 30m ./...
echo "==> OCI distribution-spec conformance of the embedded registry"
bash scripts/conformance.sh
echo "==> race detector on the concurrent core"
go test -count=1 -race ./internal/engine/ ./internal/store/ ./internal/mask/ ./internal/load/ ./internal/serve/
