"""The cross-class verdict: runs of one class must agree, emulators must emulate what they say."""

from __future__ import annotations

from typing import Any

from cyberian.bench.crossclass import ClassReport, ClassRun, render_classes
from cyberian.bench.emulation import Target


def _run(name: str, level: str, cpu_class: str, commitment: str,
         expected: str | None = None, rows: tuple[str, ...] = ("a", "b")) -> ClassRun:
    result: dict[str, Any] = {
        "manifest": {"cpu": {"isa_level": level, "class": cpu_class}},
        "output_commitment": commitment, "row_hashes": list(rows)}
    return ClassRun(Target(name, f"{name} label", expected), result)


NATIVE = _run("native", "x86_64-avx512f", "x86_64-fma", "c1")


def test_agreeing_classes_pass_even_when_classes_differ() -> None:
    report = ClassReport([NATIVE, _run("haswell", "x86_64-avx2-fma", "x86_64-fma", "c1",
                                       "x86_64-avx2-fma"),
                          _run("sse", "x86_64-sse", "x86_64-nofma", "c2", "x86_64-sse",
                               rows=("a", "x"))], texts=2)
    assert report.problems() == []
    assert report.differing_rows(report.runs[2]) == 1
    table = render_classes(report)
    assert "differs (1 of 2 rows)" in table
    assert "OK every class that ran is reproducible" in table


def test_two_runs_of_one_class_that_differ_fail_the_check() -> None:
    report = ClassReport([NATIVE, _run("haswell", "x86_64-avx2-fma", "x86_64-fma", "c9",
                                       "x86_64-avx2-fma")], texts=2)
    assert report.problems() == ["class x86_64-fma is not reproducible: native=c1, haswell=c9"]
    assert "FAIL class x86_64-fma" in render_classes(report)


def test_an_emulator_that_emulates_another_cpu_fails_the_check() -> None:
    report = ClassReport([NATIVE, _run("haswell", "x86_64-avx512f", "x86_64-fma", "c1",
                                       "x86_64-avx2-fma")], texts=2)
    assert report.problems() == ["haswell: detected x86_64-avx512f, expected x86_64-avx2-fma"]


def test_a_target_that_did_not_run_is_listed_with_what_to_install() -> None:
    missing = ClassRun(Target("aarch64", "ARM64", "aarch64", missing="run the setup script"),
                       error="run the setup script")
    report = ClassReport([NATIVE, missing], texts=2)
    assert report.problems() == []
    assert report.missing() == [missing]
    assert "NOT RUN aarch64: run the setup script" in render_classes(report)
    assert report.as_dict()["runs"][1]["error"] == "run the setup script"


def test_the_table_says_which_runs_used_the_fused_kernels() -> None:
    fused = _run("native", "x86_64-avx512f", "x86_64-fma", "c1")
    fused.result["manifest"]["kernels"] = {"fused": True}  # type: ignore[index]
    standard = _run("sse", "x86_64-sse", "x86_64-nofma", "c1", "x86_64-sse")
    standard.result["manifest"]["kernels"] = {"fused": False,  # type: ignore[index]
                                              "reason": "no C compiler"}
    report = ClassReport([fused, standard], texts=2, any_class=True)
    table = render_classes(report)
    assert "| target | ISA level | CPU class | kernels | output commitment |" in table
    assert "| x86_64-fma | fused | c1 | same |" in table
    assert "| x86_64-nofma | standard | c1 | same |" in table
    assert [r["kernels"] for r in report.as_dict()["runs"]] == ["fused", "standard"]
    assert "kernels" not in render_classes(ClassReport([NATIVE], texts=2))
