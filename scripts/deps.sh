#!/usr/bin/env bash
# Installs what gantry's tests and the example pipeline need on a Debian
# machine: server packages for integration services and analysis tests, and
# pinned Go tools. Idempotent: what is already there is skipped. Run as root
# (or with sudo) on a fresh machine.
set -euo pipefail

log() { printf '==> %s\n' "$*"; }

apt_packages=(git ca-certificates tzdata postgresql redis-server prometheus)
missing=()
for p in "${apt_packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]} (run this script as root)" >&2
		exit 1
	fi
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The packages start system-wide daemons; tests start their own.
	for svc in postgresql redis-server prometheus; do
		service "$svc" stop >/dev/null 2>&1 || true
	done
fi
log "system packages ready"
