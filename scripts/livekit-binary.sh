#!/usr/bin/env bash
# Print the path of a LiveKit binary (livekit-server | livekit-sip): PATH first, then the live
# rig's cache of Go-built binaries at the pinned tags (scripts/rig/install.sh). Exit 1 if none.
set -euo pipefail
name=${1:?usage: livekit-binary.sh livekit-server|livekit-sip}
if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
cd "$(dirname "$0")/.."
case "$name" in
  livekit-server) key=LIVEKIT_SERVER_BIN ;;
  livekit-sip) key=LIVEKIT_SIP_BIN ;;
  *) echo "unknown binary $name" >&2; exit 2 ;;
esac
candidate=$(scripts/rig/install.sh --print-paths | sed -n "s/^$key=//p")
[[ -x "$candidate" ]] && { echo "$candidate"; exit 0; }
exit 1
