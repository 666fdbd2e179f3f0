#!/usr/bin/env bash
# The browser code's checks: ESLint over static/js and tests/js (eslint.config.js), then the
# console's unit tests with Node's own runner. Exits non-zero on any finding or failure.
# Needs `npm ci` first (ESLint is pinned in package.json / package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

npx --no-install eslint --max-warnings 0
node --test tests/js/
