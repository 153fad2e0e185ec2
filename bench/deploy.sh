#!/usr/bin/env bash
# bench/deploy.sh — the example's staging deploy path, measured side by
# side in one run. For humans, not CI: takes a few minutes.
#
#   (a) "image pushed" to "new revision serving": a new digest of the
#       example image is pushed (and signed, as the staging policy wants),
#       then `gantry deploy REF --env staging` is timed until it returns
#       (it returns once the new revision serves); REPS repetitions,
#       median reported (goal: under 3 s warm);
#   (b) requests failed across switches: `gantry load` at 200 RPS against
#       the staging URL while SWITCHES deploys happen (goal: 0 failed);
#   (c) proxy overhead: bench/overhead sends GET /healthz in pairs from
#       one client, one request straight to an instance (round-robin over
#       the ready ones, as the proxy goes) and one through gantry's proxy,
#       alternating which goes first, over keep-alive connections on both
#       sides, PAIRS pairs at RATE pairs/s; p50 and p99 of each side, their
#       ratio and the p50 difference (goal: under 100 µs). When nginx is
#       installed (Debian's nginx-light), the same rounds also go through
#       nginx in front of the same instances (upstream keep-alive, one
#       worker), the peer that (c) is reported against.
#
# Needs: staging deployed by scripts/example.sh with the same
# GANTRY_STATE_DIR, and its gantry serve running; go, jq, bc.
# Env: REPS (default 7), SWITCHES (default 5), PAIRS (default 30000),
# RATE (default 500).
#
# The new digests carry the signature the staging policy checks, but not
# the signed gate verdicts of a pipeline run: the deploys here use a copy
# of staging's declaration without `require:` (the evidence rule), so its
# cost is not in (a). Staging is put back on the digest it served before.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-7}
SWITCHES=${SWITCHES:-5}
PAIRS=${PAIRS:-30000}
RATE=${RATE:-500}
for tool in go jq bc; do
	command -v "$tool" >/dev/null || {
		echo "missing $tool" >&2
		exit 2
	}
