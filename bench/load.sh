#!/usr/bin/env bash
# bench/load.sh — gantry load vs k6 (constant-arrival-rate) vs wrk on the same
# local server, in the same run. For humans, not CI: takes a few minutes.
#
# For each open-model generator it finds the highest arrival rate sustained
# with < 1% dropped and >= 95% of the target rate achieved, then reports CPU
# seconds and peak RSS of that run; wrk gives the closed-loop ceiling.
#
# Needs: go, wrk (apt-get install wrk), k6 (go install go.k6.io/k6@v1.4.2),
# jq, GNU time (/usr/bin/time). Env: STEP_SECONDS (default 5), RATES (list).
set -euo pipefail
cd "$(dirname "$0")/.."

STEP_SECONDS=${STEP_SECONDS:-5}
RATES=${RATES:-"250 500 1000 2000 3000 5000 7500 10000 15000 20000 30000"}
WRK_CONNS=${WRK_CONNS:-64}
work=$(mktemp -d)
trap 'kill ${server_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT

for tool in wrk k6 jq /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

echo "building gantry and the target server..."
go build -o "$work/gantry" ./cmd/gantry
mkdir -p "$work/server"
cat >"$work/server/main.go" <<'GO'
package main

import (
	"net/http"
	"os"
)

func main() {
	body := []byte(`{"status":"ok"}`)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	_ = http.ListenAndServe(os.Args[1], nil)
}
GO
(cd "$work/server" && cat > go.mod <<<'module benchserver' && go build -o "$work/target" .)
port=$((20000 + RANDOM % 20000))
"$work/target" "127.0.0.1:$port" & server_pid=$!
url="http://127.0.0.1:$port/"
for _ in $(seq 50); do curl -fs "$url" >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$work/k6.js" <<'JS'
import http from 'k6/http';
export const options = {
  discardResponseBodies: true,
  scenarios: { car: { executor: 'constant-arrival-rate', rate: Number(__ENV.RATE), timeUnit: '1s',
    duration: __ENV.DUR, preAllocatedVUs: 200, maxVUs: 2000 } },
};
export default function () { http.get(__ENV.URL); }
JS

# measure NAME CMD... — runs CMD under GNU time; sets cpu (s) and rss (MiB).
measure() {
  /usr/bin/time -f "%U %S %M" -o "$work/time" "$@" >"$work/out" 2>&1 || true
  read -r u s m <"$work/time" 2>/dev/null || { u=0; s=0; m=0; }
  cpu=$(echo "$u + $s" | bc -l); rss=$(echo "$m / 1024" | bc)
}

# ok RATE SUMMARY — true if < 1% dropped and >= 95% of RATE achieved.
ok() {
  jq -e --argjson r "$1" '
    (.metrics.http_reqs.count) as $n | (.metrics.dropped_iterations.count // 0) as $d |
    ($d / ($n + $d + 0.0001) < 0.01) and (.metrics.http_reqs.rate >= 0.95 * $r)' "$2" >/dev/null
}

declare -A best_rate best_cpu best_rss
run_open() { # NAME
  local name=$1 rate
  best_rate[$name]=0; best_cpu[$name]=-; best_rss[$name]=-
  for rate in $RATES; do
    rm -f "$work/s.json"
    if [ "$name" = gantry ]; then
      measure "$work/gantry" load --quiet --url "$url" --rate "$rate" --duration "${STEP_SECONDS}s" --summary-export "$work/s.json"
    else
      measure env K6_NO_USAGE_REPORT=true k6 run --quiet --summary-export "$work/s.json" \
        -e RATE="$rate" -e DUR="${STEP_SECONDS}s" -e URL="$url" "$work/k6.js"
    fi
    if [ ! -s "$work/s.json" ]; then echo "  $name @ $rate/s: no summary"; tail -3 "$work/out"; break; fi
    local got dropped
    got=$(jq '.metrics.http_reqs.rate' "$work/s.json"); dropped=$(jq '.metrics.dropped_iterations.count // 0' "$work/s.json")
    printf "  %-6s target %6s/s: achieved %8.0f/s, dropped %6s, cpu %6.2fs, peak rss %4s MiB\n" "$name" "$rate" "$got" "$dropped" "$cpu" "$rss"
    if ok "$rate" "$work/s.json"; then
      best_rate[$name]=$rate; best_cpu[$name]=$cpu; best_rss[$name]=$rss
    else
      break
    fi
  done
}

echo "target: $url (Go net/http), ${STEP_SECONDS}s per step, $(nproc) cores"
echo "gantry load (open model, constant arrival rate):"
run_open gantry
echo "k6 $(k6 version 2>/dev/null | head -1 | awk '{print $2}') (constant-arrival-rate):"
run_open k6
echo "wrk (closed loop, 2 threads, $WRK_CONNS connections, ${STEP_SECONDS}s):"
measure wrk -t2 -c"$WRK_CONNS" -d"${STEP_SECONDS}s" "$url"
wrk_rps=$(awk '/Requests\/sec/ {print $2}' "$work/out")
printf "  wrk: %8.0f req/s, cpu %6.2fs, peak rss %4s MiB\n" "$wrk_rps" "$cpu" "$rss"
wrk_cpu=$cpu; wrk_rss=$rss
echo "gantry load closed model (--vus $WRK_CONNS, ${STEP_SECONDS}s):"
measure "$work/gantry" load --quiet --url "$url" --vus "$WRK_CONNS" --duration "${STEP_SECONDS}s" --summary-export "$work/s.json"
g_closed=$(jq '.metrics.http_reqs.rate' "$work/s.json")
printf "  gantry: %8.0f req/s, cpu %6.2fs, peak rss %4s MiB\n" "$g_closed" "$cpu" "$rss"

echo
echo "== results =="
printf "%-28s %10s %8s %9s\n" "generator" "rate/s" "cpu s" "rss MiB"
printf "%-28s %10s %8s %9s\n" "gantry open (<1% dropped)" "${best_rate[gantry]}" "${best_cpu[gantry]}" "${best_rss[gantry]}"
printf "%-28s %10s %8s %9s\n" "k6 CAR (<1% dropped)" "${best_rate[k6]}" "${best_cpu[k6]}" "${best_rss[k6]}"
printf "%-28s %10.0f %8s %9s\n" "wrk closed" "$wrk_rps" "$wrk_cpu" "$wrk_rss"
printf "%-28s %10.0f\n" "gantry closed (--vus)" "$g_closed"
if [ "${best_rate[k6]}" != 0 ]; then
  echo "gantry/k6 sustained rate: $(echo "scale=2; ${best_rate[gantry]} / ${best_rate[k6]}" | bc)x (goal >= 3x)"
  [ "${best_rss[k6]}" != - ] && echo "gantry/k6 peak memory:    $(echo "scale=2; ${best_rss[gantry]} / ${best_rss[k6]}" | bc)x (goal < 1x)"
fi
echo "gantry open/wrk throughput:   $(echo "scale=2; ${best_rate[gantry]} / $wrk_rps" | bc)x (goal >= 0.5x)"
echo "gantry closed/wrk throughput: $(echo "scale=2; $g_closed / $wrk_rps" | bc)x"
echo "(the highest rate tried is the ceiling of RATES; raise RATES if a generator passed them all)"
