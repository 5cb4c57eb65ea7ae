#!/usr/bin/env bash
# Prepare an aarch64 (ARM64) Python 3.11 that runs on this x86-64 Debian 12
# machine under qemu-aarch64 (>= 10) user-mode emulation, with the packages the
# cyberian inference path imports (onnxruntime, numpy, tokenizers, ...).
#
# Usage (as root when something is missing; a no-op for anyone once done; non-interactive, safe to repeat):
#   tools/emulation/setup-aarch64.sh [--self-test] [--no-self-test] [--force]
#
#   --self-test     run the self-test even if nothing changed since the last pass
#   --no-self-test  skip the self-test
#   --force         rebuild the sysroot and site-packages from scratch (and self-test)
#
# Environment:
#   CYBERIAN_EMULATION_DIR   root of the result (default
#                            ${XDG_CACHE_HOME:-$HOME/.cache}/cyberian/emulation)
#   CYBERIAN_VENV_PYTHON     host venv python whose pip and package versions are
#                            used (default: <repo>/.venv/bin/python)
#   CYBERIAN_QEMU_SOURCE     "apt" (default): install qemu-user from
#                            bookworm-backports into the host; this upgrades the
#                            host's qemu-user as a whole (qemu-x86_64 too).
#                            "extract": leave the host's qemu-user untouched and
#                            unpack only the static qemu-aarch64 binary from the
#                            backports .deb into $CYBERIAN_EMULATION_DIR/qemu.
#   CYBERIAN_QEMU_AARCH64    use this qemu-aarch64 (>= 10) and install none
#   CYBERIAN_EMULATION_EXTRA_PACKAGES
#                            more PyPI names to install for aarch64, at the host
#                            venv's versions (e.g. "onnx cryptography")
#
# Result, under $ROOT=$CYBERIAN_EMULATION_DIR:
#   $ROOT/aarch64/sysroot        Debian bookworm arm64 packages, unpacked with
#                                dpkg -x (never installed into the host's dpkg db)
#   $ROOT/aarch64/site-packages  aarch64 wheels installed with pip --target
#   $ROOT/aarch64/env.json       how to launch it:
#       argv = [env.qemu, "-L", env.sysroot, env.python, ...]
#         (qemu's "-cpu MODEL", e.g. neoverse-n1, may go right after env.qemu;
#          qemu's default is "max")
#       environment += env.env, PYTHONPATH = os.pathsep.join(env.pythonpath)
#     plus the exact Debian and Python package versions that went in.
#   $ROOT/qemu/bin/qemu-aarch64  only with CYBERIAN_QEMU_SOURCE=extract
# Downloads (.deb, .whl) go to a scratch folder that is removed at the end.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

T_START=$(date +%s)
log() { printf '[setup-aarch64 %4ss] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
die() { printf '[setup-aarch64] ERROR: %s\n' "$*" >&2; exit 1; }

FORCE=0 SELFTEST=auto
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --self-test) SELFTEST=always ;;
    --no-self-test) SELFTEST=never ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV_PY=${CYBERIAN_VENV_PYTHON:-$REPO/.venv/bin/python}
ROOT=${CYBERIAN_EMULATION_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cyberian/emulation}
QEMU_SOURCE=${CYBERIAN_QEMU_SOURCE:-apt}
ARCHDIR=$ROOT/aarch64
SYSROOT=$ARCHDIR/sysroot
SITE=$ARCHDIR/site-packages
DL=$ARCHDIR/downloads.tmp
ENV_JSON=$ARCHDIR/env.json
GUEST_PY=$SYSROOT/usr/bin/python3.11
QEMU_MIN_MAJOR=10
BACKPORTS=bookworm-backports
BACKPORTS_FILE=/etc/apt/sources.list.d/debian-backports.sources

# Debian bookworm arm64 packages making up the sysroot: the interpreter, its
# stdlib and every library the stdlib extension modules and the manylinux
# wheels (onnxruntime, numpy, tokenizers, ...) link against. The self-test
# dlopen()s every shared object to prove the list is complete.
DEBS=(
  libc6 libgcc-s1 libstdc++6
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
  zlib1g libexpat1 libssl3 libffi8 libbz2-1.0 liblzma5 libsqlite3-0 libcrypt1
  libdb5.3 libncursesw6 libtinfo6 libreadline8 libuuid1
  libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0
  libcom-err2 libkeyutils1
)
# Python packages: names as in the host venv; versions are taken from it.
PYPKGS=(onnxruntime numpy tokenizers PyYAML rfc8785 safetensors click tqdm httpx)
read -r -a _extra <<<"${CYBERIAN_EMULATION_EXTRA_PACKAGES:-}"
PYPKGS+=("${_extra[@]}")
ORT_VERSION=1.32.0