done
. scripts/env.sh
work=$(mktemp -d)
. scripts/example-key.sh
load_pid=
nginx_pid=
cleanup() {
	[ -z "$load_pid" ] || kill "$load_pid" 2>/dev/null || true
	[ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
	example_policy_restore
	rm -rf "$work"
}
trap cleanup EXIT

echo "building gantry and the digest helper..."
go build -o "$work/gantry" ./cmd/gantry
go build -o "$work/newdigest" ./bench/newdigest
go build -o "$work/overhead" ./bench/overhead
gantry=$work/gantry
example=examples/payment-service

"$gantry" env ls -o json >"$work/envs.json" || {
	echo "no gantry serve for $(example_state_dir): run scripts/example.sh first" >&2
	exit 2
}
orig=$(jq -r '.[] | select(.name == "staging") | .current.workloads[0].image // empty' "$work/envs.json")
url=$(jq -r '.[] | select(.name == "staging") | .url' "$work/envs.json")
if [ -z "$orig" ]; then
	echo "staging serves nothing: run scripts/example.sh first" >&2
	exit 2
fi
echo "staging: $url, serving $orig"

# The staging declaration of the example, without require: (see above).
cat >"$work/pipeline.yaml" <<'EOF'
name: payment-service
environments:
  staging:
    chart: deploy/chart
    values: [deploy/chart/values-local.yaml]
    services: [postgres, redis, sqs]
    policy: [kubernetes/local/kyverno-image-verification.yaml]
    prometheus: {rules: [deploy/prometheus/alerts.yaml]}
stages:
  - name: none
    steps:
      - {name: none, run: "true"}
EOF
example_policy_trust_key
export COSIGN_PASSWORD="${COSIGN_PASSWORD-}"

n=0
# push_new: pushes and signs a new digest of the original image; sets ref.
push_new() {
	n=$((n + 1))
	ref=$("$work/newdigest" "$orig" "$(date +%s)-$n")
	"$gantry" sign "$ref" >/dev/null
}
# deploy REF: deploys to staging from the bench declaration; sets secs.
deploy() {
	local t0 t1
	t0=$(date +%s.%N)
	"$gantry" deploy "$1" --env staging --file "$work/pipeline.yaml" --dir "$example" >"$work/deploy.log" 2>&1 || {
		echo "deploy $1 failed:" >&2
		tail -20 "$work/deploy.log" >&2
		exit 1
	}
	t1=$(date +%s.%N)
	secs=$(echo "$t1 - $t0" | bc -l)
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo
echo "(a) image pushed -> new revision serving, $REPS deploys (one warm-up first)"
push_new
deploy "$ref"
printf '  warm-up: %.2f s\n' "$secs"
: >"$work/a"
for i in $(seq "$REPS"); do
	push_new
	deploy "$ref"
	printf '  %d: %.2f s\n' "$i" "$secs"
	echo "$secs" >>"$work/a"
done
a_median=$(median <"$work/a")

echo
echo "(b) $SWITCHES switches under 200 RPS"
lb_secs=$((SWITCHES * 8 + 10))
"$gantry" load --quiet --url "$url/healthz" --rate 200 --duration "${lb_secs}s" \
	--summary-export "$work/b.json" >"$work/b.log" 2>&1 &
load_pid=$!
sleep 3
for i in $(seq "$SWITCHES"); do
	push_new
	deploy "$ref"
	printf '  switch %d: %.2f s\n' "$i" "$secs"
done
wait "$load_pid" || true
load_pid=
b_reqs=$(jq '.metrics.http_reqs.count' "$work/b.json")
b_failed=$(jq '(.metrics.http_req_failed.passes // 0)' "$work/b.json")
b_dropped=$(jq '(.metrics.dropped_iterations.count // 0)' "$work/b.json")

echo
echo "(c) proxy against the instances: $PAIRS pairs of requests at $RATE pairs/s"
"$gantry" env ls -o json >"$work/envs.json"
insts=$(jq -r '[.[] | select(.name == "staging") | .instances[] | select(.state == "ready") | .addr | if startswith("http") then . else "http://" + . end | . + "/healthz"] | join(",")' "$work/envs.json")
[ -n "$insts" ] || {
	echo "no ready instance of staging" >&2
	exit 1
}
peer=()
if command -v nginx >/dev/null; then
	# nginx as the peer: one worker, keep-alive to the same instances.
	nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$work/nginx/logs"
	{
		echo "daemon off; master_process off; worker_processes 1; error_log $work/nginx/logs/error.log; pid $work/nginx/nginx.pid;"
		echo "events { worker_connections 256; }"
		echo "http { access_log off; upstream be { keepalive 16;"
		for a in ${insts//,/ }; do
			a=${a#http://}
			echo "server ${a%%/*};"
		done
		echo "} server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
	} >"$work/nginx/nginx.conf"
	nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
	nginx_pid=$!
	for _ in $(seq 50); do
		curl -fsS -o /dev/null "http://127.0.0.1:$nginx_port/healthz" 2>/dev/null && break
		sleep 0.1
	done
	peer=(-peer "http://127.0.0.1:$nginx_port/healthz" -peer-name nginx)
else
	echo "nginx not installed: (c) has no peer (apt-get install nginx-light)"
fi
"$work/overhead" -direct "$insts" -proxied "$url/healthz" "${peer[@]}" -pairs "$PAIRS" -rate "$RATE" -json >"$work/c.json"
c() { jq -r ".$1" "$work/c.json"; }

echo
echo "putting staging back on $orig"
"$gantry" deploy "$orig" --dir "$example" --env staging >"$work/deploy.log" 2>&1 ||
	echo "could not redeploy $orig (see: gantry env history staging)" >&2

echo
echo "== results ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)) =="
printf '(a) push -> serving, median of %d: %.2f s (goal < 3 s)\n' "$REPS" "$a_median"
printf '(b) %d switches under 200 RPS: %s requests, %s failed, %s dropped by the generator (goal 0 failed)\n' "$SWITCHES" "$b_reqs" "$b_failed" "$b_dropped"
printf '(c) %d pairs at %d pairs/s, one client, keep-alive both sides:\n' "$(c pairs)" "$RATE"
printf '    direct  %s: p50 %.0f µs, p99 %.0f µs\n' "$insts" "$(c direct_p50_us)" "$(c direct_p99_us)"
printf '    proxied %s: p50 %.0f µs, p99 %.0f µs\n' "$url" "$(c proxied_p50_us)" "$(c proxied_p99_us)"
printf '    proxy overhead at p50: %.0f µs (median of the pairs'"'"' differences %.0f µs; goal < 100 µs); proxied/direct p50 %.2fx, p99 %.2fx\n' \
	"$(c overhead_p50_us)" "$(c pair_diff_p50_us)" "$(c ratio_p50)" "$(c ratio_p99)"
if [ "$(c peer)" != null ]; then
	printf '    nginx (peer, same rounds): p50 %.0f µs, p99 %.0f µs, overhead at p50 %.0f µs (median of the differences %.0f µs)\n' \
		"$(c peer.p50_us)" "$(c peer.p99_us)" "$(c peer.overhead_p50_us)" "$(c peer.pair_diff_p50_us)"
	printf '    gantry/nginx overhead at p50: %.2fx\n' "$(c ratio_to_peer)"
fi
