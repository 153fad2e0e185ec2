#!/usr/bin/env bash
# Builds the Kubernetes test bed's binaries once per version into a cache
# outside the checkout, skipping what is already there:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   kwok                                                     (sigs.k8s.io/kwok)
#   rollouts-controller + its CRDs                           (argo-rollouts)
# etcd is Debian's etcd-server (scripts/deps.sh).
#
#   scripts/testbed/build.sh [COMPONENT...]   build what is missing (all, or
#                                             kubernetes, kwok, argo-rollouts),
#                                             print the cache dir
#
# Layout: $GANTRY_TESTBED_CACHE (default ~/.cache/gantry/testbed)/
#   kubernetes-v1.31.4/{kube-apiserver,kube-controller-manager,kube-scheduler}
#   kwok-v0.7.0/kwok
#   argo-rollouts-v1.8.5/{rollouts-controller,crds/*.yaml}
# A component directory appears only once complete (built in a temporary
# directory, then renamed), so a half build is never used. Concurrent runs
# wait on one lock per component. Builds run at nice 15: the machine is
# shared.
set -euo pipefail

kube_version=v1.31.4
kwok_version=v0.7.0
argo_version=v1.8.5

cache=${GANTRY_TESTBED_CACHE:-$HOME/.cache/gantry/testbed}
mkdir -p "$cache"

log() { printf '==> testbed: %s\n' "$*" >&2; }

# build NAME DIR FUNC: runs FUNC TMPDIR under the component's lock unless
# DIR is complete, then moves TMPDIR to DIR.
build() {
	local name=$1 dir=$2 fn=$3
	if [ -d "$dir" ]; then
		log "$name: cached ($dir)"
		return
	fi
	exec {lockfd}>"$dir.lock"
	flock "$lockfd"
	if [ -d "$dir" ]; then
		log "$name: built by another run ($dir)"
		exec {lockfd}>&-
		return
	fi
	# What a killed run left (none runs now: the lock is ours).
	rm -rf "$dir".tmp.*
	local tmp
	tmp=$(mktemp -d "$dir.tmp.XXXXXX")
	local start=$SECONDS
	log "$name: building"
	if ! "$fn" "$tmp"; then
		rm -rf "$tmp"
		exec {lockfd}>&-
		echo "testbed: building $name failed" >&2
		return 1
	fi
	mv "$tmp" "$dir"
	exec {lockfd}>&-
	log "$name: built in $((SECONDS - start)) s"
}

gobuild() { nice -n 15 go build -trimpath "$@"; }

build_kubernetes() {
	local out=$1 work rc=0
	work=$(mktemp -d)
	kubernetes_in "$out" "$work" || rc=$?
	chmod -R u+w "$work"
	rm -rf "$work"
	return "$rc"
}

kubernetes_in() {
	local out=$1 work=$2
	# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces
	# them with ./staging/...; replace lines of a dependency are ignored, so
	# this wrapper maps each to its published v0.x release.
	local minor=${kube_version#v1.}
	cat >"$work/go.mod" <<-MOD
		module gantry.local/testbed/kubernetes

		go 1.22
	MOD
	(
		cd "$work"
		GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$kube_version" >/dev/null
		local gomod
		gomod=$(go mod download -json "k8s.io/kubernetes@$kube_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
		for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod"); do
			go mod edit -replace "$m=$m@v0.$minor"
		done
		go mod edit -require "k8s.io/kubernetes@$kube_version"
		GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$kube_version" \
			"k8s.io/kubernetes/cmd/kube-controller-manager@$kube_version" \
			"k8s.io/kubernetes/cmd/kube-scheduler@$kube_version"
		local v=k8s.io/component-base/version
		local major=${kube_version#v}
		major=${major%%.*}
		local mn=${minor%%.*}
		# One command at a time, the apiserver first: the build cache
		# shares their common packages, and a progress line marks each.
		for cmd in kube-apiserver kube-scheduler kube-controller-manager; do
			gobuild -ldflags "-s -w -X $v.gitVersion=$kube_version -X $v.gitMajor=$major -X $v.gitMinor=$mn -X $v.gitTreeState=clean" \
				-o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
			log "kubernetes: $cmd built ($((SECONDS - start)) s)"
		done
	)
}

build_kwok() {
	local out=$1
	GOBIN=$out nice -n 15 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
}

build_argo() {
	local out=$1 work rc=0
	work=$(mktemp -d)
	argo_in "$out" "$work" || rc=$?
	chmod -R u+w "$work"
	rm -rf "$work"
	return "$rc"
}

argo_in() {
	local out=$1 work=$2
	# The module has replace directives (go install refuses it): build from
	# a copy of its module directory.
	local src
	src=$(go mod download -json "github.com/argoproj/argo-rollouts@$argo_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$src/." "$work/"
	chmod -R u+w "$work"
	(
		cd "$work"
		GOFLAGS=-mod=mod gobuild -ldflags "-s -w" -o "$out/rollouts-controller" ./cmd/rollouts-controller
	)
	# Only the CRDs: the folder also holds a kustomization.yaml.
	mkdir -p "$out/crds"
	cp "$work"/manifests/crds/*-crd.yaml "$out/crds/"
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kubernetes kwok argo-rollouts)
for c in "${components[@]}"; do
	case "$c" in
	kubernetes) build kubernetes "$cache/kubernetes-$kube_version" build_kubernetes ;;
	kwok) build kwok "$cache/kwok-$kwok_version" build_kwok ;;
	argo-rollouts) build argo-rollouts "$cache/argo-rollouts-$argo_version" build_argo ;;
	*)
		echo "testbed: unknown component $c (want kubernetes, kwok or argo-rollouts)" >&2
		exit 2
		;;
	esac
done
echo "$cache"
