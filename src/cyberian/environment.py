"""The environment manifest: what software and CPU produced a result.

Bitwise reproducibility is promised within one CPU class
(:mod:`cyberian.cpuclass`), so every result carries this manifest: engine and
library versions, the CPU's vendor and model (from ``/proc/cpuinfo``), the
ISA flags that decide kernel choice, the ISA level and the class (both from
CPUID, as the engine sees it -- right under emulation too), and OS /
architecture.
"""

from __future__ import annotations

import platform
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ._version import __version__
from .cpuclass import cpu_class, isa_flags, isa_level

__all__ = ["cpu_class", "cpu_info", "environment_manifest", "package_version"]



def package_version(distribution: str) -> str | None:
    """The installed version of a distribution (None when it is not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _read_cpuinfo() -> dict[str, str]:
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    if not path.is_file():
        return fields
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # first processor block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    return fields


@cache
def cpu_info() -> dict[str, Any]:
    """Vendor, model and family of this CPU, and the kernel-relevant ISA flags CPUID reports."""
    raw = _read_cpuinfo()
    return {
        "vendor": raw.get("vendor_id") or raw.get("CPU implementer") or platform.processor(),
        "model": raw.get("model name") or raw.get("CPU part") or platform.processor(),
        "family": raw.get("cpu family") or raw.get("CPU architecture"),
        "model_id": raw.get("model") or raw.get("CPU variant"),
        "isa_flags": isa_flags(),
        "logical_cpus": _logical_cpus(),
    }


def _logical_cpus() -> int:
    import os  # noqa: PLC0415

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def environment_manifest(
    *, engine_version: str, engine_drift: str | None = None
) -> dict[str, Any]:
    """The manifest recorded with every result.

    ``engine_drift`` is the spec's pinned engine version when it differs from
    the installed one (the run was allowed to drift).
    """
    manifest: dict[str, Any] = {
        "engine": {"name": "onnxruntime", "version": engine_version},
        "libraries": {
            "cyberian": __version__,
            "numpy": package_version("numpy"),
            "tokenizers": package_version("tokenizers"),
            "python": platform.python_version(),
        },
        "cpu": {**cpu_info(), "isa_level": isa_level(), "class": cpu_class()},
        "os": {"system": platform.system(), "release": platform.release(),
               "machine": platform.machine(), "byteorder": sys.byteorder},
    }
    if engine_drift is not None:
        manifest["engine_drift"] = {"pinned": engine_drift, "installed": engine_version}
    return manifest
