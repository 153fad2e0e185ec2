#!/usr/bin/env bash
# Engine overhead and cached re-runs.
#
#   bench/engine.sh
#
# 1. Engine overhead per no-op step (go test -bench), with and without the
#    step cache: recording, logging, scheduling and expression environments.
# 2. A fully cached re-run of the example pipeline: the example is copied to
#    a temporary git repository, run once to fill the cache, then re-run
#    (median of 5) with nothing changed. Goal: under 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== engine overhead per no-op step"
go test -run '^$' -bench 'NoopStep' -benchtime 50x ./internal/engine/ | grep -E 'Benchmark|µs/step'

echo "== cached re-run of examples/payment-service"
go build -o "$tmp/gantry" ./cmd/gantry
cp -r examples/payment-service "$tmp/repo"
(
	cd "$tmp/repo"
	git init -q -b main
	git add -A
	git -c user.name=bench -c user.email=bench@gantry.invalid commit -q -m "feat: bench subject"
)
stages=${GANTRY_BENCH_STAGES:-}
args=(--state-dir "$tmp/state" run --dir "$tmp/repo" --progress plain)
if [ -n "$stages" ]; then
	for s in $stages; do args+=(--stage "$s"); done
fi
start=$(date +%s%N)
"$tmp/gantry" "${args[@]}" >"$tmp/first.log" 2>&1 || { tail -30 "$tmp/first.log"; echo "first run failed"; exit 1; }
first_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "first run (fills the cache): ${first_ms} ms"
times=()
for i in 1 2 3 4 5; do
	start=$(date +%s%N)
	"$tmp/gantry" "${args[@]}" >"$tmp/rerun.log" 2>&1
	times+=($(( ($(date +%s%N) - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
cached=$(grep -c '\] cached' "$tmp/rerun.log" || true)
ran=$(grep -c '\] passed' "$tmp/rerun.log" || true)
echo "cached re-run: median ${sorted[2]} ms (runs: ${times[*]} ms); steps cached: $cached, run again: $ran"
echo "ratio first/cached: $(awk "BEGIN {printf \"%.1f\", $first_ms / ${sorted[2]}}")x"
