#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed
# for the PostgreSQL tests and `cyberian bench vaas --scaling`
# (cyberian.bench.postgres starts a throwaway cluster of its own).
#
# Usage (non-interactive, safe to repeat):
#   tools/setup-postgresql.sh
#
# - A fast no-op when the server binaries are already there: $CYBERIAN_PG_BINDIR,
#   else /usr/lib/postgresql/<version>/bin/initdb, else `initdb` on PATH.
# - As root on Debian: `apt-get install -y --no-install-recommends postgresql`
#   (running `apt-get update` first only when the package lists do not know it).
#   The tests never use the system cluster the package may create; it is left
#   alone, and a failure to start it (no systemd in a container) is harmless.
# - Not root and missing: prints the command to run and exits 0. The PostgreSQL
#   tests are NOT skipped then: they fail, each naming this script, so a
#   missing server never passes for a tested feature.
#
# Environment:
#   CYBERIAN_PG_BINDIR  a directory holding initdb, pg_ctl and postgres to use instead;
#                       nothing is installed
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup-postgresql] %s\n' "$*" >&2; }
die() { printf '[setup-postgresql] ERROR: %s\n' "$*" >&2; exit 1; }

have_server() {
  local initdb
  for initdb in /usr/lib/postgresql/*/bin/initdb; do
    [[ -x $initdb ]] && return 0
  done
  command -v initdb >/dev/null 2>&1
}

if [[ -n ${CYBERIAN_PG_BINDIR:-} ]]; then
  [[ -x $CYBERIAN_PG_BINDIR/initdb ]] || die "CYBERIAN_PG_BINDIR=$CYBERIAN_PG_BINDIR has no executable initdb"
  exit 0
fi
if have_server; then
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  log "the PostgreSQL server binaries are missing; the PostgreSQL tests will fail until they are installed."
  log "install them as root:  apt-get install -y --no-install-recommends postgresql"
  log "(or point CYBERIAN_PG_BINDIR at a directory holding initdb, pg_ctl and postgres)"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "the PostgreSQL server binaries are missing and there is no apt-get: install PostgreSQL and set CYBERIAN_PG_BINDIR"

updated=0
apt_update() {
  log "apt-get update ($1)"
  apt-get update -qq || die "apt-get update failed"
  updated=1
}
# The package's postinst may try to create and start the system cluster; without
# systemd (a container) starting it can fail, which apt reports but which the tests
# do not care about: success is judged by the binaries being there afterwards.
install_postgresql() {
  apt-get install -y -q --no-install-recommends postgresql >"$log_file" 2>&1 || have_server
}

log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
apt-cache show postgresql >/dev/null 2>&1 || apt_update "the package lists do not know postgresql yet"
log "apt-get install --no-install-recommends postgresql"
if ! install_postgresql; then
  if [[ $updated -eq 0 ]]; then  # stale lists: the version they name may be gone from the mirror
    apt_update "the install failed; retrying with fresh package lists"
    install_postgresql || { tail -n 30 "$log_file" >&2; die "apt-get install postgresql failed"; }
  else
    tail -n 30 "$log_file" >&2
    die "apt-get install postgresql failed"
  fi
fi
have_server || die "postgresql was installed but no initdb is in /usr/lib/postgresql/*/bin or on PATH"
initdb=$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
log "installed: $("${initdb:-initdb}" --version 2>/dev/null || echo postgresql)"
