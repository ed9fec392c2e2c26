#!/usr/bin/env bash
# The project's test command (`npm test`): build the wasm core and the
# bundle, type-check, run the Rust unit tests, then the vitest suite
# against the built package. Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .toolchain.env ]]; then
  # shellcheck disable=SC1091
  source .toolchain.env
fi

npm run --silent build
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p test/tsconfig.json

mkdir -p .cache
# Native unit tests of the Rust glue (storage journal, batch codec).
"${CARGO:-cargo}" test -q -p paired-mls-core

rm -f .cache/vitest.json
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.cache/vitest.json "$@" || status=$?

# One closing line, also when tests failed. Vitest also fails a run whose
# tests all passed when errors escaped them (unhandled errors): say so.
node -e '
const fs = require("fs");
if (!fs.existsSync(".cache/vitest.json")) { console.log("0 passed, 1 failed"); process.exit(0); }
const r = JSON.parse(fs.readFileSync(".cache/vitest.json", "utf8"));
const escaped = process.argv[1] !== "0" && r.numFailedTests === 0 ? "; the run failed on errors outside tests (above)" : "";
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : "") + escaped);
' "$status"
exit "$status"
