#!/usr/bin/env bash
# What the tests run against, from Debian's packages: PostgreSQL (the DS's
# shared-database store is tested against a real server, which the tests
# start themselves in a temporary directory on a free loopback port) and
# Chromium (the browser tests drive it with playwright-core; test tools
# cannot download their own browser here). Idempotent; nothing is started.
set -euo pipefail

log() { echo "setup-services: $*" >&2; }
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1; fi
}

have_postgres() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && id postgres >/dev/null 2>&1
}

have_chromium() { [[ -x /usr/bin/chromium ]]; }

apt_install() {
  log "installing $* (Debian packages)"
  if ! as_root apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null 2>&1; then
    as_root apt-get update -qq </dev/null >/dev/null
    as_root apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
  fi
}

have_postgres || apt_install postgresql
# The package may start its default cluster; the tests use their own.
have_postgres || { log "PostgreSQL is still missing after the install"; exit 1; }
have_chromium || apt_install chromium
have_chromium || { log "Chromium is still missing after the install"; exit 1; }
