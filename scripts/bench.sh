#!/usr/bin/env bash
# Run every benchmark and print its figures (nothing here asserts speed).
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/sse_latency.py bench/transfer_latency.py; do
  echo "== $b"
  .venv/bin/python "$b"
done
