#!/usr/bin/env bash
# Make the Rust -> wasm32 build possible on a machine that has never seen the
# project, then write .toolchain.env (git-ignored) for the build scripts to
# `source`. Idempotent: a second run takes seconds (results are cached under
# $PAIRED_MLS_CACHE_DIR, default ~/.cache/paired-mls, keyed on `rustc -vV`).
#
#   1. Rust with the wasm32-unknown-unknown standard library:
#      - rustup route: `rustup target add wasm32-unknown-unknown`;
#      - Debian route (no rustup, or rustup fails): Debian's rustc-web,
#        cargo-web, rust-web-src and lld, plus std for wasm32 built once with
#        -Zbuild-std from the sources rust-web-src ships and installed into
#        Debian rustc's sysroot. Debian's cargo/rustc must then be the ones
#        used, which .toolchain.env arranges.
#      Either way a tiny std-using cdylib is compiled for wasm32 to prove it.
#   2. The wasm-bindgen CLI at exactly the version of the wasm-bindgen crate
#      in Cargo.lock.
#   3. Debian's binaryen: wasm-opt (optional for the build) and wasm-dis
#      (scripts/check-invert-branches.mjs, run by npm run test:engine).
#   4. Node >= 20 and npm.
#
# PAIRED_MLS_TOOLCHAIN=auto (default) | rustup | debian  forces a route.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=wasm32-unknown-unknown
MODE="${PAIRED_MLS_TOOLCHAIN:-auto}"
CACHE="${PAIRED_MLS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/paired-mls}"
ENV_FILE="$ROOT/.toolchain.env"
RUSTUP_TIMEOUT="${PAIRED_MLS_RUSTUP_TIMEOUT:-300}"
# Bump when the sysroot recipe below changes, to force a rebuild.
SYSROOT_RECIPE=2
export DEBIAN_FRONTEND=noninteractive

START=$SECONDS
log() { printf '[setup-toolchain] %s\n' "$*"; }
warn() { printf '[setup-toolchain] warning: %s\n' "$*" >&2; }
die() { printf '[setup-toolchain] error: %s\n' "$*" >&2; exit 1; }

case "$MODE" in auto | rustup | debian) ;; *) die "PAIRED_MLS_TOOLCHAIN must be auto, rustup or debian (got '$MODE')" ;; esac

mkdir -p "$CACHE"
# One setup at a time per cache (a developer's shell and a CI run may overlap).
exec 9>"$CACHE/.lock"
flock 9

hash_of() { sha256sum | cut -c1-16; }

# A throwaway cdylib crate (its own workspace) in DIR named NAME; the
# caller writes src/lib.rs.
scratch_cdylib() {
  mkdir -p "$1/src"
  printf '%s\n' '[package]' "name = \"$2\"" 'version = "0.0.0"' 'edition = "2021"' \
    'publish = false' '[lib]' 'crate-type = ["cdylib"]' '[workspace]' >"$1/Cargo.toml"
}

# ---------------------------------------------------------------- apt helpers
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1; fi
}
APT_UPDATED=0
apt_update_once() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    as_root apt-get update -qq </dev/null >/dev/null || { warn "apt-get update failed"; return 1; }
    APT_UPDATED=1
  fi
}
pkg_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; }
pkg_available() {
  local cand
  cand="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  [[ -n "$cand" && "$cand" != "(none)" ]]
}
# apt_install PKG... : install the ones missing; fails if one is not in apt.
apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  apt_update_once || return 1
  for p in "${missing[@]}"; do
    pkg_available "$p" || { warn "Debian package '$p' is not available from apt"; return 1; }
  done
  log "apt-get install ${missing[*]}"
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

# ------------------------------------------------------------ rust helpers
msrv() {
  # Highest rust-version declared by the workspace's own manifests (if any).
  local v
  v="$(cat "$ROOT"/Cargo.toml "$ROOT"/crates/*/Cargo.toml 2>/dev/null |
    sed -nE 's/^[[:space:]]*rust-version[[:space:]]*=[[:space:]]*"([0-9.]+)".*/\1/p' | sort -V | tail -1)"
  echo "${v:-0}"
}
rustc_release() { "$1" -vV | sed -n 's/^release: //p'; }
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" == "$2" ]]; }

