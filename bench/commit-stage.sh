#!/usr/bin/env bash
# Commit stage: gantry's checks vs the real tools run one after another.
#
#   bench/commit-stage.sh [EXAMPLE_DIR]      (default examples/payment-service)
#
# Runs, in the same shell and on the same files:
#   gantry:  gantry check golangci-lint, terraform-fmt, tflint, kubeconform
#            (plain files + kustomize overlays + helm chart), helm-lint,
#            commitlint — then the same again (second, warm run);
#   tools:   golangci-lint run, terraform fmt -check -diff -recursive
#            (if terraform is installed), tflint, helm lint, helm template,
#            kustomize build | kubeconform and helm template | kubeconform
#            (schemas generated offline from the same definitions by the
#            manifests peer test; kustomize only if on PATH),
#            commitlint --from --to (npm).
# Prints each command's wall time, the totals and the ratio.
# Needs: go, git; helm (scripts/test.sh builds it from tools/helm),
# commitlint (npm i -g @commitlint/cli @commitlint/config-conventional).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
ex=${1:-$root/examples/payment-service}
ex=$(cd "$ex" && pwd)
state=${GANTRY_STATE_DIR:-$(mktemp -d)}
export GANTRY_STATE_DIR=$state
bin=$(mktemp -d)/gantry
(cd "$root" && go build -o "$bin" ./cmd/gantry) || exit 2
tools=$state/tools
gl=$tools/golangci-lint@v2.15.0/golangci-lint
tfl=$tools/tflint@v0.64.0/tflint
from=${FROM:-$(git -C "$ex" rev-list --max-parents=0 HEAD | tail -1)}

now() { date +%s.%N; }
declare -A T
run() { # name cmd...
	local name=$1; shift
	local t0; t0=$(now)
	( cd "$ex" && "$@" ) >/tmp/bench-$$-"${name//\//_}".log 2>&1
	local rc=$?
	local dt; dt=$(echo "$(now) - $t0" | bc)
	T[$name]=$dt
	printf '  %-34s %7.2fs  exit %d\n' "$name" "$dt" "$rc"
}

overlays=()
for o in "$ex"/deploy/overlays/*/; do [ -f "$o/kustomization.yaml" ] && o=${o#"$ex"/} && overlays+=("${o%/}"); done
k_args=()
for o in "${overlays[@]}"; do k_args+=(--kustomize "$o"); done
paths=()
[ -d "$ex/kubernetes" ] && paths+=(kubernetes)
chart=deploy/chart

# Install the pinned tools first (not timed) so both sides use the same binaries.
"$bin" check golangci-lint "$ex" >/dev/null 2>&1
"$bin" check tflint "$ex/deploy/terraform" >/dev/null 2>&1

gantry_side() {
	run "gantry golangci-lint$1" "$bin" check golangci-lint .
	run "gantry terraform-fmt$1" "$bin" check terraform-fmt deploy/terraform
	run "gantry tflint$1" "$bin" check tflint deploy/terraform
	run "gantry kubeconform$1" "$bin" check kubeconform "${paths[@]}" "${k_args[@]}" --helm "$chart"
	run "gantry helm-lint$1" "$bin" check helm-lint "$chart"
	run "gantry commitlint$1" "$bin" check commitlint --from "$from" --to HEAD
}

echo "gantry (first run)"
gantry_side ""
echo "gantry (second run)"
gantry_side " #2"

echo "real tools"
run "golangci-lint run" "$gl" run ./...
if command -v terraform >/dev/null; then
	run "terraform fmt" terraform fmt -check -diff -recursive deploy/terraform
fi
run "tflint" sh -c "cd deploy/terraform && '$tfl' --recursive"
if command -v helm >/dev/null; then
	run "helm lint" helm lint "$chart"
	run "helm template" helm template "$chart"
fi
if command -v kubeconform >/dev/null; then
	schemas=$state/kubeconform-schemas
	(cd "$root" && KUBECONFORM_SCHEMAS_OUT=$schemas go test -count=1 -run TestSameVerdictsAsKubeconform ./internal/manifests/ >/dev/null)
	loc="$schemas/{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json"
	run "kubeconform files" kubeconform -strict -schema-location "$loc" "${paths[@]}"
	if command -v helm >/dev/null; then
		run "helm template | kubeconform" sh -c "helm template $chart | kubeconform -strict -schema-location '$loc' -"
	fi
	if command -v kustomize >/dev/null; then
		for o in "${overlays[@]}"; do
			run "kustomize $o | kubeconform" sh -c "kustomize build $o | kubeconform -strict -schema-location '$loc' -"
		done
	fi
fi
if command -v commitlint >/dev/null; then
	run "commitlint (npm)" commitlint --from "$from" --to HEAD
fi

sum() { local s=0; for k in "${!T[@]}"; do case $k in $1) s=$(echo "$s + ${T[$k]}" | bc);; esac; done; echo "$s"; }
g1=$(sum 'gantry *[a-z]'); g2=$(sum 'gantry *#2'); r=$(sum '[!g]*')
r=$(echo "$r + ${T[golangci-lint run]}" | bc)
# golangci-lint runs the same binary on both sides; compare without it too.
g1x=$(echo "$g1 - ${T[gantry golangci-lint]}" | bc); g2x=$(echo "$g2 - ${T[gantry golangci-lint #2]}" | bc)
rx=$(echo "$r - ${T[golangci-lint run]}" | bc)
printf '\ntotal  gantry %.2fs (second run %.2fs)   real tools %.2fs   ratio tools/gantry %.2f (second run %.2f)\n' \
	"$g1" "$g2" "$r" "$(echo "$r / $g1" | bc -l)" "$(echo "$r / $g2" | bc -l)"
printf 'without golangci-lint  gantry %.2fs (second run %.2fs)   real tools %.2fs   ratio %.2f\n' \
	"$g1x" "$g2x" "$rx" "$(echo "$rx / $g1x" | bc -l)"
