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
# Peers built from a module of tools/ against gantry's dependency
# versions, so that the packages go vet just compiled are reused; rebuilt
# when the binary is not of the version that module requires.
build_peer() { # name module package [go build flags...]; VERSION in the flags is the version
	local name=$1 module=$2 pkg=$3 version bin
	shift 3
	version=$(go -C "tools/$name" list -m -f '{{.Version}}' "$module")
	bin=$(go env GOPATH)/bin/$name
	if [ ! -x "$bin" ] || [ "$(go version -m "$bin" | awk '$1 == "mod" {print $3}')" != "$version" ]; then
		echo "==> building $name $version (tools/$name)"
		go -C "tools/$name" build "${@//VERSION/$version}" -o "$bin" "$pkg"
	fi
}
# cosign, the peer of the signing tests: the real cosign of tools/cosign's
# go.mod.
build_peer cosign github.com/sigstore/cosign/v2 github.com/sigstore/cosign/v2/cmd/cosign
# helm, the peer of the helm-lint and helm-template tests: the helm of
# gantry's Helm SDK version (helm version reports it).
build_peer helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm -ldflags "-X helm.sh/helm/v3/internal/version.version=VERSION"
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
