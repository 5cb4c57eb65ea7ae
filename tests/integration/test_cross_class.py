"""The cross-class check for real: the project's own interpreter under emulated CPUs.

``.ci/run`` installs what these need (Debian's qemu-user for x86-64 classes,
tools/emulation/setup-aarch64.sh for ARM64); a missing emulator is a failure
here, never a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cyberian.bench.corpus import determinism_texts
from cyberian.bench.crossclass import (
    INT8_GRAPH_CASES,
    ClassReport,
    OpsReport,
    run_classes,
    run_ops,
)
from cyberian.bench.emulation import targets
from cyberian.cli import main
from cyberian.environment import cpu_class
from cyberian.models.portable_ops import FUSED_FP32_OPS, PORTABLE_FP32_OPS

pytestmark = pytest.mark.slow

SHIPPED_SPEC = Path(__file__).resolve().parents[2] / "specs" / "all-minilm-l6-v2.yaml"
NATIVE_IS_FMA = cpu_class() == "x86_64-fma"


def _ran(report: ClassReport | OpsReport) -> dict[str, dict]:  # type: ignore[type-arg]
    missing = [f"{r.target.name}: {r.error}" for r in report.runs if r.result is None]
    assert not missing, missing
    return {r.target.name: r.result for r in report.runs if r.result is not None}


def test_every_emulated_class_is_installed() -> None:
    missing = [f"{t.name}: {t.missing}" for t in targets() if not t.available]
    assert not missing, missing


@pytest.fixture(scope="module")
def tiny_report(tiny_spec_path: Path) -> ClassReport:
    return run_classes(tiny_spec_path, determinism_texts()[:24], timeout=900)


def test_tiny_model_gives_one_commitment_per_class(tiny_report: ClassReport) -> None:
    results = _ran(tiny_report)
    assert tiny_report.problems() == []
    commitment = {name: r["output_commitment"] for name, r in results.items()}
    assert commitment["x86_64-avx"] == commitment["x86_64-sse"]  # one class without FMA3
    if NATIVE_IS_FMA:
        assert commitment["x86_64-avx2-fma"] == commitment["native"]
        assert commitment["x86_64-sse"] != commitment["native"]


def test_manifest_class_under_emulation_is_what_the_engine_sees(tiny_report: ClassReport) -> None:
    cpu = {name: r["manifest"]["cpu"] for name, r in _ran(tiny_report).items()}
    assert (cpu["x86_64-avx2-fma"]["isa_level"], cpu["x86_64-avx2-fma"]["class"]) == (
        "x86_64-avx2-fma", "x86_64-fma")
    assert "avx512f" not in cpu["x86_64-avx2-fma"]["isa_flags"]
    assert {"avx2", "fma"} <= set(cpu["x86_64-avx2-fma"]["isa_flags"])
    assert (cpu["x86_64-avx"]["isa_level"], cpu["x86_64-avx"]["class"]) == (
        "x86_64-avx", "x86_64-nofma")
    assert (cpu["x86_64-sse"]["isa_level"], cpu["x86_64-sse"]["class"]) == (
        "x86_64-sse", "x86_64-nofma")
    assert "avx" not in cpu["x86_64-sse"]["isa_flags"]
    assert cpu["aarch64"]["class"] == "aarch64"
    assert cpu["aarch64"] != cpu["native"]


@pytest.mark.real_model
def test_real_model_texts_match_across_avx2_and_this_cpu(real_spec_path: Path) -> None:
    texts = determinism_texts()[:4]
    report = run_classes(real_spec_path, texts, only=["x86_64-avx2-fma", "x86_64-sse"],
                         timeout=900)
    results = _ran(report)
    assert report.problems() == []
    if NATIVE_IS_FMA:
        assert (results["x86_64-avx2-fma"]["row_hashes"] == results["native"]["row_hashes"])
    assert report.differing_rows(report.runs[-1]) == len(texts)  # SSE4.2: another class


def test_cli_check_prints_one_row_per_class_and_passes(tiny_spec_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "determinism", str(tiny_spec_path), "--quick",
                                       "--classes", "--target", "x86_64-sse", "--require-all"])
    assert result.exit_code == 0, result.output
    assert "| native" in result.stdout
    assert "Nehalem-v2" in result.stdout
    assert "OK every class that ran is reproducible" in result.stdout


def test_cli_rejects_an_unknown_target(tiny_spec_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "determinism", str(tiny_spec_path), "--quick",
                                       "--classes", "--target", "riscv"])
    assert result.exit_code == 2
    assert "unknown target(s) riscv" in result.output


@pytest.fixture(scope="module")
def ops_report() -> OpsReport:
    return run_ops(timeout=900)


def test_single_op_evidence_behind_the_allow_list(ops_report: OpsReport) -> None:
    report = ops_report
    runs = {r.target.name: r for r in report.runs}
    _ran(report)
    native, avx2, sse = (report.hashes(runs[n]) for n in ("native", "x86_64-avx2-fma",
                                                          "x86_64-sse"))
    by_op = {op: i for i, op in enumerate(report.ops)}
    allowed = set(PORTABLE_FP32_OPS) | set(FUSED_FP32_OPS)
    measured = [op for op in report.ops if op in allowed]
    assert {"MatMul", "Gemm", "FusedMatMul", "Exp", "Erf", "LayerNormalization",
            "Gelu"} <= set(measured)
    if NATIVE_IS_FMA:
        assert [op for op in measured if native[by_op[op]] != avx2[by_op[op]]] == []
    assert sse[by_op["MatMul"]] != avx2[by_op["MatMul"]]  # the emulator really changes kernels
    assert sse[by_op["Add"]] == avx2[by_op["Add"]]
    if runs["native"].isa_level == "x86_64-avx512f":
        assert native[by_op["Softmax"]] != avx2[by_op["Softmax"]]  # why Softmax is out


# --- the int8 spec: the same bytes on every class -------------------------------------------


def test_tiny_int8_model_gives_the_same_bytes_on_every_class(tiny_int8_spec_path: Path) -> None:
    report = run_classes(tiny_int8_spec_path, determinism_texts()[:24], timeout=900)
    results = _ran(report)
    assert set(results) == {"native", "x86_64-avx2-fma", "x86_64-avx", "x86_64-sse", "aarch64"}
    assert len({r["output_commitment"] for r in results.values()}) == 1
    assert {r["manifest"]["cpu"]["class"] for r in results.values()} == {
        "x86_64-fma", "x86_64-nofma", "aarch64"} | {cpu_class()}


@pytest.mark.real_model
def test_real_int8_texts_are_the_same_bytes_on_every_class(real_int8_spec_path: Path) -> None:
    texts = determinism_texts()[:4]
    report = run_classes(real_int8_spec_path, texts,
                         only=["x86_64-avx2-fma", "x86_64-sse", "aarch64"], timeout=1800)
    results = _ran(report)
    assert report.any_class
    assert report.problems() == []
    hashes = {name: r["row_hashes"] for name, r in results.items()}
    assert all(rows == hashes["native"] for rows in hashes.values()), hashes
    kernels = {name: r["manifest"]["kernels"] for name, r in results.items()}
    assert all(k["fused"] for k in kernels.values()), kernels  # the fused twin ran on each class
    assert kernels["aarch64"]["library_sha256"] != kernels["native"]["library_sha256"]


def test_a_spec_claiming_every_class_fails_when_one_differs(tiny_spec_path: Path) -> None:
    report = run_classes(tiny_spec_path, determinism_texts()[:3], only=["x86_64-sse"],
                         timeout=900)
    _ran(report)
    assert report.problems() == []  # the FP32 tiny model: each class reproduces itself
    report.any_class = True  # ... but it does not give one answer on every class
    assert any("same bytes on every CPU class" in p for p in report.problems())


@pytest.mark.real_model
def test_cli_says_the_int8_spec_is_the_same_everywhere(real_int8_spec_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "determinism", str(real_int8_spec_path),
                                       "--quick", "--classes", "--target", "x86_64-sse",
                                       "--require-all"])
    assert result.exit_code == 0, result.output
    assert "OK the same bytes on every class that ran, 12 texts" in result.stdout
    assert result.stdout.count("| fused |") == 2  # native and SSE4.2 both ran the fused twin


def test_single_op_evidence_behind_the_int8_allow_list(ops_report: OpsReport) -> None:
    report = ops_report
    runs = {r.target.name: r for r in report.runs}
    _ran(report)
    by_op = {op: i for i, op in enumerate(report.ops)}
    native = report.hashes(runs["native"])
    for name, run in runs.items():
        hashes = report.hashes(run)
        differing = [op for op in INT8_GRAPH_CASES if hashes[by_op[op]] != native[by_op[op]]]
        assert differing == [], (name, differing)
    sse, arm = report.hashes(runs["x86_64-sse"]), report.hashes(runs["aarch64"])
    assert arm[by_op["ReduceSum"]] != native[by_op["ReduceSum"]]  # why sums are of whole numbers
    assert sse[by_op["Erf"]] != native[by_op["Erf"]]  # why GELU is a polynomial
