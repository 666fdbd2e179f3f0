#!/usr/bin/env bash
# The whole test suite: ruff, ESLint and node --test, then pytest: unit, contract, app (SQLite and
# PostgreSQL), adversarial, e2e under gunicorn, fault, live rig, browser.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -q`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
# Test-only JavaScript (axe-core for the accessibility checks), pinned by package-lock.json.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --ignore-scripts --no-audit --no-fund >/dev/null
fi
if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
  TEST_DATABASE_URL=$(scripts/test-postgres.sh)
  export TEST_DATABASE_URL
fi
export WT_REQUIRE_POSTGRES=1
# Linters and the browser code's own unit tests first: seconds, and a finding fails the run
# like a failing test (configuration: pyproject.toml, eslint.config.js).
.venv/bin/ruff check --quiet .
scripts/lint-js.sh
exec .venv/bin/python -m pytest "$@"
