#!/usr/bin/env bash
# bench/api.sh — the server's REST API and web UI, against a real
# `gantry serve --listen` (auth middleware, API token, SQLite store of a
# state dir seeded with 200 runs, the last with a 1,000-line step log):
#
#   (a) API latency p50/p99 at CLIENTS (default 50) concurrent clients
#       over keep-alive connections, DURATION (default 20 s) per endpoint
#       after a 2 s warm-up: the run list (first page of 50), a run, the
#       first page of the run's whole 1,000-line log (500 lines), one page
#       of 500 lines of its step log. Measured by bench/apiclient (Go) and, side by side on
#       the same server, by k6 (CLIENTS virtual users, constant, same
#       duration) when it is installed.
#   (b) webhook -> run started at 50 concurrent signed deliveries
#       (bench/webhooks.sh) unless NO_WEBHOOKS=1.
#   (c) the UI's first load: bytes (as served, and gzip -9) of what the
#       login page and the run list load.
#
# For humans, not CI: takes about 5 minutes. Needs: go; k6 (go install
# go.k6.io/k6@v1.4.2) for the side-by-side figures.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-50}
DURATION=${DURATION:-20}
PORT=${PORT:-18437}
work=$(mktemp -d)
trap 'kill ${server_pid:-} 2>/dev/null || true; wait ${server_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT

echo "building gantry and the client..."
go build -o "$work/gantry" ./cmd/gantry
go build -o "$work/apiclient" ./bench/apiclient
state="$work/state"
mkdir -m 700 "$state"
run=$("$work/apiclient" seed -state "$state" -runs 200 -lines 1000)
echo "correct horse battery staple bench" | "$work/gantry" --state-dir "$state" user add bench --role viewer >/dev/null
token=$("$work/gantry" --state-dir "$state" token create --user bench 2>/dev/null)
"$work/gantry" --state-dir "$state" serve --listen "127.0.0.1:$PORT" >"$work/serve.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
  curl -fsS -o /dev/null "$base/login" 2>/dev/null && break
  sleep 0.1
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

k6=$(command -v k6 || true)
[ -z "$k6" ] && [ -x "$HOME/go/bin/k6" ] && k6=$HOME/go/bin/k6
cat >"$work/get.js" <<'JS'
import http from "k6/http";
export const options = { discardResponseBodies: true };
const params = { headers: { Authorization: "Bearer " + __ENV.TOKEN } };
export default function () { http.get(__ENV.URL, params); }
export function handleSummary(data) {
  const d = data.metrics.http_req_duration.values, n = data.metrics.http_reqs.values;
  const failed = data.metrics.http_req_failed.values.rate;
  return { stdout: `k6: ${n.count} requests (${n.rate.toFixed(0)}/s, ${(failed * 100).toFixed(2)}% failed): p50 ${d.med.toFixed(2)} ms, p99 ${d["p(99)"].toFixed(2)} ms, max ${d.max.toFixed(2)} ms\n` };
}
JS

for target in "run list|/api/v1/runs" "a run|/api/v1/runs/$run" \
  "whole run log, first page (500 of 1,000 lines)|/api/v1/runs/$run/logs" \
  "step log page (500 lines)|/api/v1/runs/$run/logs?stage=build&step=unit"; do
  name=${target%%|*}
  path=${target#*|}
  echo "== $name: GET $path"
  echo -n "apiclient: "
  "$work/apiclient" latency -url "$base$path" -token "$token" -clients "$CLIENTS" -duration "${DURATION}s"
  if [ -n "$k6" ]; then
    URL="$base$path" TOKEN="$token" "$k6" run --quiet --no-usage-report --vus "$CLIENTS" \
      --duration "$((DURATION + 2))s" --summary-trend-stats "med,p(99),max" "$work/get.js" 2>/dev/null
  else
    echo "k6: not installed"
  fi
done

echo "== UI first load"
"$work/apiclient" uisize -url "$base" -token "$token"

kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=

if [ "${NO_WEBHOOKS:-}" != 1 ]; then
  echo "== webhook -> run started"
  bench/webhooks.sh
fi
