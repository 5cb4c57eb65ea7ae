"""Quick-mode runs of the benchmark commands: report structure, and the checks can fail."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cyberian.bench.corpus import determinism_texts, sentences, stress_texts
from cyberian.bench.flops import EncoderShape
from cyberian.bench.golden import check_golden, shipped_goldens
from cyberian.cli import main
from cyberian.cpuclass import normalise_class, reproduces
from cyberian.exceptions import GoldenMismatchError
from cyberian.spec import Spec


def test_corpus_has_the_promised_shape() -> None:
    corpus = sentences()
    assert len(corpus) >= 2000
    assert len(set(corpus)) == len(corpus)
    stress = stress_texts()
    assert "" in stress
    assert any(len(t) > 5000 for t in stress)
    assert any("東京" in t for t in stress)
    assert any("🎉" in t for t in stress)
    assert len(determinism_texts()) == len(stress) + 96


def test_flops_formula() -> None:
    shape = EncoderShape(layers=6, hidden=384, intermediate=1536)
    per_layer = 2 * 10 * (4 * 384 * 384 + 2 * 384 * 1536) + 4 * 10 * 10 * 384
    assert shape.flops(10) == 6 * per_layer
    assert "21,233,664 L" in shape.formula()


def test_determinism_matrix_passes_and_reports_every_cell(tiny_spec_path: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "matrix.json"
    result = CliRunner().invoke(main, ["bench", "determinism", str(tiny_spec_path), "--quick",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "IDENTICAL" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["identical"] is True
    assert len(report["cells"]) == 72
    assert {c["threads"] for c in report["cells"]} == {1, 2}
    assert {c["batch_size"] for c in report["cells"]} == {1, 8, 32}
    assert {c["process"] for c in report["cells"]} == {0, 1, 2}
    assert len({c["commitment"] for c in report["cells"]}) == 1
    assert report["environment"]["cpu"]["class"]


def test_determinism_matrix_fails_when_one_cell_differs(tiny_spec_path: Path) -> None:
    cell = "p1-t2-b8-shuffled-pad13"
    result = CliRunner().invoke(main, ["bench", "determinism", str(tiny_spec_path), "--quick",
                                       "--inject-difference", cell])
    assert result.exit_code == 1
    assert f"| {cell} |" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {cell} |"))
    assert row.endswith("DIFFERS |")
    assert sum(line.endswith("DIFFERS |") for line in result.stdout.splitlines()) == 1
    assert "DIFFERENT" in result.stdout
    assert f"differs in {cell}" in result.stdout


def test_golden_round_trip_and_one_flipped_bit(tiny_spec_path: Path, tmp_path: Path) -> None:
    golden = tmp_path / "golden.json"
    runner = CliRunner()
    wrote = runner.invoke(main, ["bench", "determinism", str(tiny_spec_path), "--quick",
                                 "--write-golden", str(golden), "--golden", str(golden)])
    assert wrote.exit_code == 0, wrote.output
    assert "bit-identical" in wrote.stdout
    document = json.loads(golden.read_text(encoding="utf-8"))
    rows = np.frombuffer(base64.b64decode(document["chunks"][0]["rows"]), dtype="<f4").copy()
    rows.view(np.uint32)[3] ^= 1
    document["chunks"][0]["rows"] = base64.b64encode(rows.tobytes()).decode()
    document["chunks"][0]["output_commitment"] = "0" * 64
    golden.write_text(json.dumps(document), encoding="utf-8")
    failed = runner.invoke(main, ["bench", "determinism", str(tiny_spec_path), "--quick",
                                  "--golden", str(golden)])
    assert failed.exit_code == 1
    assert "differ from the golden file" in failed.output


def test_throughput_quick_report(tiny_spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    md = tmp_path / "tp.md"
    result = CliRunner().invoke(main, ["bench", "throughput", str(tiny_spec_path), "--quick",
                                       "--json", str(out), "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    names = [r["name"] for r in report["results"]]
    assert names[0] == "cyberian prover (deterministic)"
    assert "onnxruntime default, naive batches of 32" in names
    assert any(name.startswith("onnxruntime tuned") for name in names)
    for entry in report["results"]:
        assert entry["texts_per_second"] > 0
        assert entry["tokens_per_second"] > entry["texts_per_second"]
    assert report["results"][1]["min_cosine"] > 0.9999
    assert set(report["ratios"]) >= {"vs_naive_onnxruntime", "vs_fastest_nondeterministic"}
    assert report["flops"]["matmul_flops_per_second"] > 0
    assert report["flops"]["share_of_matmul_peak"] > 0
    assert report["texts"] == 48
    table = md.read_text(encoding="utf-8")
    assert table.count("\n| ") >= 3
    assert "% of peak" in table


@pytest.mark.real_model
def test_shipped_goldens_come_from_several_isa_levels_of_one_class(real_spec: Spec) -> None:
    documents = [json.loads(p.read_text(encoding="utf-8")) for p in shipped_goldens(real_spec)]
    levels = {d["environment"]["cpu"]["isa_level"] for d in documents}
    assert levels >= {"x86_64-avx512f", "x86_64-avx2-fma"}
    assert {normalise_class(d["environment"]["cpu"]["class"]) for d in documents} == {"x86_64-fma"}
    assert all(d["spec_hash"] == real_spec.spec_hash for d in documents)
    assert len({d["output_commitment"] for d in documents}) == 1
    assert len({json.dumps(d["chunks"]) for d in documents}) == 1


@pytest.mark.real_model
@pytest.mark.parametrize("level", ["x86_64-avx512f", "x86_64-avx2-fma"])
def test_this_machine_reproduces_every_golden_of_its_class(real_spec: Spec, level: str) -> None:
    from cyberian.environment import cpu_class

    path = next(p for p in shipped_goldens(real_spec) if level in p.name)
    message = check_golden(real_spec, determinism_texts(), path)
    if reproduces(cpu_class(), "x86_64-fma"):
        assert message.startswith("golden: bit-identical"), message
    else:  # a CPU of another class: within tolerance, and said so
        assert "differ as allowed across CPU classes" in message


@pytest.mark.real_model
def test_shipped_golden_catches_a_changed_bit(real_spec: Spec, tmp_path: Path) -> None:
    document = json.loads(shipped_goldens(real_spec)[0].read_text(encoding="utf-8"))
    entry = document["chunks"][2]
    rows = np.frombuffer(base64.b64decode(entry["rows"]), dtype="<f4").copy()
    rows.view(np.uint32)[10] ^= 1 << 20
    entry["rows"] = base64.b64encode(rows.tobytes()).decode()
    entry["output_commitment"] = "0" * 64
    tampered = tmp_path / "golden.json"
    tampered.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(GoldenMismatchError, match="chunk"):
        check_golden(real_spec, determinism_texts(), tampered)


def test_vaas_quick_report(tiny_spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "vaas.json"
    result = CliRunner().invoke(main, ["bench", "vaas", str(tiny_spec_path), "--quick",
                                       "--clients", "3", "--block", "8", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["requests"] == 8  # 64 texts in blocks of 8
    assert report["failures"] == []
    assert report["in_process_texts_per_second"] > 0
    assert report["verify_texts_per_second"] > 0
    assert report["ratio"] == pytest.approx(
        report["verify_texts_per_second"] / report["in_process_texts_per_second"])
    assert 0 < report["latency_p50"] <= report["latency_p99"] <= report["latency_max"]
    assert "of the in-process prover" in result.stdout


def test_verify_overhead_quick_report(tiny_spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    result = CliRunner().invoke(main, ["bench", "verify-overhead", str(tiny_spec_path),
                                       "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["texts"] == 32
    assert report["verify_seconds"] > report["plain_seconds"] > 0
    assert report["ratio"] > 1
    assert set(report["split"]) == {"local_prove", "verifier_start", "re_execution_and_receipt",
                                    "offline_check", "rest"}
    assert report["split"]["re_execution_and_receipt"] > 0
