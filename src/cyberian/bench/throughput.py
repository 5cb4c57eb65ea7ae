"""``cyberian bench throughput``: our prover against the tools people use, in one run.

Everything is measured in this one process, on the same texts and thread
count, best of ``repeats`` runs after a warm-up: our prover (determinism on,
the spec's settings), plain ONNX Runtime with naive batches of 32, a few
tuned non-deterministic ONNX Runtime configurations (the fastest counts),
sentence-transformers on PyTorch CPU when installed, and the machine's FP32
matmul rate, from which the share of peak our prover reaches is reported.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..environment import package_version
from ..models.bert import BertConfig, build_bert_graph, serialize_model
from ..models.recipes import find_recipe
from ..models.weights import fetch_weights, source_folder
from ..prover import Prover
from ..spec import Spec, installed_engine_version
from .flops import EncoderShape, encoder_flops, matmul_rate
from .peers import (
    OrtVariant,
    Rows,
    Timed,
    naive_onnxruntime,
    sentence_transformers_rows,
    timed,
    tuned_onnxruntime,
)

__all__ = ["Result", "ThroughputReport", "encoder_shape", "render_markdown", "run_throughput"]


@dataclass
class Result:
    """One configuration's speed, and how its vectors compare with ours."""

    name: str
    deterministic: bool
    seconds: float
    texts_per_second: float
    tokens_per_second: float
    max_abs_delta: float | None = None
    min_cosine: float | None = None
    note: str = ""


