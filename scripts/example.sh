#!/usr/bin/env bash
# Runs gantry's main job: the seed pipeline on examples/payment-service,
# with embedded defaults (local services, embedded registry, local keys),
# through commit, build & test, security and deploy staging to the
# approval of stage 5 (promote prod), then prints the staging URL and the
# commands that approve and promote.
#
#   ./scripts/example.sh [gantry run flags...]
#   ./scripts/example.sh approve RUN    approve stage 5 of run RUN as the
#                                       on-call lead and run it (blue/green
#                                       to prod)
#
# Stages 4 and 5 run their short profile (smoke 10 s, soak 60 s, analysis
# every 3 s: 10 measurements over 30 s) unless the flags say otherwise;
# the seed's own durations (smoke 2 min, soak 30 min, analysis every 30 s)
# are the pipeline file's:
#   ./scripts/example.sh --var smoke_duration=2m --var soak_duration=30m --var analysis_interval=30s
#
# A run that reaches stage 5 waits for its approval: gantry run exits 75
# (docs/cli/run.md), which this script reports as success, printing what
# to do next.
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

# The key the security stage signs with must be the one staging's and
# prod's policy trusts: make it now (as the sign step would on first use)
# and write the state dir's copy of the local policy trusting its public
# half, which gantry reads instead of the checked-in one (example-key.sh).
example_key_ensure "$gantry"
example_policy_trust_key

# Stage 4 deploys from the branch named by the pipeline's deploy_branch
# (main, as the seed says): a fresh clone is on main; from another branch
# or a worktree, deploy that branch's run too. A detached HEAD has no
# branch (""), and neither has the run.
branch=$(git symbolic-ref --short -q HEAD || true)

# Who may approve stage 5 and promote: the on-call lead role of the
# pipeline's approval. gantry reads the repository's approvers file from
# its default branch (.gantry/approvers.yaml of the repository root); the
# example lives inside gantry's own repository, so the state dir's
# operator file names the local user instead, made once if there is none
# (docs/example.md).
example_approvers_ensure() {
	local f user
	f="$(example_state_dir)/approvers.yaml"
	[ -f "$f" ] && return
	user=$(id -un)
	mkdir -p "$(dirname "$f")"
	printf '# Made by scripts/example.sh: %s holds the on-call lead role of the example.\noncall-lead: [%s]\n' "$user" "$user" >"$f"
	echo "==> $f names $user as oncall-lead (the example's stage 5 approver)"
}

if [ "${1:-}" = approve ]; then
	run=${2:?usage: scripts/example.sh approve RUN}
	example_approvers_ensure
	# The resumed run reads the state dir's copy of the policy (written
	# above), as the run did; the checkout is untouched.
	echo "==> approving stage promote-prod of run $run; once the rollout pauses, promote it from another terminal:"
	echo "      $gantry rollout promote prod --dir $example"
	approve_status=0
	"$gantry" approve "$run" --dir "$example" --stage promote-prod || approve_status=$?
	exit "$approve_status"
fi

# The caller's --var flags come after the defaults: the last value of a
# name wins.
status=0
"$gantry" run --dir "$example" \
	--var smoke_duration=10s --var soak_duration=60s --var analysis_interval=3s \
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

# 75: the run waits for the approval of stage 5 (gantry run's documented
# "waiting" exit status): the pipeline did all it can without a person.
if [ "$status" -eq 75 ]; then
	run=$("$gantry" runs --status waiting --limit 1 2>/dev/null | awk 'NR == 2 {print $1}')
	cat <<EOF

run $run waits for the on-call lead's approval of stage 5 (promote-prod)
  $gantry show $run
        what the approver sees: the image digest, its evidence, the staging results
  ./scripts/example.sh approve $run
        approve as the on-call lead (gantry approve $run) and run stage 5: blue/green
        to prod with the chart's analysis; it pauses for manual promotion, then:
  $gantry rollout promote prod --dir $example
        promote (a second, separately audited decision); follow it with
  $gantry rollout status prod --watch
EOF
	status=0
fi
exit "$status"