# verify_wasm RUSTC CARGO : compile a std-using cdylib for wasm32 (cached).
verify_wasm() {
  local rustc="$1" cargo="$2" libdir key stamp tmp
  libdir="$("$rustc" --print target-libdir --target "$TARGET" 2>/dev/null || true)"
  key="$({ echo "$rustc"; "$rustc" -vV; ls "$libdir" 2>/dev/null; } | hash_of)"
  stamp="$CACHE/verified-$key"
  if [[ -f "$stamp" ]]; then log "wasm32 build verified before ($($rustc -V))"; return 0; fi
  log "verifying a wasm32 build with $rustc ($($rustc -V))"
  tmp="$(mktemp -d)"
  scratch_cdylib "$tmp" wasm-probe
  cat >"$tmp/src/lib.rs" <<'EOF'
use std::collections::HashMap;
#[no_mangle]
pub extern "C" fn probe(n: u32) -> u32 {
    let mut m: HashMap<u32, String> = HashMap::new();
    m.insert(n, format!("{n:08}"));
    m.values().map(|s| s.len() as u32).sum()
}
EOF
  if (cd "$tmp" && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET \
    RUSTC="$rustc" CARGO_TARGET_DIR="$tmp/target" \
    "$cargo" build --quiet --offline --release --target "$TARGET") >"$tmp/log" 2>&1 &&
    [[ -f "$tmp/target/$TARGET/release/wasm_probe.wasm" ]]; then
    rm -rf "$tmp"
    touch "$stamp"
    log "wasm32 build works"
    return 0
  fi
  warn "wasm32 test build failed with $rustc:"
  tail -20 "$tmp/log" >&2 || true
  rm -rf "$tmp"
  return 1
}

# --------------------------------------------------------------- rustup route
RUST_BIN_DIR="" CARGO_BIN="" RUSTC_BIN="" RUSTDOC_BIN="" ROUTE=""

try_rustup() {
  local rustup bindir
  rustup="$(command -v rustup 2>/dev/null || true)"
  [[ -z "$rustup" && -x "${CARGO_HOME:-$HOME/.cargo}/bin/rustup" ]] && rustup="${CARGO_HOME:-$HOME/.cargo}/bin/rustup"
  [[ -n "$rustup" ]] || { log "rustup not found"; return 1; }
  bindir="$(dirname "$rustup")"
  [[ -x "$bindir/cargo" && -x "$bindir/rustc" ]] || { warn "rustup has no cargo/rustc proxies in $bindir"; return 1; }
  # Run in the repo root so a rust-toolchain file there is honoured.
  if ! (cd "$ROOT" && "$rustup" target list --installed 2>/dev/null | grep -qx "$TARGET"); then
    log "rustup target add $TARGET (timeout ${RUSTUP_TIMEOUT}s)"
    if ! (cd "$ROOT" && timeout "$RUSTUP_TIMEOUT" "$rustup" target add "$TARGET" </dev/null); then
      warn "rustup target add $TARGET failed"
      return 1
    fi
  fi
  local need have
  need="$(msrv)"
  have="$(cd "$ROOT" && rustc_release "$bindir/rustc")"
  if ! version_ge "$have" "$need"; then
    warn "rustup's rustc $have is older than the workspace's rust-version $need"
    return 1
  fi
  # Pin the toolchain active in the repo root for the probe build in /tmp.
  local toolchain
  toolchain="$(cd "$ROOT" && "$rustup" show active-toolchain 2>/dev/null | awk 'NR==1 {print $1}')"
  (cd "$ROOT" && RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-$toolchain}" verify_wasm "$bindir/rustc" "$bindir/cargo") || return 1
  RUST_BIN_DIR="$bindir" CARGO_BIN="$bindir/cargo" RUSTC_BIN="$bindir/rustc" RUSTDOC_BIN="$bindir/rustdoc"
  ROUTE=rustup
}

# --------------------------------------------------------------- Debian route
pkg_file() { # pkg_file PKG REGEX : first file of an installed package matching REGEX, /usr/bin preferred
  local files
  files="$(dpkg -L "$1" 2>/dev/null | grep -E "$2" || true)"
  { grep '^/usr/bin/' <<<"$files" || true; echo "$files"; } | sed '/^$/d' | head -1
}

