#!/usr/bin/env bash
# Run the product locally: database, demo agents (first run only), a LiveKit dev server (built
# once from the pinned Go module when none is found), the worker (tasks, timers, hold audio) and
# the app under gunicorn on API_PORT (default 8000). Ctrl-C or SIGTERM stops every process this
# script started, and it waits for them to exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

$BIN/flask --app app init-db
$BIN/flask --app app agents demo
mkdir -p instance

children=()
stop_all() {
  trap - INT TERM HUP EXIT
  if ((${#children[@]})); then
    echo "Stopping ${#children[@]} process(es)..."
    kill -TERM "${children[@]}" 2>/dev/null || true
    # gunicorn and the worker stop gracefully on SIGTERM; anything still there after 30 s is killed.
    for _ in $(seq 60); do
      alive=0
      for pid in "${children[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.5
    done
    kill -KILL "${children[@]}" 2>/dev/null || true
  fi
}
# Signals arrive while `wait` runs (never while a foreground child holds the shell), so a
# SIGTERM from `make` or a supervisor reaches every child, not only this shell.
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM HUP
trap stop_all EXIT

livekit_up() { (exec 3<>/dev/tcp/127.0.0.1/7880) 2>/dev/null; }

if livekit_up; then
  echo "LiveKit already answers on :7880; using it."
else
  lk_bin=$(scripts/livekit-binary.sh livekit-server || true)
  if [[ -z "$lk_bin" ]]; then
    echo "No livekit-server found: building it once from the pinned Go module (a few minutes; log: instance/livekit-build.log)."
    scripts/rig/install.sh --server-only >instance/livekit-build.log 2>&1 &
    build=$!
    started=$SECONDS
    while kill -0 "$build" 2>/dev/null; do
      printf '\r  building livekit-server... %ds ' $((SECONDS - started))
      sleep 2
    done
    echo
    if wait "$build"; then
      lk_bin=$(scripts/livekit-binary.sh livekit-server || true)
    else
      echo "Building livekit-server failed (see instance/livekit-build.log); the app runs without audio rooms."
    fi
  fi
  if [[ -n "$lk_bin" ]]; then
    echo "Starting LiveKit dev server ($lk_bin), log: instance/livekit-server.log"
    "$lk_bin" --dev --bind 127.0.0.1 >instance/livekit-server.log 2>&1 &
    children+=($!)
  fi
fi

echo "Starting the worker, log: instance/worker.log"
$BIN/flask --app app worker >instance/worker.log 2>&1 &
children+=($!)

echo "Warm Transfer on http://localhost:${API_PORT:-8000}  (health: /api/health)"
$BIN/gunicorn -c gunicorn.conf.py "app:create_app()" &
children+=($!)

# Whichever child exits first (gunicorn failing to bind, say) ends the run and stops the rest.
set +e
wait -n "${children[@]}"
status=$?
set -e
echo "A process exited (status $status); stopping the others."
exit "$status"
