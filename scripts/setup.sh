#!/usr/bin/env bash
# Everything a fresh machine needs before `npm run demo` / `npm test`:
# the Rust→wasm toolchain (scripts/setup-toolchain.sh), PostgreSQL for the
# DS tests (scripts/setup-services.sh) and the npm dependencies (which
# build better-sqlite3 from source against the local Node headers). Idempotent; a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-toolchain.sh </dev/null
bash scripts/setup-services.sh </dev/null

if [[ -d node_modules && node_modules/.package-lock.json -nt package-lock.json ]]; then
  exit 0
fi
# `npm ci` refuses a lockfile that lacks other platforms' optional packages
# (rollup's native builds). The registry these machines reach does not
# list them all, so npm cannot write them into the lockfile; fall back to
# `npm install`, which resolves the same pinned versions for this platform.
if ! npm ci --no-audit --no-fund </dev/null; then
  echo "setup: npm ci refused the lockfile; installing with npm install" >&2
  npm install --no-audit --no-fund </dev/null
fi
