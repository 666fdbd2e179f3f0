#!/usr/bin/env bash
# Install the system packages the product and its test suite need (Debian), if any are missing.
# Idempotent and quick when everything is present. As root it installs; otherwise it prints the
# exact command to run and fails, because a missing dependency must never silently skip tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  postgresql            # the suite runs against PostgreSQL as well as SQLite
  redis-server          # live rig: livekit-server and livekit-sip share state through Redis
  haproxy               # the cluster suite: the load balancer in front of two app instances
  libopus-dev libopusfile-dev libsoxr-dev pkg-config gcc   # building livekit-sip (cgo)
  chromium chromium-driver   # browser tests (never downloaded by Playwright)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LiveKit server and SIP bridge, built from their Go modules at pinned tags and cached.
if [[ -x scripts/rig/install.sh ]]; then
  scripts/rig/install.sh >/dev/null
fi
