#!/usr/bin/env bash
# Runs gantry's main job: the seed pipeline on examples/payment-service,
# with embedded defaults (local services, embedded registry, local keys),
# through commit, build & test, security and deploy staging, then prints
# the staging URL.
#
#   ./scripts/example.sh [gantry run flags...]
#
# Stage 4 runs its short profile (smoke 10 s, soak 60 s) unless the flags
# say otherwise; the seed's own durations (smoke 2 min, soak 30 min) are
# the pipeline file's:
#   ./scripts/example.sh --var smoke_duration=2m --var soak_duration=30m
#
# Installs the missing prerequisites of the example first
# (scripts/deps.sh --example).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --example
. scripts/env.sh
mkdir -p bin
echo "==> building gantry"
go build -o bin/gantry ./cmd/gantry
gantry=$PWD/bin/gantry
example=examples/payment-service
. scripts/example-key.sh

# The key the security stage signs with must be the one staging's policy
# trusts: make it now (as the sign step would on first use) and put its
# public half into the local policy for this run (example-key.sh).
example_key_ensure "$gantry"
example_policy_trust_key
trap example_policy_restore EXIT

# Stage 4 deploys from the branch named by the pipeline's deploy_branch
# (main, as the seed says): a fresh clone is on main; from another branch
# or a worktree, deploy that branch's run too. A detached HEAD has no
# branch (""), and neither has the run.
branch=$(git symbolic-ref --short -q HEAD || true)

# The caller's --var flags come after the defaults: the last value of a
# name wins.
status=0
"$gantry" run --dir "$example" \
	--var smoke_duration=10s --var soak_duration=60s \
	--var deploy_branch="$branch" "$@" || status=$?

url=$("$gantry" env ls 2>/dev/null | awk '$1 == "staging" && $3 != "-" {print $2}')
if [ -n "$url" ]; then
	cat <<EOF

staging serves the payment service at $url
(for as long as gantry serve runs; try: curl $url/healthz)
  gantry env ls                 the environments and their revisions
  gantry env logs staging -f    the instances' logs
  gantry serve stop             stop staging and gantry serve
EOF
fi
exit "$status"
