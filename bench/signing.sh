#!/usr/bin/env bash
# Signing benchmark: `gantry sign` against `cosign sign`, and `gantry
# verify` against `cosign verify`, on the same image in the same local
# registry with the same cosign key file.
#
#   bench/signing.sh [IMAGE_DIR]   (default internal/oci/testdata/hello)
#
# The image is built from IMAGE_DIR and pushed to a `gantry registry serve`
# started by the script on a free loopback port. The key pair is made by
# `cosign generate-key-pair` (COSIGN_PASSWORD set), so both tools read the
# same encrypted key file. Each run signs with a new annotation (-a
# run=N), so every run really writes a signature; gantry and cosign runs
# alternate so both see the signature attachment grow alike. cosign runs
# offline: sign --tlog-upload=false, verify --insecure-ignore-tlog.
#
# Needs: go, python3. cosign is taken from PATH or ~/go/bin, else installed
# with go install (COSIGN_VERSION). RUNS (default 10) runs each; the median
# counts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${1:-$root/internal/oci/testdata/hello}" && pwd)
RUNS=${RUNS:-10}
COSIGN_VERSION=${COSIGN_VERSION:-v2.6.5}
work=$(mktemp -d)
regpid=
cleanup() {
  if [ -n "$regpid" ]; then kill "$regpid" 2>/dev/null || true; wait "$regpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cosign=$(command -v cosign || true)
[ -z "$cosign" ] && [ -x "$HOME/go/bin/cosign" ] && cosign="$HOME/go/bin/cosign"
if [ -z "$cosign" ]; then
  GOBIN="$work/bin" go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION" >&2
  cosign="$work/bin/cosign"
fi
(cd "$root" && go build -o "$work/gantry" ./cmd/gantry)
gantry="$work/gantry"
state="$work/state"

# A registry of our own on a free port; its address is on its first line.
"$gantry" --state-dir "$state" registry serve --addr 127.0.0.1:0 >"$work/registry.log" 2>&1 &
regpid=$!
addr=
for _ in $(seq 50); do
  addr=$(sed -n 's/^registry listening on \([^ ]*\).*/\1/p' "$work/registry.log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/registry.log" >&2; echo "registry did not start" >&2; exit 1; }

image=$("$gantry" --state-dir "$state" build "$src" --platform linux/amd64 --image "$addr/bench/app:v1" --push 2>"$work/build.log" | tail -1)
case "$image" in *@sha256:*) ;; *) cat "$work/build.log" >&2; echo "build/push failed" >&2; exit 1 ;; esac

export COSIGN_PASSWORD=bench-password
export HOME="$work/home" TUF_ROOT="$work/home/tuf"
mkdir -p "$work/keys" "$HOME"
(cd "$work/keys" && "$cosign" generate-key-pair >/dev/null 2>&1)
key="$work/keys/cosign.key" pub="$work/keys/cosign.pub"
reg=(--allow-http-registry --allow-insecure-registry)

elapsed() { # command... : runs it, prints its wall time in seconds; fails when it does
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }
  t1=$(date +%s.%N)
  python3 -c "print($t1-$t0)"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

gs=() cs=() gv=() cv=()
for i in $(seq "$RUNS"); do
  gs+=("$(elapsed "$gantry" --state-dir "$state" sign "$image" --key "$key" -a "run=g$i")")
  cs+=("$(elapsed "$cosign" sign --key "$key" --tlog-upload=false -y -a "run=c$i" "${reg[@]}" "$image")")
done
# Each verifies the other's signatures too: the attachment now holds both.
"$cosign" verify --key "$pub" --insecure-ignore-tlog=true "${reg[@]}" "$image" >"$work/cosign-verify.json" 2>/dev/null
"$gantry" --state-dir "$state" verify "$image" --key "$pub" -o json >"$work/gantry-verify.json"
counts=$(python3 -c "
import json
c = json.load(open('$work/cosign-verify.json'))
g = json.load(open('$work/gantry-verify.json'))
print(len(c), len(g['signatures']))")
for _ in $(seq "$RUNS"); do
  gv+=("$(elapsed "$gantry" --state-dir "$state" verify "$image" --key "$pub")")
  cv+=("$(elapsed "$cosign" verify --key "$pub" --insecure-ignore-tlog=true "${reg[@]}" "$image")")
done

# Process start alone: both binaries print their version.
gb=() cb=()
for _ in $(seq "$RUNS"); do
  gb+=("$(elapsed "$gantry" version)")
  cb+=("$(elapsed "$cosign" version)")
done

t_gs=$(median "${gs[@]}") t_cs=$(median "${cs[@]}")
t_gb=$(median "${gb[@]}") t_cb=$(median "${cb[@]}")
t_gv=$(median "${gv[@]}") t_cv=$(median "${cv[@]}")
echo "signing $image (RUNS=$RUNS, median wall time; cosign $("$cosign" version 2>/dev/null | sed -n 's/^GitVersion: *//p'))"
echo "  signatures verified at the end by cosign / gantry: ${counts/ / \/ }"
echo "  gantry sign:    ${t_gs}s   cosign sign --tlog-upload=false:     ${t_cs}s   ratio cosign/gantry = $(ratio "$t_cs" "$t_gs")"
echo "  gantry verify:  ${t_gv}s   cosign verify --insecure-ignore-tlog: ${t_cv}s   ratio cosign/gantry = $(ratio "$t_cv" "$t_gv")"
echo "  process start (version): gantry ${t_gb}s, cosign ${t_cb}s; without it:"
echo "    sign   gantry $(python3 -c "print(f'{$t_gs-$t_gb:.3f}')")s, cosign $(python3 -c "print(f'{$t_cs-$t_cb:.3f}')")s" \
  "  verify gantry $(python3 -c "print(f'{$t_gv-$t_gb:.3f}')")s, cosign $(python3 -c "print(f'{$t_cv-$t_cb:.3f}')")s"
