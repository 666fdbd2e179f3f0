#!/usr/bin/env bash
# Installs what the live test rig (tests/live, pytest marker `live`) needs, idempotently:
#   1. Debian packages (only the missing ones; `apt-get update` only when something is missing);
#   2. livekit-server and livekit-sip, built from their Go modules at the tags pinned in
#      versions.env, into ${WT_RIG_CACHE:-$HOME/.cache/wt-rig}/<name>-<tag>/ (skipped when present);
#   3. with --python PY: the rig's Python packages (requirements-live.txt) into that interpreter.
# Prints the binary paths as KEY=VALUE lines on stdout (progress goes to stderr).
#
# usage: scripts/rig/install.sh [--python /path/to/python] [--print-paths] [--server-only]
#   --print-paths  only print where the binaries are (or would be); install nothing.
#   --server-only  only livekit-server (what `make run` needs): no Debian packages, no livekit-sip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${WT_RIG_CACHE:-$HOME/.cache/wt-rig}"
server_dir="$cache/livekit-server-$LIVEKIT_SERVER_VERSION"
sip_dir="$cache/livekit-sip-$LIVEKIT_SIP_VERSION"
server_bin="$server_dir/$LIVEKIT_SERVER_BIN"
sip_bin="$sip_dir/$LIVEKIT_SIP_BIN"

# redis-server: the rig's Redis. libopus-dev libopusfile-dev libsoxr-dev pkg-config: cgo
# dependencies of livekit-sip (gopkg.in/hraban/opus.v2, soxr resampler). gcc: cgo itself.
apt_packages=(redis-server libopus-dev libopusfile-dev libsoxr-dev pkg-config gcc ${WT_RIG_EXTRA_APT:-})

python=""
print_only=0
server_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python="${2:?--python needs a path}"; shift 2 ;;
    --print-paths) print_only=1; shift ;;
    --server-only) server_only=1; shift ;;
    *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { echo "[wt-rig] $*" >&2; }
die() { echo "[wt-rig] ERROR: $*" >&2; exit 1; }

print_paths() {
  echo "LIVEKIT_SERVER_BIN=$server_bin"
  echo "LIVEKIT_SIP_BIN=$sip_bin"
}

if [ "$print_only" = 1 ]; then
  print_paths
  exit 0
fi

install_apt_packages() {
  local missing=() pkg
  for pkg in "${apt_packages[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != "installed" ]; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "apt packages present: ${apt_packages[*]}"
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    die "missing Debian packages and not root: sudo apt-get install -y ${missing[*]}"
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
}

require_go() {
  command -v go >/dev/null 2>&1 || die "go not found on PATH (Go >= 1.26 is needed to build the LiveKit binaries)"
  export CGO_ENABLED=1
}

# Builds into a scratch directory next to the target and renames it into place, so an
# interrupted build never leaves a half-written binary that a later run would trust.
build_server() {
  if [ -x "$server_bin" ]; then
    log "cached: $server_bin"
    return
  fi
  require_go
  local tmp
  tmp="$(mktemp -d "$cache/.build-server.XXXXXX")"
  log "building livekit-server $LIVEKIT_SERVER_VERSION (go install $LIVEKIT_SERVER_PKG@$LIVEKIT_SERVER_VERSION)"
  if ! GOBIN="$tmp" go install "$LIVEKIT_SERVER_PKG@$LIVEKIT_SERVER_VERSION" >&2; then
    rm -rf "$tmp"
    die "go install $LIVEKIT_SERVER_PKG@$LIVEKIT_SERVER_VERSION failed"
  fi
  mkdir -p "$server_dir"
  mv -f "$tmp/$LIVEKIT_SERVER_BIN" "$server_bin"
  rm -rf "$tmp"
}

# `go install github.com/livekit/sip/cmd/livekit-sip@v1.8.0` fails on this network with:
#   go: github.com/livekit/sip/cmd/livekit-sip@v1.8.0: loading deprecation for github.com/livekit/sip:
#   module github.com/livekit/sip: reading https://proxy.golang.org/github.com/livekit/sip/@v/list:
#   403 Forbidden
# (`go install pkg@version` looks up the module's version list to check for a deprecation notice,
# and the proxy answers 403 for that list.) The same module at the same tag is built instead from
# a throw-away wrapper module: `go get module@tag` fetches the tagged version directly (no list),
# then `go build` builds its command. Same source, same go.sum checks, real binary.
build_sip() {
  if [ -x "$sip_bin" ]; then
    log "cached: $sip_bin"
    return
  fi
  require_go
  local tmp work
  tmp="$(mktemp -d "$cache/.build-sip.XXXXXX")"
  work="$tmp/wrapper"
  mkdir -p "$work"
  log "building livekit-sip $LIVEKIT_SIP_VERSION (wrapper module: go get $LIVEKIT_SIP_MODULE@$LIVEKIT_SIP_VERSION)"
  if ! (
    cd "$work"
    go mod init wtrig/sipbuild >&2
    go get "$LIVEKIT_SIP_MODULE@$LIVEKIT_SIP_VERSION" >&2
    # -ldflags as in the upstream build/sip/Dockerfile, so the binary reports its version.
    GOFLAGS=-mod=mod go build -ldflags "-X $LIVEKIT_SIP_MODULE/version.Version=${LIVEKIT_SIP_VERSION#v}" \
      -o "$tmp/$LIVEKIT_SIP_BIN" "$LIVEKIT_SIP_PKG" >&2
  ); then
    rm -rf "$tmp"
    die "building $LIVEKIT_SIP_PKG at $LIVEKIT_SIP_VERSION failed (needs libopus-dev libopusfile-dev libsoxr-dev pkg-config)"
  fi
  mkdir -p "$sip_dir"
  mv -f "$tmp/$LIVEKIT_SIP_BIN" "$sip_bin"
  rm -rf "$tmp"
}

install_python() {
  [ -n "$python" ] || return 0
  [ -x "$python" ] || die "--python $python is not an executable"
  log "installing Python packages into $python: $here/requirements-live.txt"
  "$python" -m pip install -q -r "$here/requirements-live.txt" >&2 || die "pip install -r requirements-live.txt failed"
}

mkdir -p "$cache"
if [ "$server_only" = 1 ]; then
  build_server
  "$server_bin" --version >/dev/null 2>&1 || die "$server_bin does not run"
  print_paths
  exit 0
fi
install_apt_packages
build_server
build_sip
install_python
"$server_bin" --version >/dev/null 2>&1 || die "$server_bin does not run"
[ -x "$sip_bin" ] || die "$sip_bin missing after build"
print_paths
