#!/usr/bin/env bash
# Runs the seed's Build & Test stage with `gantry run` on a snapshot of
# examples/payment-service: race unit tests, integration tests with
# postgres/redis/sqs services, merged coverage gate, image build, push to the
# embedded registry. Prints the image reference recorded by the push step.
# Needs what the services need (docs/cli/test.md) and go.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/gantry" ./cmd/gantry)
cp -r "$root/examples/payment-service" "$work/repo"
mkdir -p "$work/repo/.gantry"
cat >"$work/repo/.gantry/pipeline.yaml" <<'YAML'
name: payment-service
registry: embedded
stages:
  - name: build-test
    steps:
      - {name: unit, uses: go-test, with: {race: true}}
      - name: integration
        uses: go-test
        needs: [unit]
        with: {tags: [integration], merge: [unit]}
        services: [postgres, redis, sqs]
      - {name: image, uses: image-build, needs: [unit, integration]}
      - {name: push, uses: image-push, needs: [image], with: {tags: ["${git.sha}"]}}
    gate: steps.integration.outputs.coverage >= 80
YAML
cd "$work/repo"
git init -q && git add -A && git -c user.email=e2e@gantry -c user.name=e2e commit -qm "feat: payment service"
"$work/gantry" --state-dir "$work/state" run --progress plain | tee "$work/run.log"
grep -o 'build-test/push\] passed[^:]*: .*' "$work/run.log"
