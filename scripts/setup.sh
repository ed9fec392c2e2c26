#!/usr/bin/env bash
# Everything a fresh machine needs before `npm run demo` / `npm test`:
# the Rust→wasm toolchain (scripts/setup-toolchain.sh) and the npm
# dependencies. Idempotent; a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-toolchain.sh
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
