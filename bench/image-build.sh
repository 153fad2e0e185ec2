#!/usr/bin/env bash
# Image build benchmark: gantry's daemonless build against `ko build` on the
# same Go service in the same run, both pushing a linux/amd64+linux/arm64
# index to gantry's embedded registry.
#
#   bench/image-build.sh [SERVICE_DIR]   (default examples/payment-service)
#
# cold: empty Go build cache (a fresh GOCACHE) and a fresh gantry state dir;
# warm: the same command again with nothing changed.
# ko runs with KO_DEFAULTBASEIMAGE set to the image gantry pushed (nothing
# can be pulled from the internet here) and --sbom=none (gantry writes
# provenance, not an SBOM, in this step).
# Needs: go; ko is installed with go install (KO_VERSION) unless on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
svc=$(cd "${1:-$root/examples/payment-service}" && pwd)
KO_VERSION=${KO_VERSION:-v0.19.1}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

ko=$(command -v ko || true)
if [ -z "$ko" ]; then
  GOBIN="$work/bin" go install "github.com/google/ko@$KO_VERSION"
  ko="$work/bin/ko"
fi
(cd "$root" && go build -o "$work/gantry" ./cmd/gantry)
gantry="$work/gantry"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gantry" --state-dir "$work/registry-state" registry serve --addr "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
reg="127.0.0.1:$port"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }

# Work on a snapshot so that edits or commits during the run cannot change
# the inputs between the cold and the warm build.
cp -r "$svc" "$work/svc"
svc="$work/svc"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

pkg=.
if [ -d "$svc/cmd" ] && [ "$(ls -1 "$svc/cmd" | wc -l)" = 1 ]; then pkg=./cmd/$(ls -1 "$svc/cmd"); fi

# gantry cold
export GOCACHE="$work/gocache-gantry"
t0=$(now)
img=$(GANTRY_REGISTRY=$reg "$gantry" --state-dir "$work/state" build "$svc" --package "$pkg" --image "embedded/svc:bench" --push 2>"$work/gantry-cold.log")
t1=$(now); gantry_cold=$(secs "$t0" "$t1")
# gantry warm (no change)
t0=$(now)
img2=$(GANTRY_REGISTRY=$reg "$gantry" --state-dir "$work/state" build "$svc" --package "$pkg" --image "embedded/svc:bench" --push 2>"$work/gantry-warm.log")
t1=$(now); gantry_warm=$(secs "$t0" "$t1")
[ "$img" = "$img2" ] || { echo "warm build gave another image: $img vs $img2" >&2; exit 1; }

# ko cold and warm, on gantry's image as base
export GOCACHE="$work/gocache-ko"
export KO_DOCKER_REPO="$reg/ko" KO_DEFAULTBASEIMAGE="$img"
t0=$(now)
(cd "$svc" && "$ko" build --bare --insecure-registry --sbom=none --platform=linux/amd64,linux/arm64 "$pkg" >"$work/ko-cold.out" 2>"$work/ko-cold.log")
t1=$(now); ko_cold=$(secs "$t0" "$t1")
t0=$(now)
(cd "$svc" && "$ko" build --bare --insecure-registry --sbom=none --platform=linux/amd64,linux/arm64 "$pkg" >"$work/ko-warm.out" 2>"$work/ko-warm.log")
t1=$(now); ko_warm=$(secs "$t0" "$t1")

echo "service: $svc ($pkg), platforms linux/amd64,linux/arm64, push to the embedded registry"
echo "gantry image: $img"
echo "ko image:     $(cat "$work/ko-warm.out")"
printf '%-8s %10s %10s %8s\n' "" "gantry(s)" "ko(s)" "ratio"
printf '%-8s %10s %10s %8s\n' cold "$gantry_cold" "$ko_cold" "$(python3 -c "print(f'{$gantry_cold/$ko_cold:.2f}')")"
printf '%-8s %10s %10s %8s\n' warm "$gantry_warm" "$ko_warm" "$(python3 -c "print(f'{$gantry_warm/$ko_warm:.2f}')")"
echo "goal: cold ratio <= 1.00, gantry warm < 0.5 s"
