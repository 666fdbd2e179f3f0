#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server for the test suite and print its URL.
# Tuned for tests only (fsync off): never point it at data you care about.
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$PGBIN" ]]; then
  echo "PostgreSQL server binaries not found (Debian package 'postgresql'); run scripts/bootstrap.sh" >&2
  exit 1
fi
DIR=${WT_PG_DIR:-/tmp/wt-test-pg}
PORT=${WT_PG_PORT:-54329}
RUN=()
if [[ $(id -u) == 0 ]]; then RUN=(runuser -u postgres --); fi

if ! "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  if [[ ! -f "$DIR/PG_VERSION" ]]; then
    mkdir -p "$DIR"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$DIR"
    "${RUN[@]}" "$PGBIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w start \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >/dev/null
fi
echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
