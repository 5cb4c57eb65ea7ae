"""Quick-mode runs of the benchmark commands: report structure, and the checks can fail."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cyberian.bench.corpus import determinism_texts, sentences, stress_texts
from cyberian.bench.flops import EncoderShape
from cyberian.bench.golden import check_golden, shipped_goldens
from cyberian.bench.throughput import (
    INT8_PROVER,
    INT8_STANDARD,
    QUANTIZE_DYNAMIC,
    ThroughputReport,
    measure_commands,
    neighbour_agreement,
    quality,
    render_markdown,
    run_throughput,
)
from cyberian.cli import main
from cyberian.cpuclass import normalise_class, reproduces
from cyberian.exceptions import GoldenMismatchError
from cyberian.spec import Spec, load_spec

INT8_SPEC = Path(__file__).resolve().parents[2] / "specs" / "all-minilm-l6-v2-int8.yaml"


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


def _on_circle(degrees: list[float], norms: list[float]) -> np.ndarray:
    angles = np.radians(degrees)
    return (np.stack([np.cos(angles), np.sin(angles)], axis=1)
            * np.array(norms)[:, None]).astype(np.float32)


def test_neighbour_agreement_on_a_hand_made_example() -> None:
    # Reference at 0, 10, 90, 100 degrees: nearest neighbours 1, 0, 3, 2.
    reference = _on_circle([0, 10, 90, 100], [1, 1, 1, 1])
    # Other at 0, 80, 90, 170 (lengths must not matter): nearest 1, 2, 1, 2, so texts 0
    # and 3 keep their nearest neighbour; the two nearest of each are the same sets.
    other = _on_circle([0, 80, 90, 170], [1, 3, 0.5, 2])
    assert neighbour_agreement(other, reference, k=1) == (0.5, 0.5)
    assert neighbour_agreement(other, reference, k=2) == (1.0, 0.5)
    assert neighbour_agreement(reference, reference, k=2) == (1.0, 1.0)
    # Other at 0, 100, 95, 5: the two nearest of text 0 are {3, 2} (were {1, 2}), of 1
    # {2, 3} (were {0, 2}), of 2 {1, 3} (were {3, 1}), of 3 {0, 2} (were {2, 1}): overlap
    # (1/2 + 1/2 + 1 + 1/2) / 4; the nearest are 3, 2, 1, 0 (were 1, 0, 3, 2): none kept.
    shuffled = _on_circle([0, 100, 95, 5], [1, 1, 1, 1])
    overlap, top1 = neighbour_agreement(shuffled, reference, k=2)
    assert overlap == pytest.approx(2.5 / 4)
    assert top1 == 0.0
    assert neighbour_agreement(shuffled, reference, k=10)[0] == 1.0  # k capped at n - 1
    with pytest.raises(ValueError, match="two or more"):
        neighbour_agreement(reference[:1], reference[:1])


def test_quality_reports_cosines_and_neighbours() -> None:
    rng = np.random.default_rng(7)
    reference = rng.standard_normal((2500, 384)).astype(np.float32)
    assert quality(reference, reference) == pytest.approx(
        {"mean_cosine": 1.0, "min_cosine": 1.0, "k": 10.0, "topk_overlap": 1.0,
         "top1_agreement": 1.0})
    noisy = quality(reference + 0.5 * rng.standard_normal(reference.shape).astype(np.float32),
                    reference)
    assert 0.85 < noisy["min_cosine"] < noisy["mean_cosine"] < 0.95
    assert 0 < noisy["top1_agreement"] < 1
    assert 0 < noisy["topk_overlap"] < 1
    assert set(quality(reference[:1], reference[:1])) == {"mean_cosine", "min_cosine"}


@pytest.mark.real_model
def test_throughput_with_the_int8_spec(real_spec: Spec, tmp_path: Path) -> None:
    from cyberian.models.build import ensure_model_files

    int8_spec = load_spec(INT8_SPEC)
    ensure_model_files(int8_spec)
    report = run_throughput(real_spec, sentences(24), quick=True, repeats=1,
                            int8_spec=int8_spec)
    by_name = {r.name: r for r in report.results}
    assert report.results[0].name == "cyberian prover (deterministic)"
    assert report.results[1].name == INT8_PROVER
    assert by_name[INT8_PROVER].deterministic
    assert not by_name[QUANTIZE_DYNAMIC].deterministic
    for name in (INT8_PROVER, QUANTIZE_DYNAMIC):
        assert by_name[name].texts_per_second > 0
        assert by_name[name].tokens_per_second > by_name[name].texts_per_second
    assert "24 of 24 projections integer" in by_name[QUANTIZE_DYNAMIC].note
    assert "fused kernels on" in by_name[INT8_PROVER].note  # tools/setup-compilers.sh: gcc
    assert by_name[INT8_STANDARD].deterministic  # ... and its bytes equal the fused run's
    assert report.ratios["int8_fused_vs_standard_ops"] == pytest.approx(
        by_name[INT8_STANDARD].seconds / by_name[INT8_PROVER].seconds)
    assert set(report.quality) == {INT8_PROVER, QUANTIZE_DYNAMIC}
    int8, dynamic = report.quality[INT8_PROVER], report.quality[QUANTIZE_DYNAMIC]
    assert 0.99 < int8["min_cosine"] <= int8["mean_cosine"] < 1.0  # int8: close, not equal
    assert 0.9 < dynamic["min_cosine"] <= dynamic["mean_cosine"] < 1.0
    for q in (int8, dynamic):
        assert q["k"] == 10
        assert 0 <= q["top1_agreement"] <= 1
        assert 0.5 < q["topk_overlap"] <= 1
    assert by_name[INT8_PROVER].min_cosine == pytest.approx(int8["min_cosine"])
    sentence_transformers = "sentence-transformers (PyTorch CPU)" in by_name
    expected = {"int8_vs_fp32_prover", "int8_vs_quantize_dynamic"}
    assert set(report.ratios) >= expected | (
        {"int8_vs_sentence_transformers"} if sentence_transformers else set())
    assert report.ratios["int8_vs_fp32_prover"] == pytest.approx(
        report.results[0].seconds / by_name[INT8_PROVER].seconds)
    markdown = render_markdown(report)
    assert f"| {INT8_PROVER} | yes |" in markdown
    assert "| configuration | mean cosine | min cosine | top-10 neighbour overlap" in markdown
    assert f"| {QUANTIZE_DYNAMIC} | {dynamic['mean_cosine']:.5f} |" in markdown
    assert "int8 vs quantize dynamic" in markdown
    json.dumps(report.as_dict(), allow_nan=False)


def test_int8_spec_must_share_the_tokenizer(tiny_spec: Spec) -> None:
    with pytest.raises(ValueError, match="must share the tokenizer"):
        run_throughput(load_spec(INT8_SPEC), ["a text"], int8_spec=tiny_spec)


def test_measure_commands_times_the_int8_command(tiny_spec_path: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in sentences(8)),
                     encoding="utf-8")
    st_script = tmp_path / "st.py"  # stands in for the sentence-transformers script
    st_script.write_text("import sys, pathlib\n"
                         "pathlib.Path(sys.argv[sys.argv.index('--out') + 1]).write_bytes(b'')\n",
                         encoding="utf-8")
    timings = measure_commands(tiny_spec_path, texts, threads=1, st_script=st_script,
                               repeats=1, int8_spec_path=tiny_spec_path)
    assert timings["int8_cyberian_prove_seconds"] > 0
    assert timings["int8_command_vs_sentence_transformers"] == pytest.approx(
        timings["sentence_transformers_script_seconds"] / timings["int8_cyberian_prove_seconds"])
    assert timings["ratio"] == pytest.approx(
        timings["sentence_transformers_script_seconds"] / timings["cyberian_prove_seconds"])
    report = ThroughputReport(8, 80, 1, 1, commands=timings)
    lines = [line for line in render_markdown(report).splitlines()
             if line.startswith("- whole command")]
    assert len(lines) == 2
    assert "cyberian-prove int8" in lines[1]
    plain = measure_commands(tiny_spec_path, texts, threads=1, st_script=st_script, repeats=1)
    assert "int8_cyberian_prove_seconds" not in plain


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


def test_vaas_scaling_measures_both_backends_with_one_and_two_workers(
        tiny_spec_path: Path, tmp_path: Path, postgres_cluster: Any) -> None:
    out = tmp_path / "scaling.json"
    result = CliRunner().invoke(main, [
        "bench", "vaas", str(tiny_spec_path), "--quick", "--scaling", "--clients", "4",
        "--block", "16", "--database", postgres_cluster.url(), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = {(row["backend"], row["workers"]): row for row in report["rows"]}
    assert sorted(rows) == [("postgresql", 1), ("postgresql", 2), ("sqlite", 1), ("sqlite", 2)]
    assert all(row["texts_per_second"] > 0 and row["failures"] == [] for row in rows.values())
    ratios = report["ratios"]
    assert ratios["postgresql_2_over_1"] == pytest.approx(
        rows["postgresql", 2]["texts_per_second"] / rows["postgresql", 1]["texts_per_second"])
    assert ratios["postgresql_over_sqlite_1"] == pytest.approx(
        rows["postgresql", 1]["texts_per_second"] / rows["sqlite", 1]["texts_per_second"])
    assert report["postgresql"].startswith("the server at postgresql://postgres@127.0.0.1")
    assert report["machine"]["logical_cpus"] >= 1
    assert "| postgresql | 2 |" in result.stdout
    # the databases the run made are gone again
    import psycopg

    with psycopg.connect(postgres_cluster.url()) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE "
                            "'cyberian_bench_%'").fetchall()
    assert left == []


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
