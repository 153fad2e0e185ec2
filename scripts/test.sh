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
# The Kubernetes test bed's binaries (kube-apiserver, controller-manager,
# scheduler, kwok, the Argo Rollouts controller) build once per version
# into a cache outside the checkout (scripts/testbed/build.sh, at nice 15;
# cold they are the longest part of a run), in the background while
# everything else runs; the packages that start the bed run last.
testbed_log=$(mktemp)
testbed_start=$(date +%s)
bash scripts/testbed/build.sh >"$testbed_log" 2>&1 &
testbed=$!
kube_pkgs=(./internal/kubetest/ ./internal/admissionhook/ ./internal/kube/ ./internal/kube/argo/ ./internal/steps/bluegreen/ ./deploy/)
# A failing vet ends the script; the installs and builds need not go on.
trap 'kill "$deps" "$testbed" 2>/dev/null || true; rm -f "$testbed_log"' EXIT
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
# helm, the peer of the helm-lint and helm-template tests: the helm of
# gantry's Helm SDK version, built from tools/helm the same way.
helm_version=$(go -C tools/helm list -m -f '{{.Version}}' helm.sh/helm/v3)
helm=$(go env GOPATH)/bin/helm
if [ ! -x "$helm" ] || [ "$(go version -m "$helm" | awk '$1 == "mod" {print $3}')" != "$helm_version" ]; then
	echo "==> building helm $helm_version (tools/helm)"
	go -C tools/helm build -ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version" -o "$helm" helm.sh/helm/v3/cmd/helm
fi
echo "==> gantry tests (unit, integration with real services and peer tools, e2e)"
# Every package but those of the bed, which run after it.
go test -count=1 -timeout 60m $(go list ./... | grep -vxF -f <(go list "${kube_pkgs[@]}"))
echo "==> waiting for the Kubernetes test bed's build"
if ! wait "$testbed"; then
	cat "$testbed_log" >&2
	echo "test: scripts/testbed/build.sh failed" >&2
	exit 1
fi
grep '^==> testbed' "$testbed_log" || true
echo "==> test bed built or found in $(( $(date +%s) - testbed_start )) s"
echo "==> tests on the Kubernetes test bed (one bed per package, one package at a time)"
go test -count=1 -p 1 -timeout 20m "${kube_pkgs[@]}"
echo "==> OCI distribution-spec conformance of the embedded registry"
bash scripts/conformance.sh
echo "==> race detector on the concurrent core"
go test -count=1 -race ./internal/engine/ ./internal/store/ ./internal/mask/ ./internal/load/ ./internal/serve/
