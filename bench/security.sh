#!/usr/bin/env bash
# Security-stage benchmark: gantry's vulnerability scan against
# `govulncheck -mode=binary -scan=module` and gantry's SBOM against `syft`,
# on the example service in the same run, with the same database.
#
#   bench/security.sh [SERVICE_DIR]   (default examples/payment-service)
#
# Needs: go; GANTRY_TEST_DATA (default /work/shared/data) holding
# go-vulndb-osv.tar.gz. govulncheck and syft are taken from PATH or
# ~/go/bin, else installed with go install (GOVULNCHECK_VERSION,
# SYFT_VERSION; SKIP_SYFT=1 skips the SBOM part). Each tool runs RUNS times (default 5); the median counts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
svc=$(cd "${1:-$root/examples/payment-service}" && pwd)
data=${GANTRY_TEST_DATA:-/work/shared/data}
RUNS=${RUNS:-5}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
SYFT_VERSION=${SYFT_VERSION:-latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tool() { # name package version
  local p; p=$(command -v "$1" || true)
  [ -z "$p" ] && [ -x "$HOME/go/bin/$1" ] && p="$HOME/go/bin/$1"
  if [ -z "$p" ]; then GOBIN="$work/bin" go install "$2@$3" >&2; p="$work/bin/$1"; fi
  echo "$p"
}
govulncheck=$(tool govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION")
syft=
if [ -z "${SKIP_SYFT:-}" ]; then syft=$(tool syft github.com/anchore/syft/cmd/syft "$SYFT_VERSION" || true); fi

(cd "$root" && go build -o "$work/gantry" ./cmd/gantry)
gantry="$work/gantry"
db="$data/go-vulndb-osv.tar.gz"
mkdir -p "$work/db" && tar -xzf "$db" -C "$work/db"
dbdir="$work/db/data/osv"

# The example image (linux/amd64) and the same binary on its own.
pkg=.
if [ -d "$svc/cmd" ] && [ "$(ls -1 "$svc/cmd" | wc -l)" = 1 ]; then pkg=./cmd/$(ls -1 "$svc/cmd"); fi
digest=$("$gantry" --state-dir "$work/state" build "$svc" --package "$pkg" --platform linux/amd64 2>"$work/build.log" | tail -1)
image="$work/state/oci/layout@$digest"
(cd "$svc" && CGO_ENABLED=0 go build -trimpath -o "$work/app" "$pkg")
# A binary with known findings (golang.org/x/text v0.3.0) for the ID comparison.
(cd "$root/internal/vuln/testdata/vulnapp" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$work/vulnapp" .)

median() { # command... : prints the median wall time in seconds
  local ts=()
  for _ in $(seq "$RUNS"); do
    local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s.%N)
    ts+=("$(python3 -c "print($t1-$t0)")")
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

# Findings: gantry (module level) vs govulncheck on the same binaries.
cat >"$work/gantry_ids.py" <<'PY'
import json, sys
r = json.load(sys.stdin)
print("\n".join(sorted({"%s %s %s" % (f["id"], f["package"], f.get("fixed", "")) for f in r["findings"]})))
PY
cat >"$work/gv_ids.py" <<'PY'
import json, sys
s, dec, i, out = sys.stdin.read(), json.JSONDecoder(), 0, set()
while i < len(s):
    while i < len(s) and s[i].isspace(): i += 1
    if i >= len(s): break
    o, i = dec.raw_decode(s, i)
    f = o.get("finding")
    if f: out.add("%s %s %s" % (f["osv"], f["trace"][0]["module"], f.get("fixed_version", "")))
print("\n".join(sorted(out)))
PY
gantry_ids() { "$gantry" scan "$1" --db "$db" -o json --unscored ignore | python3 "$work/gantry_ids.py"; }
gv_ids() { "$govulncheck" -mode=binary -scan=module -format=json -db "file://$dbdir" "$1" | python3 "$work/gv_ids.py"; }
same_findings=yes
for b in app vulnapp; do
  gantry_ids "$work/$b" >"$work/$b.gantry-ids" || true
  gv_ids "$work/$b" >"$work/$b.gv-ids" || true
  diff -q "$work/$b.gantry-ids" "$work/$b.gv-ids" >/dev/null || { same_findings=no; diff "$work/$b.gantry-ids" "$work/$b.gv-ids" || true; }
done
cp "$work/app.gantry-ids" "$work/gantry-ids"

t_gscan_img=$(median "$gantry" scan "$image" --db "$db" -o json)
t_gscan_bin=$(median "$gantry" scan "$work/app" --db "$db" -o json)
t_gscan_dir=$(median "$gantry" scan "$work/app" --db "$dbdir" -o json)
t_gv=$(median "$govulncheck" -mode=binary -scan=module -format=json -db "file://$dbdir" "$work/app")

echo "vulnerability scan (example: $(grep -c . "$work/app.gantry-ids" || true) findings, vulnapp: $(grep -c . "$work/vulnapp.gantry-ids" || true); same IDs/modules/fixed as govulncheck: $same_findings)"
echo "  gantry scan image (tar.gz db):   ${t_gscan_img}s"
echo "  gantry scan binary (tar.gz db):  ${t_gscan_bin}s"
echo "  gantry scan binary (dir db):     ${t_gscan_dir}s"
echo "  govulncheck -mode=binary (dir):  ${t_gv}s   ratio govulncheck/gantry(binary, tar.gz) = $(ratio "$t_gv" "$t_gscan_bin")"

if [ -n "$syft" ] && [ -x "$syft" ]; then
  export SYFT_CHECK_FOR_APP_UPDATE=false
  "$gantry" sbom "$work/app" -o "$work/gantry.cdx.json"
  "$syft" scan "file:$work/app" -o "cyclonedx-json=$work/syft.cdx.json" >/dev/null 2>&1
  mods() { python3 -c "
import json,sys
b=json.load(open(sys.argv[1]))
print('\n'.join(sorted({c['purl'] for c in b.get('components',[]) if c.get('purl','').startswith('pkg:golang/') and '@' in c['purl'] and 'stdlib' not in c['purl']})))" "$1"; }
  mods "$work/gantry.cdx.json" >"$work/g-mods"; mods "$work/syft.cdx.json" >"$work/s-mods"
  same_mods=yes; diff -q "$work/g-mods" "$work/s-mods" >/dev/null || same_mods=no
  "$gantry" sbom "$image" --platform linux/amd64 -o "$work/gantry-img.cdx.json"
  "$syft" scan "oci-dir:$work/state/oci/layout" -o "cyclonedx-json=$work/syft-img.cdx.json" >/dev/null 2>&1
  mods "$work/gantry-img.cdx.json" >"$work/gi-mods"; mods "$work/syft-img.cdx.json" >"$work/si-mods"
  diff -q "$work/gi-mods" "$work/si-mods" >/dev/null || { same_mods=no; diff "$work/gi-mods" "$work/si-mods" || true; }
  t_gsbom_img=$(median "$gantry" sbom "$image" -o "$work/x.json")
  t_gsbom_bin=$(median "$gantry" sbom "$work/app" -o "$work/x.json")
  t_syft_bin=$(median "$syft" scan "file:$work/app" -o cyclonedx-json)
  t_syft_img=$(median "$syft" scan "oci-dir:$work/state/oci/layout" -o cyclonedx-json)
  echo "SBOM ($(grep -c . "$work/g-mods" || true) Go modules; same module purls as syft: $same_mods)"
  echo "  gantry sbom binary: ${t_gsbom_bin}s   syft file:BIN:   ${t_syft_bin}s   ratio syft/gantry = $(ratio "$t_syft_bin" "$t_gsbom_bin")"
  echo "  gantry sbom image:  ${t_gsbom_img}s   syft oci-dir:    ${t_syft_img}s   ratio syft/gantry = $(ratio "$t_syft_img" "$t_gsbom_img")"
  [ "$same_mods" = yes ] || diff "$work/g-mods" "$work/s-mods" || true
else
  echo "SBOM: syft not available or SKIP_SYFT set; skipped"
fi