need_root() { [[ $EUID -eq 0 ]] || die "$1 is missing: run this script as root once (it uses apt-get and dpkg)"; }
[[ -x $VENV_PY ]] || die "host venv python not found: $VENV_PY (set CYBERIAN_VENV_PYTHON)"
"$VENV_PY" -m pip --version >/dev/null 2>&1 || die "$VENV_PY has no pip"
for c in apt-get apt-cache dpkg dpkg-deb flock sha256sum; do
  command -v "$c" >/dev/null || die "needs $c (Debian's apt, dpkg, util-linux, coreutils)"
done
if [[ -r /etc/os-release ]]; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ $codename == bookworm ]] || log "warning: host is '$codename', this script targets Debian 12 (bookworm)"
fi

mkdir -p "$ARCHDIR"
exec 9>"$ROOT/.lock"
flock 9 || die "cannot lock $ROOT/.lock"
SELFTEST_TMP=""
trap 'rm -rf "$ARCHDIR/sysroot.tmp" "$ARCHDIR/site-packages.tmp" "$DL" ${SELFTEST_TMP:+"$SELFTEST_TMP"}' EXIT

# ---------------------------------------------------------------- apt helpers
APT_UPDATED=0
apt_update_once() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
}
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# deb822 file for bookworm-backports, with the URI and keyring of the stanza of
# the existing debian.sources that carries the "bookworm" suite.
ensure_backports_source() {
  if grep -rqsE "^[^#]*\b$BACKPORTS\b" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local src=/etc/apt/sources.list.d/debian.sources uri="" keyring=""
  if [[ -r $src ]]; then
    read -r uri keyring < <(awk '
      BEGIN { RS=""; FS="\n" }
      {
        u=""; k=""; s=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)      { u=$i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
          if ($i ~ /^Signed-By:/) { k=$i; sub(/^Signed-By:[ \t]*/, "", k) }
          if ($i ~ /^Suites:/)    { s=$i }
        }
        if (s ~ /[ \t]bookworm([ \t]|$)/ && u != "") { print u, k; exit }
      }' "$src")
  fi
  [[ -n $uri ]] || die "cannot find the bookworm stanza (URIs:) in $src to derive $BACKPORTS from"
  [[ -n $keyring ]] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  log "adding $BACKPORTS source: $BACKPORTS_FILE (URIs: $uri)"
  cat >"$BACKPORTS_FILE.tmp" <<EOF
# Added by cyberian tools/emulation/setup-aarch64.sh (for qemu-user >= $QEMU_MIN_MAJOR).
Types: deb
URIs: $uri
Suites: $BACKPORTS
Components: main
Signed-By: $keyring
EOF
  mv "$BACKPORTS_FILE.tmp" "$BACKPORTS_FILE"
  APT_UPDATED=0
}

# -------------------------------------------------------------------- qemu
qemu_version() { "$1" --version 2>/dev/null | sed -n '1s/.* version \([0-9][0-9.]*\).*/\1/p'; }
qemu_ok() { # path -> true if executable and major version >= QEMU_MIN_MAJOR
  [[ -x $1 ]] || return 1
  local v; v=$(qemu_version "$1"); [[ -n $v ]] && (( ${v%%.*} >= QEMU_MIN_MAJOR ))
}

# the package in bookworm-backports that ships a real qemu-aarch64 binary
backports_qemu_pkg() {
  local p v
  for p in qemu-user qemu-user-static; do
    v=$(apt-cache madison "$p" 2>/dev/null | awk -F'|' -v s="$BACKPORTS/" '$3 ~ s {gsub(/ /,"",$2); print $2; exit}')
    [[ -n $v ]] || continue
    # a transitional package (qemu-user-static in trixie/backports) ships no binaries
    if apt-cache show "$p=$v" 2>/dev/null | grep -qi '^Description:.*transitional'; then continue; fi
    echo "$p $v"; return 0
  done
  return 1
}

