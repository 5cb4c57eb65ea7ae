#!/usr/bin/env bash
# Make sure the C compilers the fused int8 kernels (src/cyberian/kernels/) are
# built with are installed: this machine's `gcc`, and on x86-64 hosts the ARM64
# cross compiler `aarch64-linux-gnu-gcc`, which the emulated ARM64 Python of
# the cross-class tests uses to build its own copy of the kernels.
#
# Usage (non-interactive, safe to repeat):
#   tools/setup-compilers.sh
#
# - A fast no-op when both are there.
# - As root on Debian: `apt-get install -y --no-install-recommends gcc
#   gcc-aarch64-linux-gnu` (only what is missing; `apt-get update` first only
#   when the package lists do not know a package).
# - Not root and missing: prints the command to run and exits 0. Without a
#   compiler the runtime runs the standard int8 graph (the same bits, slower);
#   the tests that check the fused kernels fail, naming this script.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup-compilers] %s\n' "$*" >&2; }
die() { printf '[setup-compilers] ERROR: %s\n' "$*" >&2; exit 1; }

missing=()
command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [[ $(uname -m) == x86_64 ]] && ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
  missing+=(gcc-aarch64-linux-gnu)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $EUID -ne 0 ]]; then
  log "missing: ${missing[*]}; the fused-kernel tests will fail until they are installed."
  log "install them as root:  apt-get install -y --no-install-recommends ${missing[*]}"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and there is no apt-get: install a C compiler"

log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
for package in "${missing[@]}"; do
  if ! apt-cache show "$package" >/dev/null 2>&1; then
    log "apt-get update (the package lists do not know $package yet)"
    apt-get update -qq || die "apt-get update failed"
    break
  fi
done
log "apt-get install --no-install-recommends ${missing[*]}"
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log_file" 2>&1; then
  log "retrying with fresh package lists"
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log_file" 2>&1 \
    || { tail -n 30 "$log_file" >&2; die "apt-get install ${missing[*]} failed"; }
fi
log "installed: ${missing[*]}"
