#!/usr/bin/env bash
# bench/webhooks.sh — webhook-to-run-started time. DELIVERIES (default
# 50) signed GitHub push deliveries are sent at once, each to its own
# branch, to the webhook receiver wired to the run queue as gantry serve
# wires it; WORKERS (default 4) workers run the queued runs (a one-step
# pipeline) as child gantry run processes of a freshly built binary.
# Reports p50/p99/max of delivery -> 202 (queued) and delivery -> run
# started (the time the child recorded for its run). For humans, not CI.
set -euo pipefail
cd "$(dirname "$0")/.."
GANTRY_BENCH=1 DELIVERIES=${DELIVERIES:-50} WORKERS=${WORKERS:-4} \
	go test -count=1 -run '^TestBenchWebhookToRunStarted$' -v ./e2e/ 2>&1 | grep -E 'concurrent|->|first run|FAIL|ok'