find_qemu_aarch64() {
  local c
  if [[ -n ${CYBERIAN_QEMU_AARCH64:-} ]]; then echo "$CYBERIAN_QEMU_AARCH64"; return 0; fi
  if [[ $QEMU_SOURCE == extract ]]; then
    c=$ROOT/qemu/bin/qemu-aarch64; qemu_ok "$c" && { echo "$c"; return 0; }
    return 1
  fi
  for c in /usr/bin/qemu-aarch64 /usr/bin/qemu-aarch64-static; do
    qemu_ok "$c" && { readlink -f "$c"; return 0; }
  done
  return 1
}

ensure_qemu() {
  local q pkg ver pkgs deb
  if q=$(find_qemu_aarch64); then QEMU=$q; return 0; fi
  [[ -z ${CYBERIAN_QEMU_AARCH64:-} ]] || die "CYBERIAN_QEMU_AARCH64=$CYBERIAN_QEMU_AARCH64 is not qemu-aarch64 >= $QEMU_MIN_MAJOR"
  need_root "qemu-aarch64 >= $QEMU_MIN_MAJOR"
  ensure_backports_source
  apt_update_once
  read -r pkg ver < <(backports_qemu_pkg) || die "no qemu-user package with binaries found in $BACKPORTS"
  log "qemu-aarch64 >= $QEMU_MIN_MAJOR comes from $BACKPORTS package $pkg $ver"
  if [[ $QEMU_SOURCE == extract ]]; then
    mkdir -p "$DL/qemu" "$ROOT/qemu/bin"
    rm -f "$DL/qemu/"*.deb
    (cd "$DL/qemu" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver") || die "apt-get download $pkg=$ver failed"
    deb=$(ls "$DL/qemu/"*.deb)
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/qemu-aarch64 >"$ROOT/qemu/bin/qemu-aarch64.tmp"
    chmod 755 "$ROOT/qemu/bin/qemu-aarch64.tmp"
    mv "$ROOT/qemu/bin/qemu-aarch64.tmp" "$ROOT/qemu/bin/qemu-aarch64"
    echo "$pkg $ver from $BACKPORTS, only qemu-aarch64 extracted (host packages untouched)" >"$ROOT/qemu/SOURCE"
    rm -rf "$DL/qemu"
  else
    pkgs=("$pkg")
    # keep the binfmt registration package in lockstep if it is installed
    # (the bookworm one depends on qemu-user of exactly its own version)
    if pkg_installed qemu-user-binfmt; then pkgs+=(qemu-user-binfmt); fi
    log "apt-get install -t $BACKPORTS ${pkgs[*]}"
    mkdir -p "$DL"
    if ! apt-get install -y -q --no-install-recommends -t "$BACKPORTS" "${pkgs[@]}" >"$DL/apt.log" 2>&1; then
      cat "$DL/apt.log" >&2
      die "apt-get install -t $BACKPORTS ${pkgs[*]} failed"
    fi
    log "$pkg now provides: $(dpkg -L "$pkg" | grep -E '/bin/qemu-aarch64(-static)?$' | tr '\n' ' ')"
  fi
  if ! q=$(find_qemu_aarch64); then
    for q in /usr/bin/qemu-aarch64 /usr/bin/qemu-aarch64-static "$ROOT/qemu/bin/qemu-aarch64"; do
      [[ -x $q ]] && log "found $q version $(qemu_version "$q")"
    done
    die "after installing $pkg $ver from $BACKPORTS there is still no qemu-aarch64 >= $QEMU_MIN_MAJOR"
  fi
  QEMU=$q
}

# ------------------------------------------------------------------ sysroot
sysroot_wanted() { printf '%s\n' "${DEBS[@]}" | sort; }
sysroot_ok() {
  [[ -x $GUEST_PY && -f $SYSROOT/.cyberian-debs && -f $SYSROOT/.cyberian-wanted ]] &&
    [[ $(cat "$SYSROOT/.cyberian-wanted") == "$(sysroot_wanted)" ]]
}

ensure_sysroot() {
  if [[ $FORCE -eq 0 ]] && sysroot_ok; then return 0; fi
  need_root "the arm64 sysroot"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64 (only to let apt fetch arm64 .debs; nothing arm64 is installed)"
    dpkg --add-architecture arm64
    APT_UPDATED=0
  fi
  apt_update_once
  local d=$DL/debs tmp=$ARCHDIR/sysroot.tmp deb
  rm -rf "$d" "$tmp"; mkdir -p "$d" "$tmp"
  log "apt-get download ${#DEBS[@]} arm64 packages"
  (cd "$d" && apt-get download -qq -o APT::Sandbox::User=root "${DEBS[@]/%/:arm64}") \
    || die "apt-get download of the arm64 packages failed"
  : >"$tmp/.cyberian-debs"
  for deb in "$d"/*.deb; do
    dpkg-deb -x "$deb" "$tmp"
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >>"$tmp/.cyberian-debs"
  done
  sort -o "$tmp/.cyberian-debs" "$tmp/.cyberian-debs"
  # Mask the host's Debian site dirs: qemu -L falls back to host paths that are
  # missing in the sysroot, and x86-64 modules there must never be picked up.
  mkdir -p "$tmp/usr/lib/python3/dist-packages" "$tmp/usr/local/lib/python3.11/dist-packages" \
    "$tmp/usr/lib/python3.11/site-packages"
  rm -rf "$SYSROOT"; mv "$tmp" "$SYSROOT"
  # Debian byte-compiles the stdlib in postinst, which dpkg -x never runs:
  # compile it here, natively (.pyc files are platform independent within
  # 3.11) and at its final path (a .pyc records it), so that emulated runs
  # neither recompile it nor write into the sysroot.
  log "byte-compiling the sysroot stdlib"
  "$VENV_PY" -m compileall -q -j 0 -x '/(lib2to3/tests|test)/' "$SYSROOT/usr/lib/python3.11" >/dev/null 2>&1 || true
  sysroot_wanted >"$SYSROOT/.cyberian-wanted"  # marks the sysroot complete
  rm -rf "$d"  # unpacked; env.json records the versions
}

# ------------------------------------------------------------ site-packages
glibc_platforms() { # --platform flags for every manylinux tag the sysroot's glibc accepts
  local v minor i
  v=$(awk '$1=="libc6"{print $2}' "$SYSROOT/.cyberian-debs")  # e.g. 2.36-9+deb12u10
  minor=$(sed -n 's/^2\.\([0-9]*\).*/\1/p' <<<"$v"); minor=${minor:-28}
  for ((i = minor; i >= 17; i--)); do printf -- '--platform\nmanylinux_2_%s_aarch64\n' "$i"; done
  printf -- '--platform\nmanylinux2014_aarch64\n'
}

# requirement specs: onnxruntime pinned, everything else at the host venv's version
host_versions() {
  "$VENV_PY" - "$@" <<'EOF'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "-")
EOF
}

