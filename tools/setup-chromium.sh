#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed for the browser tests
# (tests/integration/test_audit_page.py and its server twin run the receipt
# audit page in a real Chromium).
#
# Usage (non-interactive, safe to repeat):
#   tools/setup-chromium.sh
#
# - A fast no-op when `chromium` (or $CYBERIAN_CHROMIUM) is already there.
# - As root on Debian: `apt-get install -y --no-install-recommends chromium`
#   (running `apt-get update` first only when the package lists do not know it).
# - Not root and missing: prints the command to run and exits 0. The browser
#   tests are NOT skipped then: they fail, each naming that command, so a
#   missing browser never passes for a tested feature.
#
# Environment:
#   CYBERIAN_CHROMIUM   a Chromium (or Chrome) binary to use instead; nothing is installed
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup-chromium] %s\n' "$*" >&2; }
die() { printf '[setup-chromium] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -n ${CYBERIAN_CHROMIUM:-} ]]; then
  [[ -x $CYBERIAN_CHROMIUM ]] || die "CYBERIAN_CHROMIUM=$CYBERIAN_CHROMIUM is not an executable"
  exit 0
fi
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  log "chromium is missing; the browser tests will fail until it is installed."
  log "install it as root:  apt-get install -y --no-install-recommends chromium"
  log "(or point CYBERIAN_CHROMIUM at a Chromium / Chrome binary)"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "chromium is missing and there is no apt-get: install Chromium and set CYBERIAN_CHROMIUM"

updated=0
apt_update() {
  log "apt-get update ($1)"
  apt-get update -qq || die "apt-get update failed"
  updated=1
}
install_chromium() { apt-get install -y -q --no-install-recommends chromium >"$log_file" 2>&1; }

log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
apt-cache show chromium >/dev/null 2>&1 || apt_update "the package lists do not know chromium yet"
log "apt-get install --no-install-recommends chromium"
if ! install_chromium; then
  if [[ $updated -eq 0 ]]; then  # stale lists: the version they name may be gone from the mirror
    apt_update "the install failed; retrying with fresh package lists"
    install_chromium || { tail -n 30 "$log_file" >&2; die "apt-get install chromium failed"; }
  else
    tail -n 30 "$log_file" >&2
    die "apt-get install chromium failed"
  fi
fi
command -v chromium >/dev/null 2>&1 || die "chromium was installed but is not on PATH"
log "installed: $(chromium --version 2>/dev/null || echo chromium)"
