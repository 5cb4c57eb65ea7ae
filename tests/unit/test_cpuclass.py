"""CPU classes: ISA levels from CPUID features, class boundaries, legacy names."""

from __future__ import annotations

import pytest

from cyberian.cpuclass import (
    CLASSES,
    class_of_level,
    cpu_features,
    describe_class,
    isa_flags,
    isa_level,
    normalise_class,
    reproduces,
)
from cyberian.environment import cpu_class, environment_manifest

ZEN4 = {"SSE42", "AVX", "AVX2", "FMA3", "F16C", "AVX512F", "AVX512BW", "AVX512VNNI"}
HASWELL = {"SSE42", "AVX", "AVX2", "FMA3", "F16C"}
SANDY_BRIDGE = {"SSE42", "AVX"}
NEHALEM = {"SSE41", "SSE42"}


@pytest.mark.parametrize(("features", "level", "cpu_class_name"), [
    (ZEN4, "x86_64-avx512f", "x86_64-fma"),
    (HASWELL, "x86_64-avx2-fma", "x86_64-fma"),
    (HASWELL - {"FMA3"}, "x86_64-avx", "x86_64-nofma"),  # MLAS wants both AVX2 and FMA3
    (SANDY_BRIDGE, "x86_64-avx", "x86_64-nofma"),
    (NEHALEM, "x86_64-sse", "x86_64-nofma"),
    (ZEN4 - {"AVX2"}, "x86_64-avx", "x86_64-nofma"),  # AVX-512 kernels sit behind AVX2+FMA3
])
def test_isa_level_and_class_follow_the_engine_dispatch(features: set[str], level: str,
                                                        cpu_class_name: str) -> None:
    assert isa_level(features, machine="x86_64") == level
    assert class_of_level(level) == cpu_class_name


def test_arm64_is_its_own_class() -> None:
    assert isa_level({"NEON", "ASIMD", "ASIMDDP"}, machine="aarch64") == "aarch64"
    assert class_of_level("aarch64") == "aarch64"
    assert not reproduces("aarch64", "x86_64-fma")


def test_every_level_belongs_to_exactly_one_class() -> None:
    levels = [level for c in CLASSES.values() for level in c.levels]
    assert len(levels) == len(set(levels))
    assert all(c.summary for c in CLASSES.values())


@pytest.mark.parametrize(("old", "new"), [
    ("x86_64-avx512f", "x86_64-fma"), ("x86_64-avx2-fma", "x86_64-fma"),
    ("x86_64-avx", "x86_64-nofma"), ("x86_64-sse", "x86_64-nofma"),
    ("aarch64-neon", "aarch64"), ("x86_64-fma", "x86_64-fma"),
])
def test_legacy_class_names_map_to_todays_classes(old: str, new: str) -> None:
    assert normalise_class(old) == new


def test_reproduces_is_same_class_after_normalising() -> None:
    assert reproduces("x86_64-fma", "x86_64-avx2-fma")
    assert reproduces("x86_64-avx512f", "x86_64-avx2-fma")
    assert not reproduces("x86_64-fma", "x86_64-nofma")
    assert not reproduces("x86_64-nofma", "aarch64")


def test_describe_names_unknown_classes_plainly() -> None:
    assert describe_class("x86_64-avx2-fma").startswith("x86_64-fma: ")
    assert "does not name" in describe_class("riscv64")


def test_this_machine_manifest_records_cpuid_view() -> None:
    assert cpu_features(), "numpy's dispatch table (CPUID) should report features"
    cpu = environment_manifest(engine_version="1.32.0")["cpu"]
    assert cpu["isa_level"] == isa_level()
    assert cpu["class"] == cpu_class() == class_of_level(cpu["isa_level"])
    assert cpu["isa_flags"] == isa_flags()
    if cpu["isa_level"] == "x86_64-avx512f":
        assert "avx512f" in cpu["isa_flags"]