build_debian_sysroot() {
  local rustc="$1" cargo="$2" sysroot libdir src vendor key stampf tmp crates
  sysroot="$("$rustc" --print sysroot)"
  libdir="$sysroot/lib/rustlib/$TARGET/lib"
  src="$sysroot/lib/rustlib/src/rust/library"
  vendor="$src/vendor"
  if [[ ! -d "$vendor" ]]; then
    vendor="$(dpkg -L rust-web-src 2>/dev/null | grep -E '/library/vendor$' | head -1 || true)"
  fi
  [[ -d "$src/std" && -d "$vendor" ]] || { warn "std sources/vendor dir not found (looked in $src)"; return 1; }
  key="$({ echo "recipe $SYSROOT_RECIPE"; "$rustc" -vV; dpkg-query -W -f='${Version}\n' rust-web-src 2>/dev/null || true; } | hash_of)"
  stampf="$sysroot/lib/rustlib/$TARGET/.paired-mls-sysroot"
  if [[ -f "$stampf" && "$(cat "$stampf")" == "$key" ]] && ls "$libdir"/libstd-*.rlib >/dev/null 2>&1; then
    log "wasm32 std for Debian rustc already built ($libdir)"
    return 0
  fi
  log "building std for $TARGET with Debian rustc (once; about a minute or more)"
  tmp="$(mktemp -d)"
  scratch_cdylib "$tmp" sysroot-builder
  mkdir -p "$tmp/.cargo"
  echo 'pub fn f() -> usize { std::vec![1u8].len() }' >"$tmp/src/lib.rs"
  # std's own dependencies come from the vendor dir rust-web-src ships; this
  # source replacement applies to this throwaway build only.
  cat >"$tmp/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "rust-std-vendor"
[source.rust-std-vendor]
directory = "$vendor"
EOF
  # embed-bitcode=yes keeps the rlibs usable by `lto = true` builds.
  local ok=0
  for crates in std,panic_abort,test std,panic_abort; do
    if (cd "$tmp" && env -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_BUILD_TARGET \
      RUSTC="$rustc" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$tmp/target" RUSTFLAGS="-C embed-bitcode=yes" \
      nice -n 19 "$cargo" build --release -Zbuild-std="$crates" --target "$TARGET") >"$tmp/log" 2>&1; then
      ok=1
      break
    fi
    warn "-Zbuild-std=$crates failed:"
    tail -15 "$tmp/log" >&2 || true
  done
  if [[ $ok -ne 1 ]]; then rm -rf "$tmp"; return 1; fi
  local built="$tmp/target/$TARGET/release/deps"
  ls "$built"/libstd-*.rlib >/dev/null 2>&1 || { warn "no libstd rlib was produced"; rm -rf "$tmp"; return 1; }
  as_root mkdir -p "$libdir.new"
  as_root cp "$built"/*.rlib "$libdir.new/"
  as_root rm -rf "$libdir"
  as_root mv "$libdir.new" "$libdir"
  echo "$key" | as_root tee "$stampf" >/dev/null
  rm -rf "$tmp"
  log "installed $(ls "$libdir" | wc -l) rlibs into $libdir"
}

try_debian() {
  command -v dpkg >/dev/null 2>&1 || { warn "not a Debian system"; return 1; }
  local pkgs=(rustc-web cargo-web rust-web-src)
  apt_install "${pkgs[@]}" || return 1
  local rustc cargo rustdoc llvm lld
  rustc="$(pkg_file rustc-web '/bin/rustc$')"
  rustdoc="$(pkg_file rustc-web '/bin/rustdoc$')"
  cargo="$(pkg_file cargo-web '/bin/cargo$')"
  [[ -x "$rustc" && -x "$cargo" ]] || { warn "rustc-web/cargo-web binaries not found"; return 1; }
  # The linker for wasm32 is rust-lld: Debian's rust-web-llvm links it to the
  # lld of the LLVM rustc-web was built with (lld-NN).
  llvm="$("$rustc" -vV | sed -nE 's/^LLVM version: ([0-9]+).*/\1/p')"
  lld="lld-$llvm"
  apt_install "$lld" || { warn "falling back to Debian's plain 'lld'"; lld=lld; apt_install lld || return 1; }
  if ! pkg_installed rust-web-llvm && pkg_available rust-web-llvm; then apt_install rust-web-llvm || true; fi
  RUST_BIN_DIR="$CACHE/debian-bin"
  mkdir -p "$RUST_BIN_DIR"
  ln -sfn "$rustc" "$RUST_BIN_DIR/rustc"
  ln -sfn "$cargo" "$RUST_BIN_DIR/cargo"
  [[ -x "$rustdoc" ]] && ln -sfn "$rustdoc" "$RUST_BIN_DIR/rustdoc"
  if ! PATH="$RUST_BIN_DIR:$PATH" command -v rust-lld >/dev/null 2>&1; then
    local ld
    ld="$(command -v "lld-$llvm" || command -v lld || true)"
    [[ -n "$ld" ]] || { warn "no lld binary found for rust-lld"; return 1; }
    ln -sfn "$ld" "$RUST_BIN_DIR/rust-lld"
  fi
  log "Debian toolchain: $("$rustc" -V), $("$cargo" -V), linker from $lld"
  build_debian_sysroot "$rustc" "$cargo" || return 1
  (cd "$ROOT" && PATH="$RUST_BIN_DIR:$PATH" verify_wasm "$rustc" "$cargo") || return 1
  CARGO_BIN="$cargo" RUSTC_BIN="$rustc" RUSTDOC_BIN="${rustdoc:-}"
  ROUTE=debian
}

# ------------------------------------------------------------------- step 1
log "Rust toolchain (mode: $MODE)"
case "$MODE" in
  rustup) try_rustup || die "the rustup route failed (PAIRED_MLS_TOOLCHAIN=rustup)" ;;
  debian) try_debian || die "the Debian route failed (PAIRED_MLS_TOOLCHAIN=debian)" ;;
  auto)
    if ! try_rustup; then
      log "falling back to Debian's rustc-web"
      try_debian || die "no working Rust toolchain for $TARGET (rustup and Debian routes both failed)"
    fi
    ;;
