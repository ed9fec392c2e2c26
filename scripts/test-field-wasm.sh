#!/usr/bin/env bash
# The tests of the wasm SIMD field multiplication patched into
# vendor/curve25519-dalek (docs/ENGINE.md): that code exists only in wasm
# with simd128, so crates/field-wasm-test runs in Node through
# wasm-bindgen-test-runner (installed with the wasm-bindgen CLI by
# scripts/setup-toolchain.sh), built in release with the wasm build's
# settings (scripts/wasm-size-profile.toml: +simd128). npm run test:engine
# calls this; it can also run alone. Prints cargo's `test NAME ... ok`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .toolchain.env ]]; then
  # shellcheck disable=SC1091
  source .toolchain.env
fi
runner="$(dirname "${WASM_BINDGEN:-$(command -v wasm-bindgen || echo .)}")/wasm-bindgen-test-runner"
[[ -x "$runner" ]] || runner="$(command -v wasm-bindgen-test-runner || true)"
[[ -n "$runner" ]] || { echo "wasm-bindgen-test-runner not found (run scripts/setup-toolchain.sh)" >&2; exit 1; }
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$runner" "${CARGO:-cargo}" test --release \
  --config scripts/wasm-size-profile.toml --target wasm32-unknown-unknown -p field-wasm-test
# Patch D6: the constant-time inversion, as compiled, has no branch or
# address that depends on the value (LLVM can turn masks into branches).
exec node scripts/check-invert-branches.mjs