# constraints for the transitive dependencies: the host venv's versions
host_constraints() {
  "$VENV_PY" -m pip freeze --all --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9._-]+==' |
    grep -viE "^($(IFS='|'; echo "${PYPKGS[*]}"))==" || true
}

# versions of $1 nearest to $2 first (same major.minor first, then by position
# in the release order, older first on a tie); `pip index` does not filter by
# platform reliably, so the caller checks each candidate for a wheel
nearest_versions() {
  local out
  out=$("$VENV_PY" -m pip index versions "$1" --python-version 3.11 --implementation cp \
        --only-binary=:all: "${PLATFORM_ARGS[@]}" 2>/dev/null | sed -n 's/^Available versions: //p') || true
  [[ -n $out ]] || return 1
  "$VENV_PY" - "$2" "$out" <<'EOF2'
import sys
from packaging.version import Version
want = Version(sys.argv[1])
vs = sorted({Version(v.strip()) for v in sys.argv[2].split(",") if v.strip()} - {want})
vs = [v for v in vs if not v.is_prerelease] or vs
pos = sum(v < want for v in vs)  # insertion point of want
dist = {v: (pos - i if i < pos else i - pos + 1) * 2 - (i < pos) for i, v in enumerate(vs)}
for v in sorted(vs, key=lambda v: (v.release[:2] != want.release[:2], dist[v]))[:8]:
    print(v)
EOF2
}

