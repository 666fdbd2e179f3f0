#!/usr/bin/env bash
# Run the product locally: database, demo agents (first run only), a LiveKit dev server when
# one is available, the worker (tasks, timers, hold audio) and the app under gunicorn on
# API_PORT (default 8000). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

$BIN/flask --app app init-db
$BIN/flask --app app agents demo

children=()
trap 'kill "${children[@]}" 2>/dev/null || true' EXIT
mkdir -p instance

lk_bin=$(scripts/livekit-binary.sh livekit-server || true)
if [[ -n "$lk_bin" ]] && ! (exec 3<>/dev/tcp/127.0.0.1/7880) 2>/dev/null; then
  echo "Starting LiveKit dev server ($lk_bin), log: instance/livekit-server.log"
  "$lk_bin" --dev --bind 127.0.0.1 >instance/livekit-server.log 2>&1 &
  children+=($!)
elif [[ -z "$lk_bin" ]]; then
  echo "No livekit-server binary found (run scripts/rig/install.sh, or put one on PATH)."
  echo "The app still runs; audio rooms need LiveKit at LIVEKIT_HTTP_URL (default http://localhost:7880)."
fi

echo "Starting the worker, log: instance/worker.log"
$BIN/flask --app app worker >instance/worker.log 2>&1 &
children+=($!)

echo "Warm Transfer on http://localhost:${API_PORT:-8000}  (health: /api/health)"
$BIN/gunicorn -c gunicorn.conf.py "app:create_app()"
