#!/usr/bin/env bash
# Runs gantry's main job: the seed pipeline on examples/payment-service,
# with embedded defaults (local services, embedded registry, local keys).
#
#   ./scripts/example.sh [gantry run flags...]
#
# Installs missing prerequisites first (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
. scripts/env.sh
mkdir -p bin
echo "==> building gantry"
go build -o bin/gantry ./cmd/gantry
exec bin/gantry run --dir examples/payment-service "$@"