# (drops pip's notes about configured local index paths that do not exist)
pip_target() { "$VENV_PY" -m pip "$@" "${PLATFORM_ARGS[@]}" --python-version 3.11 --implementation cp \
                 --only-binary=:all: --no-cache-dir -q 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2); }

site_key() { # what the installed site-packages must match
  { printf '%s\n' "${REQS[@]}"; echo "--"; cat "$CONSTRAINTS"; echo "--"; printf '%s\n' "${PLATFORM_ARGS[@]}"; } | sha256sum | cut -c1-16
}

ensure_site() {
  local name ver
  mapfile -t PLATFORM_ARGS < <(glibc_platforms)
  REQS=()
  while read -r name ver; do
    if [[ $name == onnxruntime ]]; then REQS+=("onnxruntime==$ORT_VERSION")
    elif [[ $ver == - ]]; then REQS+=("$name")
    else REQS+=("$name==$ver"); fi
  done < <(host_versions "${PYPKGS[@]}")
  CONSTRAINTS=$ARCHDIR/constraints.txt
  host_constraints >"$CONSTRAINTS.tmp" && mv "$CONSTRAINTS.tmp" "$CONSTRAINTS"
  local key; key=$(site_key)  # of what was asked for, before any fallback below
  if [[ $FORCE -eq 0 && -f $SITE/.cyberian-key && $(cat "$SITE/.cyberian-key") == "$key" ]]; then return 0; fi

  local w=$DL/wheels tmp=$ARCHDIR/site-packages.tmp use_c=(-c "$CONSTRAINTS")
  rm -rf "$w" "$tmp"; mkdir -p "$w"
  log "pip download (aarch64, cp311): ${REQS[*]}"
  if ! pip_target download -d "$w" "${use_c[@]}" "${REQS[@]}"; then
    log "resolution with the host venv's exact versions failed; checking each package"
    local i spec n v alt c
    for i in "${!REQS[@]}"; do
      spec=${REQS[$i]}; n=${spec%%==*}; v=${spec#*==}
      [[ $spec == *==* ]] || continue
      if pip_target download -d "$w" --no-deps "$spec" 2>/dev/null; then continue; fi
      [[ $n != onnxruntime ]] || die "onnxruntime==$ORT_VERSION has no aarch64 cp311 wheel"
      alt=""
      for c in $(nearest_versions "$n" "$v"); do
        if pip_target download -d "$w" --no-deps "$n==$c" 2>/dev/null; then alt=$c; break; fi
      done
      [[ -n $alt ]] || die "no aarch64 cp311 wheel of $n near $v"
      log "WARNING: $n==$v has no aarch64 cp311 wheel; using the nearest, $n==$alt"
      REQS[$i]="$n==$alt"
    done
    if ! pip_target download -d "$w" "${use_c[@]}" "${REQS[@]}"; then
      log "WARNING: the host venv's versions of transitive dependencies do not resolve for aarch64; dropping those constraints"
      use_c=()
      pip_target download -d "$w" "${REQS[@]}" || die "pip download for aarch64 failed"
    fi
  fi
  log "pip install --target (aarch64)"
  pip_target install --target "$tmp" --no-compile --no-index --find-links "$w" "${use_c[@]}" "${REQS[@]}" \
    || die "pip install --target failed"
  rm -rf "${tmp:?}/bin"  # console scripts would point at the host interpreter
  rm -rf "$SITE"; mv "$tmp" "$SITE"
  log "byte-compiling site-packages"
  "$VENV_PY" -m compileall -q -j 0 "$SITE" >/dev/null 2>&1 || true
  echo "$key" >"$SITE/.cyberian-key"  # marks site-packages complete
  rm -rf "$w"  # installed; env.json records the versions
}

# ----------------------------------------------------------------- env.json
write_env_json() {
  local qv; qv=$(qemu_version "$QEMU")
  "$VENV_PY" - "$ENV_JSON" "$QEMU" "$qv" "$SYSROOT" "$GUEST_PY" "$SITE" "$SYSROOT/.cyberian-debs" \
    "$QEMU_PKG_DESC" <<'EOF'
import json, os, sys
from importlib import metadata
out, qemu, qv, sysroot, py, site, debs, qpkg = sys.argv[1:]
env = {
    "qemu": qemu,
    "qemu_version": qv,
    "qemu_package": qpkg,
    "sysroot": sysroot,
    "python": py,
    "pythonpath": [site],
    # stdlib is found from the interpreter's own path (no PYTHONHOME needed);
    # keep the host user's ~/.local site dir out of sys.path
    "env": {"PYTHONNOUSERSITE": "1"},
    "argv_prefix": [qemu, "-L", sysroot, py],
    "debian_packages": dict(l.split(None, 1) for l in open(debs).read().split("\n") if l.strip()),
    "python_packages": {d.metadata["Name"]: d.version
                        for d in sorted(metadata.distributions(path=[site]),
                                        key=lambda d: d.metadata["Name"].lower())},
}
text = json.dumps(env, indent=2) + "\n"
if not os.path.exists(out) or open(out).read() != text:
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
EOF
}

# ---------------------------------------------------------------- self-test
guest() { env PYTHONNOUSERSITE=1 PYTHONPATH="$SITE" "$QEMU" -L "$SYSROOT" "$GUEST_PY" "$@"; }

self_test() {
  "$VENV_PY" -c 'import onnx, onnxruntime' 2>/dev/null || die "self-test needs onnx and onnxruntime in $VENV_PY"
  local t; t=$(mktemp -d /tmp/cyberian-emu-selftest.XXXXXX)
  SELFTEST_TMP=$t
  log "self-test 1/4: imports under qemu-aarch64"
  guest -c 'import onnxruntime, numpy, tokenizers, yaml, platform; print(onnxruntime.__version__, numpy.__version__, platform.machine())' \
    | tee "$t/imports.txt"
  read -r ov _ mach <"$t/imports.txt"
  [[ $ov == "$ORT_VERSION" && $mach == aarch64 ]] || die "self-test: expected onnxruntime $ORT_VERSION on aarch64"

  log "self-test 2/4: stdlib, sys.path and every shared object (dlopen) under qemu-aarch64"
  guest - "$ROOT" "$SYSROOT" "$SITE" <<'EOF'
import ctypes, os, sys
root, sysroot, site = sys.argv[1:]
import bz2, ctypes.util, decimal, hashlib, json, lzma, sqlite3, ssl, uuid, zlib, rfc8785, safetensors, click, tqdm, httpx  # noqa
assert sys.prefix == os.path.join(sysroot, "usr"), sys.prefix
bad = [p for p in sys.path if p and not p.startswith(root) and os.path.exists(p)]
assert not bad, f"host paths leak into sys.path: {bad}"
fails = []
n = 0
for top in (os.path.join(sysroot, "usr/lib/python3.11/lib-dynload"), site):
    for d, _, files in os.walk(top):
        for f in files:
            if ".so" in f and not f.endswith(".py"):
                n += 1
                try:
                    ctypes.CDLL(os.path.join(d, f))
                except OSError as e:
                    fails.append(str(e))
print(f"stdlib ok ({ssl.OPENSSL_VERSION}, sqlite {sqlite3.sqlite_version}); "
      f"sys.prefix={sys.prefix}; dlopen {n - len(fails)}/{n} shared objects ok")
if fails:
    print("\n".join(fails)); sys.exit(1)
EOF

  log "self-test 3/4: a tiny ONNX MatMul on the host and under qemu-aarch64"
  "$VENV_PY" - "$t" <<'EOF'
import sys, numpy as np, onnx
from onnx import TensorProto, helper
t = sys.argv[1]
for name, (m, k, n) in {"matmul_int": (8, 16, 4), "matmul_rand": (64, 256, 32)}.items():
    g = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], name,
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k]),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, f"{t}/{name}.onnx")
    if name == "matmul_int":  # small integers: exact in any summation order
        a = (np.arange(m * k) % 7 - 3).reshape(m, k); b = (np.arange(k * n) % 5 - 2).reshape(k, n)
    else:
        rng = np.random.default_rng(0); a = rng.random((m, k)) - 0.5; b = rng.random((k, n)) - 0.5
    np.save(f"{t}/{name}.A.npy", a.astype(np.float32)); np.save(f"{t}/{name}.B.npy", b.astype(np.float32))
