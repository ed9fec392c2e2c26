#!/usr/bin/env bash
# Build the wasm core and its JS glue into pkg/.
#
# cargo + wasm-bindgen are called directly rather than through wasm-pack:
# wasm-pack downloads prebuilt wasm-bindgen/wasm-opt binaries, which cannot
# work on machines that reach only the package registries. The toolchain
# comes from scripts/setup-toolchain.sh (which writes .toolchain.env).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -f .toolchain.env ]]; then
  # shellcheck disable=SC1091
  source .toolchain.env
fi
CARGO_BIN="${CARGO:-cargo}"
PROFILE="${PAIRED_MLS_PROFILE:-release}"
CRATE=paired_mls_core
WASM="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/${PROFILE}/${CRATE}.wasm"

# Per-crate opt-levels for size: scripts/wasm-size-profile.toml.
"$CARGO_BIN" build --config scripts/wasm-size-profile.toml --profile "$PROFILE" --target wasm32-unknown-unknown -p paired-mls-core

# Skip the glue step when the wasm did not change (keeps `npm test` quick).
stamp="pkg/.source-hash"
# The glue and the module are post-processed by the scripts below: a change to them rebuilds them too.
glue_scripts="$(cat scripts/wasm-leb.mjs scripts/short-import-names.mjs scripts/harden-glue.mjs scripts/reorder-functions.mjs scripts/check-reorder.mjs | sha256sum | cut -c1-16)"
hash="$(sha256sum "$WASM" | cut -d' ' -f1)-names${PAIRED_MLS_KEEP_NAMES:-0}-glue${glue_scripts}"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" && -f "pkg/${CRATE}_bg.wasm" ]]; then
  echo "build-wasm: pkg/ is up to date"
  exit 0
fi

mkdir -p pkg
# Function names (the "name" section) only serve stack traces and profiles,
# and the "producers" section is toolchain telemetry; neither is read at run
# time, so both are left out: the producers by wasm-bindgen, the names by
# reorder-functions.mjs below, which lays the functions out by them first.
# PAIRED_MLS_KEEP_NAMES=1 keeps them (for profiling the core).
STRIP_FLAGS=(--remove-producers-section)
REORDER_FLAGS=()
if [[ "${PAIRED_MLS_KEEP_NAMES:-0}" == "1" ]]; then STRIP_FLAGS=(); REORDER_FLAGS=(--keep-names); fi
wasm-bindgen --target web --weak-refs "${STRIP_FLAGS[@]}" --out-dir pkg --out-name "$CRATE" "$WASM"
# The imports' hashed names (`__wbg_get_7bed016f185add81`, in the wasm and
# in the glue) become `a`, `b`, ...: bench/README.md "Size round 2z".
node scripts/short-import-names.mjs "pkg/${CRATE}_bg.wasm" "pkg/${CRATE}.js"
# Array arguments are copied into wasm by a length read once, which a
# caller cannot lie about (docs/ENGINE.md G1).
node scripts/harden-glue.mjs "pkg/${CRATE}.js"
# The functions laid out by name, then each after the code most like it,
# so that gzip finds more of each in the ones before it: bench/README.md
# "Size round 3f". Drops the name section unless REORDER_FLAGS keeps it.
unordered="$(mktemp)"
trap 'rm -f "$unordered"' EXIT
cp "pkg/${CRATE}_bg.wasm" "$unordered"
node scripts/reorder-functions.mjs "pkg/${CRATE}_bg.wasm" ${REORDER_FLAGS[@]+"${REORDER_FLAGS[@]}"}
# A renumbering slip would call the wrong function yet still validate: an
# independent decoder proves the output is the input with its functions
# permuted (every body, type, export, element, global, section), ~4 s.
node scripts/check-reorder.mjs "$unordered" "pkg/${CRATE}_bg.wasm"
rm -f "$unordered"

WASM_OPT_BIN="${WASM_OPT:-$(command -v wasm-opt || true)}"
# binaryen before ~116 mishandles the reference-types table wasm-bindgen
# emits (the module then fails to instantiate), so older ones are skipped.
WASM_OPT_MIN=116
if [[ -n "$WASM_OPT_BIN" ]]; then
  opt_version="$("$WASM_OPT_BIN" --version 2>/dev/null | grep -oE '[0-9]+' | head -1 || echo 0)"
  if (( opt_version < WASM_OPT_MIN )); then
    echo "build-wasm: wasm-opt $opt_version is older than $WASM_OPT_MIN; skipping it"
    WASM_OPT_BIN=""
  fi
fi
if [[ -n "$WASM_OPT_BIN" ]]; then
  # Features rustc enables by default for wasm32 since 1.82.
  "$WASM_OPT_BIN" -O3 --enable-bulk-memory --enable-mutable-globals --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
    "pkg/${CRATE}_bg.wasm" -o "pkg/${CRATE}_bg.wasm.opt" \
    && mv "pkg/${CRATE}_bg.wasm.opt" "pkg/${CRATE}_bg.wasm" \
    || echo "build-wasm: wasm-opt failed; keeping the unoptimised module" >&2
else
  echo "build-wasm: wasm-opt not found; skipping size/speed optimisation"
fi
echo "$hash" > "$stamp"
ls -l "pkg/${CRATE}_bg.wasm"
