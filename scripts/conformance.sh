#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite against `gantry registry
# serve` (pull, push, content discovery incl. referrers, content management).
# Usage: scripts/conformance.sh [results-dir]
# Needs: go (the suite is installed with go install from the module proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
results=${1:-$(mktemp -d)/results}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

GOBIN="$work/bin" go install "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
go build -o "$work/gantry" ./cmd/gantry

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/gantry" --state-dir "$work/state" registry serve --addr "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done

# distribution's storage hashes uploads with sha256 only: content pushed
# with sha512 digests is out of scope (OCI_DATA_SHA512=false).
status=0
OCI_REGISTRY="127.0.0.1:$port" OCI_TLS=disabled OCI_RESULTS_DIR="$results" OCI_LOG=error \
  OCI_DATA_SHA512=false "$work/bin/conformance" >"$work/out.txt" 2>&1 || status=$?
sed -n '/^OCI Conformance Result/,$p' "$work/out.txt"
pass=$(awk '/^  Pass\.+:/ {print $2}' "$work/out.txt")
fail=$(awk '/^  FAIL\.+:/ {print $2}' "$work/out.txt")
skip=$(awk '/^  Skip\.+:/ {print $2}' "$work/out.txt")
echo "conformance: ${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped (report: $results/report.html)"
exit "$status"