EOF
  cat >"$t/run.py" <<'EOF'
import hashlib, platform, sys, numpy as np, onnxruntime as ort
t = sys.argv[1]
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
for name in ("matmul_int", "matmul_rand"):
    s = ort.InferenceSession(f"{t}/{name}.onnx", o, providers=["CPUExecutionProvider"])
    y = s.run(None, {"A": np.load(f"{t}/{name}.A.npy"), "B": np.load(f"{t}/{name}.B.npy")})[0]
    print(platform.machine(), name, y.shape, "sha256", hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest())
EOF
  "$VENV_PY" "$t/run.py" "$t" | tee "$t/host.txt"
  guest "$t/run.py" "$t" | tee "$t/guest.txt"
  local hi gi hr gr
  hi=$(awk '$2=="matmul_int"{print $NF}' "$t/host.txt"); gi=$(awk '$2=="matmul_int"{print $NF}' "$t/guest.txt")
  hr=$(awk '$2=="matmul_rand"{print $NF}' "$t/host.txt"); gr=$(awk '$2=="matmul_rand"{print $NF}' "$t/guest.txt")
  [[ -n $gi && $hi == "$gi" ]] || die "self-test: integer MatMul differs between x86-64 and aarch64"
  if [[ $hr == "$gr" ]]; then log "random float32 MatMul: x86-64 and aarch64 outputs are bit-identical"
  else log "NOTE: random float32 MatMul differs between x86-64 and aarch64 (different kernels; informational)"; fi

  log "self-test 4/4: qemu-x86_64 -cpu Haswell-v4 still runs the host venv's onnxruntime"
  local qx; qx=$(command -v qemu-x86_64 || true)
  if [[ -z $qx ]]; then
    log "WARNING: no qemu-x86_64 on PATH; skipped"
  else
    log "using $qx ($(qemu_version "$qx"))"
    "$qx" -cpu Haswell-v4 "$VENV_PY" -c 'import onnxruntime, platform; print("qemu-x86_64 Haswell-v4:", onnxruntime.__version__, platform.machine())' \
      2> >(grep -v "TCG doesn't support requested feature" >&2) || die "qemu-x86_64 -cpu Haswell-v4 cannot run $VENV_PY"
  fi
}