@dataclass
class ThroughputReport:
    """Everything one ``bench throughput`` run measured."""

    texts: int
    tokens: int
    threads: int
    repeats: int
    results: list[Result] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    flops: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def encoder_shape(model_path: Path) -> EncoderShape | None:
    """The encoder shape from a cyberian-built model's metadata (None for other models)."""
    model = onnx.load(str(model_path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    try:
        return EncoderShape(int(props["num_hidden_layers"]), int(props["hidden_size"]),
                            int(props["intermediate_size"]))
    except KeyError:
        return None


def _compare(rows: Rows, ours: Rows) -> tuple[float, float]:
    delta = float(np.abs(rows.astype(np.float64) - ours.astype(np.float64)).max())
    a = rows.astype(np.float64)
    b = ours.astype(np.float64)
    cosine = (a * b).sum(axis=1) / np.maximum(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return delta, float(cosine.min())


def _result(name: str, run: Timed, texts: int, tokens: int, ours: Rows | None, *,
            deterministic: bool, note: str = "") -> Result:
    delta, cosine = _compare(run.rows, ours) if ours is not None else (None, None)
    return Result(name, deterministic, run.seconds, texts / run.seconds, tokens / run.seconds,
                  delta, cosine, note)


def _variants(spec: Spec, workdir: Path, quick: bool) -> list[OrtVariant]:
    variants = [OrtVariant("onnxruntime tuned: all opts + GELU approx", spec.model_path)]
    recipe = find_recipe(model_sha256=spec.model_sha256)
    if recipe is None or quick:
        return variants
    files = fetch_weights(recipe.source)
    from safetensors.numpy import load as load_safetensors  # noqa: PLC0415

    fused = workdir / "fused-attention.onnx"
    fused.write_bytes(serialize_model(build_bert_graph(
        load_safetensors(files["model.safetensors"]),
        BertConfig.from_hf(json.loads(files["config.json"])), name="fused",
        fused_attention=True)))
    return [
        *variants,
        OrtVariant("onnxruntime tuned: fused Attention kernel + GELU approx", fused),
        OrtVariant("onnxruntime tuned: fused Attention, 1024-token batches", fused,
                   max_batch_tokens=1024),
        OrtVariant("onnxruntime tuned: fused Attention + GELU approx, lanes", fused, lanes=True),
        OrtVariant("onnxruntime tuned: fused Attention, exact GELU, lanes", fused,
                   gelu_approximation=False, lanes=True),
        OrtVariant("onnxruntime tuned: all opts + GELU approx, lanes", spec.model_path,
                   lanes=True),
    ]


@dataclass(frozen=True)
class _Contender:
    name: str
    run: Callable[[], Rows]
    deterministic: bool = False
    note: str = ""


def run_throughput(spec: Spec, texts: Sequence[str], *, threads: int | None = None,
                   repeats: int = 3, quick: bool = False, with_peers: bool = True,
                   log: Callable[[str], None] = lambda _: None) -> ThroughputReport:
    """Measure our prover and its peers on ``texts``; ``quick`` skips the slow extras.

    Every contender is loaded and warmed up first; then ``repeats`` rounds run
    each contender once in turn (so a slow spell of the machine hits all of
    them alike) and each keeps its fastest round.
    """
    threads = threads or int(spec.runtime["intra_op_threads"])
    prover = Prover(spec, threads=threads)
    token_counts = [len(ids) for ids in prover.runtime.tokenizer.encode(texts)]
    report = ThroughputReport(len(texts), sum(token_counts), threads, repeats,
                              environment=prover.manifest)

    def ours() -> Rows:
        proof = prover.prove(texts)
        assert proof.embeddings is not None
        return proof.embeddings

    with tempfile.TemporaryDirectory() as tmp:
        contenders = [_Contender("cyberian prover (deterministic)", ours, deterministic=True,
                                 note="spec settings, sorted batches")]
        if with_peers:
            contenders += _peers(spec, texts, threads, Path(tmp), quick, log)
        timings = _rounds(contenders, repeats, log)
    reference = timings[0].rows
    for contender, run in zip(contenders, timings, strict=True):
        report.results.append(_result(
            contender.name, run, len(texts), report.tokens,
            None if contender.deterministic else reference,
            deterministic=contender.deterministic, note=contender.note))
    _derive(report, spec, token_counts, timings[0].seconds, log)
    return report


def _rounds(contenders: Sequence[_Contender], repeats: int,
            log: Callable[[str], None]) -> list[Timed]:
    rows: list[Rows] = []
    for contender in contenders:
        log(f"warming up: {contender.name}")
        rows.append(contender.run())
    best = [float("inf")] * len(contenders)
    for round_number in range(repeats):
        log(f"round {round_number + 1} of {repeats}")
        for index, contender in enumerate(contenders):
            best[index] = min(best[index], timed(contender.run, 1).seconds)
    return [Timed(r, seconds) for r, seconds in zip(rows, best, strict=True)]


def _peers(spec: Spec, texts: Sequence[str], threads: int, workdir: Path, quick: bool,
           log: Callable[[str], None]) -> list[_Contender]:
    peers = [_Contender("onnxruntime default, naive batches of 32", naive_onnxruntime(
        spec.model_path, spec.tokenizer_path, spec.max_length, threads, texts))]
    peers += [_Contender(variant.name, tuned_onnxruntime(variant, spec.tokenizer_path,
                                                         spec.max_length, threads, texts))
              for variant in _variants(spec, workdir, quick)]
    recipe = find_recipe(model_sha256=spec.model_sha256)
    if recipe is None:
        return peers
    try:
        runner = sentence_transformers_rows(source_folder(recipe.source), threads, texts)
    except ImportError:
        log("sentence-transformers not installed (pip install -e '.[bench]'); skipped")
        return peers
    return [*peers, _Contender("sentence-transformers (PyTorch CPU)", runner,
                               note=f"torch {package_version('torch') or '?'}, batch 32")]


def _derive(report: ThroughputReport, spec: Spec, token_counts: Sequence[int], ours: float,
            log: Callable[[str], None]) -> None:
    by_name = {r.name: r for r in report.results}
    naive = by_name.get("onnxruntime default, naive batches of 32")
    if naive is not None:
        report.ratios["vs_naive_onnxruntime"] = naive.seconds / ours
    tuned = [r for r in report.results if r.name.startswith("onnxruntime tuned")]
    if tuned:
        fastest = min(tuned, key=lambda r: r.seconds)
        report.ratios["vs_fastest_nondeterministic"] = fastest.seconds / ours
    st = by_name.get("sentence-transformers (PyTorch CPU)")
    if st is not None:
        report.ratios["vs_sentence_transformers"] = st.seconds / ours
    shape = encoder_shape(spec.model_path)
    if shape is not None:
        log("numpy float32 2048x2048 matmul")
        peak = matmul_rate(report.threads)
        useful = encoder_flops(shape, token_counts)
        report.flops = {
            "formula": shape.formula(),
            "useful_flops": useful,
            "achieved_flops_per_second": useful / ours,
            "matmul_flops_per_second": peak,
            "share_of_matmul_peak": useful / ours / peak,
            "peak_source": f"numpy float32 2048x2048 matmul, {report.threads} threads "
                           f"({platform.machine()})",
        }


def measure_commands(spec_path: Path, texts_path: Path, *, threads: int, st_script: Path,
                     repeats: int = 3) -> dict[str, float]:
    """Wall time of whole commands, model load included (seconds each, and their ratio).

    cyberian-prove against a sentence-transformers script embedding the same
    file, alternated for ``repeats`` rounds (a slow spell of the machine hits
    both alike); each keeps its fastest round.
    """
    sibling = Path(sys.executable).with_name("cyberian-prove")
    prove = str(sibling) if sibling.is_file() else (shutil.which("cyberian-prove") or "prove")
    with tempfile.TemporaryDirectory() as tmp:
        commands = (
            [prove, str(spec_path), str(texts_path), "--threads", str(threads), "-q",
             "--out", str(Path(tmp) / "ours.npy")],
            [sys.executable, str(st_script), str(texts_path), "--threads", str(threads),
             "--out", str(Path(tmp) / "theirs.npy")],
        )
        best = [float("inf")] * len(commands)
        for _ in range(repeats):
            for index, command in enumerate(commands):
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                best[index] = min(best[index], time.perf_counter() - start)
    ours, theirs = best
    return {"cyberian_prove_seconds": ours, "sentence_transformers_script_seconds": theirs,
            "ratio": theirs / ours, "rounds": repeats}


def render_markdown(report: ThroughputReport) -> str:
    """The report as a markdown table plus the derived ratios."""
    lines = [
        f"Throughput on {report.texts} texts ({report.tokens} tokens), {report.threads} "
        f"thread(s), best of {report.repeats}; onnxruntime {installed_engine_version()}, "
        f"{report.environment.get('cpu', {}).get('model', '?')} "
        f"({report.environment.get('cpu', {}).get('isa_level', '?')}, class "
        f"{report.environment.get('cpu', {}).get('class', '?')}).",
        "",
        "| configuration | deterministic | texts/s | tokens/s | seconds | max abs delta "
        "| min cosine |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.results:
        delta = "—" if r.max_abs_delta is None else f"{r.max_abs_delta:.2e}"
        cosine = "—" if r.min_cosine is None else f"{r.min_cosine:.7f}"
        lines.append(f"| {r.name} | {'yes' if r.deterministic else 'no'} | "
                     f"{r.texts_per_second:,.1f} | {r.tokens_per_second:,.0f} | "
                     f"{r.seconds:.2f} | {delta} | {cosine} |")
    lines.append("")
    for name, value in report.ratios.items():
        lines.append(f"- {name.replace('_', ' ')}: **{value:.2f}x**")
    if report.flops:
        f = report.flops
        lines += [
            f"- FLOPs per text: {f['formula']} (L = real tokens)",
            f"- achieved {f['achieved_flops_per_second'] / 1e9:.1f} GFLOP/s of useful work; "
            f"measured peak {f['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s "
            f"({f['peak_source']}): **{100 * f['share_of_matmul_peak']:.0f}% of peak**",
        ]
    if report.commands:
        c = report.commands
        lines.append(f"- whole command (model load included): cyberian-prove "
                     f"{c['cyberian_prove_seconds']:.1f} s vs sentence-transformers script "
                     f"{c['sentence_transformers_script_seconds']:.1f} s, fastest of "
                     f"{c.get('rounds', 1):.0f} alternated rounds: **{c['ratio']:.2f}x**")
    return "\n".join(lines) + "\n"
