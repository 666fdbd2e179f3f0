#!/usr/bin/env bash
# Run every benchmark and print its figures (nothing here asserts speed). Set BENCH_DATABASE_URL
# to a PostgreSQL database to run the server-side ones against PostgreSQL instead of SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
for module in bench.sse_latency bench.transfer_latency bench.phone_transfer bench.twilio_voice bench.webhook_latency bench.handover_gap bench.capacity bench.memory bench.prompt_size bench.summary_quality bench.load_calls; do
  echo "== $module"
  .venv/bin/python -m "$module"
  echo
done