# The x86-64 cross-class targets (qemu-x86_64 -cpu Haswell-v4 / SandyBridge-v2 /
# Nehalem-v2) need the x86-64 emulator too: the backports qemu-user above brings
# it; with CYBERIAN_QEMU_SOURCE=extract or CYBERIAN_QEMU_AARCH64 it may be absent.
ensure_qemu_x86() {
  command -v qemu-x86_64 >/dev/null && return 0
  need_root "qemu-x86_64"
  apt_update_once
  log "apt-get install qemu-user (for qemu-x86_64)"
  apt-get install -y -q --no-install-recommends qemu-user >/dev/null || die "apt-get install qemu-user failed"
}

# --------------------------------------------------------------------- main
ensure_qemu
ensure_qemu_x86
QEMU_PKG_DESC=$(dpkg -S "$QEMU" 2>/dev/null | head -1 | cut -d: -f1 || true)
if [[ -n $QEMU_PKG_DESC ]]; then
  QEMU_PKG_DESC="$QEMU_PKG_DESC $(dpkg-query -W -f='${Version}' "$QEMU_PKG_DESC")"
else
  QEMU_PKG_DESC=$(cat "$(dirname "$QEMU")/../SOURCE" 2>/dev/null || echo "not from a Debian package")
fi
log "qemu-aarch64: $QEMU (version $(qemu_version "$QEMU"), package: $QEMU_PKG_DESC)"
ensure_sysroot
ensure_site
write_env_json
log "env.json: $ENV_JSON"

stamp=$ARCHDIR/.selftest-ok
[[ $FORCE -eq 1 && $SELFTEST == auto ]] && SELFTEST=always
want_stamp=$(sha256sum "$ENV_JSON" | cut -c1-16)
if [[ $SELFTEST == always || ( $SELFTEST == auto && ( ! -f $stamp || $(cat "$stamp") != "$want_stamp" ) ) ]]; then
  self_test
  echo "$want_stamp" >"$stamp"
  log "self-test passed"
elif [[ $SELFTEST == auto ]]; then
  log "nothing changed since the last passing self-test (run with --self-test to repeat it)"
fi
log "done in $(($(date +%s) - T_START))s; $(du -sh "$ARCHDIR" | cut -f1) in $ARCHDIR"
