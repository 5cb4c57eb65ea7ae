"""CPU classes: which CPUs give the same output bytes, decided the way the engine decides.

ONNX Runtime's MLAS picks its float kernels at start-up from CPUID (and the
OS's saved-register mask, XCR0), not from ``/proc/cpuinfo``; under an
emulator or a hypervisor that masks features the two disagree. So the
features here come from CPUID as a SIMD dispatcher sees it -- numpy's
run-time dispatch table, which executes CPUID and XGETBV itself -- and fall
back to ``/proc/cpuinfo`` only where numpy has no table.

Two names come out of them:

* the **ISA level**, which MLAS float kernels this process runs:
  ``x86_64-avx512f``, ``x86_64-avx2-fma``, ``x86_64-avx``, ``x86_64-sse``,
  ``aarch64``;
* the **CPU class**, the set of ISA levels measured to give the same bytes
  for the shipped graph (docs/DETERMINISM.md has the evidence):
  ``x86_64-fma`` (AVX2+FMA3 and AVX-512, Intel and AMD), ``x86_64-nofma``
  (SSE4.2 and AVX without FMA3), ``aarch64``.

A result made in one class is reproduced only by a machine of the same class.
"""

from __future__ import annotations

import importlib
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Final

__all__ = [
    "CLASSES",
    "CpuClass",
    "class_of_level",
    "cpu_class",
    "cpu_features",
    "describe_class",
    "isa_flags",
    "isa_level",
    "normalise_class",
    "reproduces",
]


@dataclass(frozen=True)
class CpuClass:
    """A set of ISA levels that give the same bytes, with what sets it apart."""

    name: str
    levels: tuple[str, ...]
    summary: str


CLASSES: Final[Mapping[str, CpuClass]] = {
    c.name: c for c in (
        CpuClass("x86_64-fma", ("x86_64-avx2-fma", "x86_64-avx512f"),
                 "x86-64 with AVX2 and FMA3, AVX-512 included (Intel Haswell and later, "
                 "AMD Zen and later)"),
        CpuClass("x86_64-nofma", ("x86_64-sse", "x86_64-avx"),
                 "x86-64 without FMA3 (SSE4.2 or AVX only: Intel before Haswell, AMD before "
                 "Piledriver); products are rounded before they are added"),
        CpuClass("aarch64", ("aarch64",),
                 "64-bit ARM (NEON): other GEMM, exp and reduction kernels"),
    )
}

_LEGACY_NAMES: Final = {
    # classes written by cyberian 0.5.0 and earlier (one per ISA level)
    "x86_64-avx512f": "x86_64-fma",
    "x86_64-avx2-fma": "x86_64-fma",
    "x86_64-avx": "x86_64-nofma",
    "x86_64-sse": "x86_64-nofma",
    "aarch64-neon": "aarch64",
    "aarch64-sve": "aarch64",
}

_CPUINFO_TO_NUMPY: Final = {
    "avx": "AVX", "avx2": "AVX2", "fma": "FMA3", "avx512f": "AVX512F", "avx512bw": "AVX512BW",
    "avx512dq": "AVX512DQ", "avx512vl": "AVX512VL", "avx512_vnni": "AVX512VNNI",
    "avx512_bf16": "AVX512BF16", "avx512_fp16": "AVX512FP16", "avx_vnni": "AVX_VNNI",
    "sse4_1": "SSE41", "sse4_2": "SSE42", "f16c": "F16C", "asimd": "ASIMD",
    "asimddp": "ASIMDDP", "asimdhp": "ASIMDHP", "sve": "SVE", "sve2": "SVE2", "i8mm": "I8MM",
    "bf16": "BF16",
}


def _numpy_dispatch_table() -> Mapping[str, bool] | None:
    """numpy's run-time CPU feature table (CPUID + XGETBV), or None if this numpy has none."""
    for module_name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        table = getattr(module, "__cpu_features__", None)
        if isinstance(table, dict):
            return {str(k): bool(v) for k, v in table.items()}
    return None


def _cpuinfo_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in {"flags", "Features"}:
                    return set(value.split())
    except OSError:
        pass
    return set()


@cache
def cpu_features() -> frozenset[str]:
    """The CPU features this process can use, as CPUID/XGETBV report them (numpy's names)."""
    table = _numpy_dispatch_table()
    if table is not None:
        return frozenset(name for name, present in table.items() if present)
    return frozenset(_CPUINFO_TO_NUMPY[f] for f in _cpuinfo_flags() if f in _CPUINFO_TO_NUMPY)


def isa_flags() -> list[str]:
    """The kernel-relevant ISA flags, CPUID's view in ``/proc/cpuinfo`` spelling (``avx2``)."""
    names = {numpy_name: flag for flag, numpy_name in _CPUINFO_TO_NUMPY.items()}
    return sorted(names[f] for f in cpu_features() if f in names)


def isa_level(features: Iterable[str] | None = None, machine: str | None = None) -> str:
    """Which family of MLAS float kernels runs here (the dispatch in MLAS's ``platform.cpp``)."""
    arch = (machine or platform.machine()).lower()
    have = set(cpu_features() if features is None else features)
    if arch in {"x86_64", "amd64"}:
        if {"AVX", "AVX2", "FMA3"} <= have:
            return "x86_64-avx512f" if "AVX512F" in have else "x86_64-avx2-fma"
        return "x86_64-avx" if "AVX" in have else "x86_64-sse"
    if arch in {"aarch64", "arm64"}:
        return "aarch64"
    return arch


def class_of_level(level: str) -> str:
    """The CPU class an ISA level belongs to (the level itself when no class names it)."""
    for cpu_class in CLASSES.values():
        if level in cpu_class.levels:
            return cpu_class.name
    return level


def cpu_class() -> str:
    """This process's CPU class (``x86_64-fma`` on an AVX2 or AVX-512 x86-64 CPU)."""
    return class_of_level(isa_level())


def normalise_class(name: str) -> str:
    """A class name as this version writes it (maps the per-ISA names of cyberian <= 0.5)."""
    return _LEGACY_NAMES.get(name, name)


def reproduces(verifier_class: str, claimant_class: str) -> bool:
    """Whether a machine of ``verifier_class`` reproduces results made on ``claimant_class``."""
    return normalise_class(verifier_class) == normalise_class(claimant_class)


def describe_class(name: str) -> str:
    """One line saying what a class covers (for errors and reports)."""
    known = CLASSES.get(normalise_class(name))
    return f"{known.name}: {known.summary}" if known else f"{name}: a class cyberian does not name"
