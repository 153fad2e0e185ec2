#!/usr/bin/env bash
# Runs every test of gantry and of examples/payment-service.
#
#   ./scripts/test.sh
#
# Installs missing prerequisites first (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

echo "==> go vet"
go vet ./...
echo "==> gantry tests"
go test -count=1 ./...
echo "==> race detector on the concurrent core"
go test -count=1 -race ./internal/engine/ ./internal/store/ ./internal/mask/
