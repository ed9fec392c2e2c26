#!/usr/bin/env bash
# Servers the tests run against, from Debian's packages: PostgreSQL (the
# DS's shared-database store is tested against a real server, which the
# tests start themselves in a temporary directory on a free loopback port).
# Idempotent; nothing is started here.
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

if have_postgres; then
  exit 0
fi
log "installing PostgreSQL (Debian package postgresql)"
if ! as_root apt-get install -y -qq --no-install-recommends postgresql </dev/null >/dev/null 2>&1; then
  as_root apt-get update -qq </dev/null >/dev/null
  as_root apt-get install -y -qq --no-install-recommends postgresql </dev/null >/dev/null
fi
# The package may start its default cluster; the tests use their own.
have_postgres || { log "PostgreSQL is still missing after the install"; exit 1; }