esac
log "using the $ROUTE route: $RUSTC_BIN"

# ------------------------------------------------------------------- step 2
WB_VERSION=""
if [[ -f "$ROOT/Cargo.lock" ]]; then
  WB_VERSION="$(awk '/^\[\[package\]\]/ {n=""} /^name = / {n=$3} n=="\"wasm-bindgen\"" && /^version = / {gsub(/"/,"",$3); print $3; exit}' "$ROOT/Cargo.lock")"
fi
if [[ -z "$WB_VERSION" ]]; then
  log "no wasm-bindgen in Cargo.lock; resolving the workspace's dependencies"
  (cd "$ROOT" && RUSTC="$RUSTC_BIN" "$CARGO_BIN" generate-lockfile)
  WB_VERSION="$(awk '/^\[\[package\]\]/ {n=""} /^name = / {n=$3} n=="\"wasm-bindgen\"" && /^version = / {gsub(/"/,"",$3); print $3; exit}' "$ROOT/Cargo.lock")"
fi
[[ -n "$WB_VERSION" ]] || die "cannot find the wasm-bindgen crate version in Cargo.lock"

WB_ROOT="$CACHE/wasm-bindgen-cli-$WB_VERSION"
WB_DIR=""
wb_reports() { [[ -x "$1" ]] && [[ "$("$1" --version 2>/dev/null || true)" == "wasm-bindgen $WB_VERSION" ]]; }
if wb_reports "$WB_ROOT/bin/wasm-bindgen"; then
  WB_DIR="$WB_ROOT/bin"
elif existing="$(command -v wasm-bindgen 2>/dev/null)" && wb_reports "$existing"; then
  WB_DIR="$(dirname "$existing")"
else
  log "cargo install wasm-bindgen-cli =$WB_VERSION (once; a minute or two)"
  # Built unoptimised, without debug info: it compiles in 76 s instead of
  # 188 s (2 cores), and then takes 1.3 s instead of 0.35 s to write the
  # core's glue, once per wasm build. On a new machine (CI's first run) the
  # compile is what counts.
  wb_install() {
    env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
      PATH="$RUST_BIN_DIR:$PATH" RUSTC="$RUSTC_BIN" \
      "$CARGO_BIN" install --quiet wasm-bindgen-cli --version "=$WB_VERSION" --root "$WB_ROOT" --force \
      --config 'profile.tool.inherits="release"' --config profile.tool.opt-level=0 \
      --config profile.tool.debug=false --config profile.tool.codegen-units=256 --profile tool "$@" </dev/null
  }
  # --locked can fail when a locked dependency version is missing from the
  # registry that this machine reaches; then resolve afresh.
  if ! wb_install --locked 2>"$CACHE/wasm-bindgen-install.log"; then
    log "--locked install failed ($(grep -m1 'error' "$CACHE/wasm-bindgen-install.log" || true)); retrying without --locked"
    wb_install || die "cargo install wasm-bindgen-cli --version =$WB_VERSION failed"
  fi
  wb_reports "$WB_ROOT/bin/wasm-bindgen" || die "installed wasm-bindgen does not report $WB_VERSION"
  WB_DIR="$WB_ROOT/bin"
fi
log "wasm-bindgen $WB_VERSION: $WB_DIR/wasm-bindgen"

# ------------------------------------------------------------------- step 3
WASM_OPT_BIN="$(command -v wasm-opt 2>/dev/null || true)"
if [[ -z "$WASM_OPT_BIN" ]]; then
  nobin="$CACHE/binaryen-unavailable"
  if [[ -n "$(find "$nobin" -mmin -1440 2>/dev/null || true)" ]]; then
    log "wasm-opt: binaryen unavailable (checked within a day); skipping"
  elif command -v apt-get >/dev/null 2>&1 && apt_install binaryen 2>/dev/null; then
    WASM_OPT_BIN="$(command -v wasm-opt 2>/dev/null || true)"
  else
    touch "$nobin"
    warn "binaryen (wasm-opt) not available; builds go without wasm-opt"
  fi
fi
[[ -n "$WASM_OPT_BIN" ]] && log "wasm-opt: $WASM_OPT_BIN ($("$WASM_OPT_BIN" --version 2>/dev/null || true))"

# ------------------------------------------------------------------- step 4
node_major() { node --version 2>/dev/null | sed -nE 's/^v([0-9]+).*/\1/p'; }
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node/npm missing; installing Debian's nodejs and npm"
  apt_install nodejs npm || warn "could not install nodejs/npm from apt"
fi
command -v node >/dev/null 2>&1 || die "node is not installed"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
if [[ "$(node_major)" -lt 20 ]]; then
  warn "node $(node --version) is older than the required 20"
else
  log "node $(node --version), npm $(npm --version)"
fi

# ------------------------------------------------------------ .toolchain.env
path_dirs=()
[[ -n "$RUST_BIN_DIR" ]] && path_dirs+=("$RUST_BIN_DIR")
[[ -n "$WB_DIR" && "$WB_DIR" != "$RUST_BIN_DIR" ]] && path_dirs+=("$WB_DIR")
mkdir -p "$ROOT/.cache"
tmp_env="$(mktemp "$ROOT/.cache/toolchain.env.XXXXXX")"
{
  echo "# Written by scripts/setup-toolchain.sh; source it before building. Do not edit."
  echo "export PAIRED_MLS_TOOLCHAIN_ROUTE=$ROUTE"
  printf 'export CARGO=%q\n' "$CARGO_BIN"
  printf 'export RUSTC=%q\n' "$RUSTC_BIN"
  [[ -n "$RUSTDOC_BIN" && -x "$RUSTDOC_BIN" ]] && printf 'export RUSTDOC=%q\n' "$RUSTDOC_BIN"
  printf 'export WASM_BINDGEN=%q\n' "$WB_DIR/wasm-bindgen"
  echo "export WASM_BINDGEN_VERSION=$WB_VERSION"
  [[ -n "$WASM_OPT_BIN" ]] && printf 'export WASM_OPT=%q\n' "$WASM_OPT_BIN"
  # These must come first on PATH (e.g. Debian's cargo before rustup's proxy).
  if [[ ${#path_dirs[@]} -gt 0 ]]; then
    printf 'export PATH=%q:"$PATH"\n' "$(IFS=:; echo "${path_dirs[*]}")"
  fi
} >"$tmp_env"
chmod 644 "$tmp_env"
mv "$tmp_env" "$ENV_FILE"
log "wrote $ENV_FILE (route: $ROUTE) in $((SECONDS - START))s"
