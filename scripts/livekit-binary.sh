#!/usr/bin/env bash
# Print the path of a LiveKit binary (livekit-server | livekit-sip): PATH first, then the rig's
# cache of Go-built binaries at the pinned tags. Exit 1 if there is none.
set -euo pipefail
name=${1:?usage: livekit-binary.sh livekit-server|livekit-sip}
if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
cd "$(dirname "$0")/.."
cache=${WT_RIG_CACHE:-$HOME/.cache/wt-rig}
if [[ -f scripts/rig/versions.env ]]; then
  # shellcheck disable=SC1091
  source scripts/rig/versions.env
fi
case "$name" in
  livekit-server) candidate="$cache/livekit-server-${LIVEKIT_SERVER_TAG:-none}/server" ;;
  livekit-sip) candidate="$cache/livekit-sip-${LIVEKIT_SIP_TAG:-none}/livekit-sip" ;;
  *) echo "unknown binary $name" >&2; exit 2 ;;
esac
[[ -x "$candidate" ]] && { echo "$candidate"; exit 0; }
exit 1
