"""Compile the fused kernels (``kernels.c``) once per machine and hand out the library.

The library is built from the shipped C source with this machine's C compiler
(``$CYBERIAN_CC``, else ``cc`` or ``gcc``, else the cross compiler
``<arch>-linux-gnu-gcc``: the first whose target is this interpreter's
architecture) and fixed flags, and kept in ``<cache>/kernels/`` under the
SHA-256 of source, flags and architecture, so a changed source or flag is a
new file. Where no compiler works, :func:`kernel_library` returns ``None``
and :func:`unavailable_reason` says why: the runtime then runs the standard
graph, which gives the same bits, only slower.

``CYBERIAN_FUSED_KERNELS=0`` turns the kernels off for every run in this
environment (to measure or to rule them out).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from .._paths import cache_dir

__all__ = ["COMPILE_FLAGS", "KernelLibrary", "kernel_library", "kernel_source_sha256",
           "kernels_enabled", "unavailable_reason"]

_SOURCES: Final = ("kernels.c", "ort_abi.h")
COMPILE_FLAGS: Final = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math",
                        "-fPIC", "-shared", "-fvisibility=hidden")
"""No -ffast-math and no contraction into FMA: every operation is the correctly rounded one the
standard graph performs. The last three flags change no arithmetic."""
_COMPILE_TIMEOUT_S: Final = 120.0
_DISABLE_VARIABLE: Final = "CYBERIAN_FUSED_KERNELS"


@dataclass(frozen=True)
class KernelLibrary:
    """A compiled kernel library: where it is, and the hash of what it was compiled from."""

    path: Path
    source_sha256: str


def kernels_enabled() -> bool:
    """False when ``CYBERIAN_FUSED_KERNELS=0`` turns the fused kernels off."""
    return os.environ.get(_DISABLE_VARIABLE, "1").strip().lower() not in {"0", "off", "no",
                                                                         "false"}


def _source_bytes() -> dict[str, bytes]:
    folder = resources.files(__package__)
    return {name: folder.joinpath(name).read_bytes() for name in _SOURCES}


def kernel_source_sha256() -> str:
    """SHA-256 over the kernel sources, the compile flags and this architecture."""
    digest = hashlib.sha256()
    for name, data in sorted(_source_bytes().items()):
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update("\0".join(COMPILE_FLAGS).encode())
    digest.update(platform.machine().encode())
    return digest.hexdigest()


def _targets_this_machine(compiler: str) -> bool:
    try:
        done = subprocess.run([compiler, "-dumpmachine"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    target = done.stdout.strip().split("-")[0]
    machine = platform.machine()
    return done.returncode == 0 and target == machine


def _compiler() -> str | None:
    machine = platform.machine()
    candidates = [os.environ.get("CYBERIAN_CC", ""), "cc", "gcc", f"{machine}-linux-gnu-gcc"]
    for name in candidates:
        path = shutil.which(name) if name else None
        if path and _targets_this_machine(path):
            return path
    return None


class _KernelsUnavailableError(Exception):
    pass


def _compile(target: Path) -> None:
    compiler = _compiler()
    if compiler is None:
        raise _KernelsUnavailableError(
            f"no C compiler for {platform.machine()} (install gcc, or set CYBERIAN_CC)")
    with tempfile.TemporaryDirectory(prefix="cyberian-kernels-") as tmp:
        folder = Path(tmp)
        for name, data in _source_bytes().items():
            (folder / name).write_bytes(data)
        built = folder / "kernels.so"
        try:
            done = subprocess.run([compiler, *COMPILE_FLAGS, "-o", str(built), "kernels.c"],
                                  cwd=folder, capture_output=True, text=True,
                                  timeout=_COMPILE_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise _KernelsUnavailableError(f"{compiler} did not run: {exc}") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise _KernelsUnavailableError(f"{compiler} failed to compile the kernels: {last}")
        staged = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.copyfile(built, staged)
        os.replace(staged, target)  # atomic: a concurrent run sees all of it or nothing


@functools.cache
def _library() -> KernelLibrary | str:
    sha = kernel_source_sha256()
    try:
        target = cache_dir("kernels") / f"{sha}.so"
        if not target.is_file():
            _compile(target)
    except _KernelsUnavailableError as exc:
        return str(exc)
    except OSError as exc:
        return f"the kernel cache is not writable ({exc.strerror or exc})"
    return KernelLibrary(target, sha)


def kernel_library() -> KernelLibrary | None:
    """This machine's compiled kernels (compiled on first use), or ``None`` where unavailable."""
    if not kernels_enabled():
        return None
    found = _library()
    return found if isinstance(found, KernelLibrary) else None


def unavailable_reason() -> str | None:
    """Why :func:`kernel_library` returns ``None`` (``None`` when it does not)."""
    if not kernels_enabled():
        return f"turned off by {_DISABLE_VARIABLE}=0"
    found = _library()
    return found if isinstance(found, str) else None
