"""``cyberian bench throughput``: our prover against the tools people use, in one run.

Everything is measured in this one process, on the same texts and thread
count, best of ``repeats`` runs after a warm-up: our prover (determinism on,
the spec's settings), plain ONNX Runtime with naive batches of 32, a few
tuned non-deterministic ONNX Runtime configurations (the fastest counts),
sentence-transformers on PyTorch CPU when installed, and the machine's FP32
matmul rate, from which the share of peak our prover reaches is reported.

Given an int8 spec, two more contenders join the same rounds: our int8 prover
(the same bits on every CPU class) and the int8 model a user after speed
would make today, ONNX Runtime's ``quantize_dynamic`` of the FP32 model run
tuned; and both are scored against the FP32 prover's rows (cosine, and
whether each text keeps its nearest neighbours among the texts).
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
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

__all__ = ["INT8_PROVER", "QUANTIZE_DYNAMIC", "Result", "ThroughputReport", "encoder_shape",
           "measure_commands", "neighbour_agreement", "quality", "quantize_dynamic_model",
           "render_markdown", "run_throughput"]

INT8_PROVER = "cyberian prover int8 (deterministic, every CPU class)"
"""The result name of our int8 prover."""
INT8_STANDARD = "cyberian prover int8, standard ops only (no fused kernels)"
"""The result name of our int8 prover on its standard graph, when the default ran the fused twin."""

QUANTIZE_DYNAMIC = "onnxruntime quantize_dynamic (per-channel s8 weights, u8 activations)"
"""The result name of ONNX Runtime's dynamically quantised FP32 model, run tuned."""

_INTEGER_OPS = frozenset({"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
                          "QAttention", "ConvInteger", "QGemm"})


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
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per contender name: how its rows compare with the FP32 prover's (see :func:`quality`)."""

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


def _unit_rows(rows: Rows) -> npt.NDArray[np.float64]:
    a = rows.astype(np.float64)
    unit: npt.NDArray[np.float64] = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True),
                                                   1e-30)
    return unit


def _nearest(unit: npt.NDArray[np.float64], k: int, block: int = 1024) -> npt.NDArray[np.intp]:
    """Each row's ``k`` most cosine-similar other rows, most similar first: shape (n, k).

    Similarities are computed ``block`` rows at a time, so memory stays
    ``block x n`` however many texts there are.
    """
    n = unit.shape[0]
    out = np.empty((n, k), dtype=np.intp)
    for start in range(0, n, block):
        sims = unit[start:start + block] @ unit.T
        local = np.arange(sims.shape[0])
        sims[local, start + local] = -np.inf  # a text is not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start:start + block] = np.take_along_axis(top, order, axis=1)
    return out


def neighbour_agreement(rows: Rows, reference: Rows, k: int = 10) -> tuple[float, float]:
    """How well ``rows`` keep each text's nearest neighbours among the texts of ``reference``.

    Neighbours are by cosine similarity among the texts themselves, a text
    never counting as its own neighbour. Returns the top-``k`` overlap
    (``|top_k(rows) ∩ top_k(reference)| / k`` averaged over texts) and the
    top-1 agreement (the share of texts whose single nearest neighbour is
    the same). ``k`` is capped at ``n - 1``; fewer than two texts is an error.
    """
    n = rows.shape[0]
    if n < 2 or reference.shape[0] != n:
        raise ValueError(f"need the same two or more texts on both sides, got {n} and "
                         f"{reference.shape[0]}")
    k = min(k, n - 1)
    ours, theirs = _nearest(_unit_rows(rows), k), _nearest(_unit_rows(reference), k)
    shared = (ours[:, :, None] == theirs[:, None, :]).any(axis=2).sum(axis=1)
    return float(shared.mean() / k), float((ours[:, 0] == theirs[:, 0]).mean())


def quality(rows: Rows, reference: Rows, k: int = 10) -> dict[str, float]:
    """Cosine and nearest-neighbour agreement of ``rows`` with ``reference``, JSON-ready.

    Keys: ``mean_cosine``, ``min_cosine`` (row by row), ``k`` (the
    neighbour count used, ``k`` capped at ``n - 1``), ``topk_overlap`` and
    ``top1_agreement`` (:func:`neighbour_agreement`; absent for one text).
    """
    cosine = (_unit_rows(rows) * _unit_rows(reference)).sum(axis=1)
    scores = {"mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min())}
    if rows.shape[0] >= 2:
        overlap, top1 = neighbour_agreement(rows, reference, k)
        scores |= {"k": float(min(k, rows.shape[0] - 1)), "topk_overlap": overlap,
                   "top1_agreement": top1}
    return scores


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


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """Silence the root-logger warnings quantize_dynamic prints (int64 inputs, pre-processing)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def quantize_dynamic_model(fp32_model: Path, out: Path) -> dict[str, int]:
    """``quantize_dynamic(fp32_model -> out, per_channel=True, weight_type=QInt8)``, op counts.

    What a user who wants int8 speed runs today. Returns what it did to the
    graph, counted in the files: ``projections`` (the FP32 graph's ``Gemm``
    and ``MatMul`` nodes with a constant weight; ``gemm`` of them ``Gemm``),
    ``integer_ops`` (integer
    matrix products in the output), ``float_gemm`` and ``float_matmul``
    (left in float; attention's activation-by-activation products are
    ``MatMul`` and stay float) and ``int8_gathers`` (embedding tables stored
    in 8 bits, dequantised after the lookup).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    source = onnx.load(str(fp32_model), load_external_data=False)
    constants = {init.name for init in source.graph.initializer}
    weighted = [node.op_type for node in source.graph.node if node.op_type in ("Gemm", "MatMul")
                and len(node.input) > 1 and node.input[1] in constants]
    with _quiet_logging():
        quantize_dynamic(str(fp32_model), str(out), per_channel=True,
                         weight_type=QuantType.QInt8)
    graph = onnx.load(str(out), load_external_data=False).graph
    ops = Counter(node.op_type for node in graph.node)
    eight_bit = {init.name for init in graph.initializer
                 if init.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}
    dequantised = sum(1 for node in graph.node
                      if node.op_type == "Gather" and node.input[0] in eight_bit)
    return {"projections": len(weighted), "gemm": weighted.count("Gemm"),
            "integer_ops": sum(ops[name] for name in _INTEGER_OPS),
            "float_gemm": ops["Gemm"], "float_matmul": ops["MatMul"],
            "int8_gathers": dequantised}


def _quantize_dynamic_peer(spec: Spec, texts: Sequence[str], threads: int, workdir: Path,
                           log: Callable[[str], None]) -> _Contender:
    log("onnxruntime quantize_dynamic of the FP32 model")
    dynamic = workdir / "dynamic.onnx"
    counts = quantize_dynamic_model(spec.model_path, dynamic)
    if counts["float_gemm"] or counts["integer_ops"] < counts["projections"]:
        log(f"quantize_dynamic left projections in float: {counts}")
    how = (f" ({counts['gemm']} Gemm split into MatMul + Add first)"
           if counts["gemm"] and not counts["float_gemm"] else "")
    note = (f"{counts['integer_ops']} of {counts['projections']} projections integer{how}, "
            f"{counts['float_gemm']} Gemm left float; attention products float; "
            f"{counts['int8_gathers']} embedding tables int8; all opts + GELU approx, lanes")
    variant = OrtVariant(QUANTIZE_DYNAMIC, dynamic, lanes=True)
    return _Contender(QUANTIZE_DYNAMIC, tuned_onnxruntime(
        variant, spec.tokenizer_path, spec.max_length, threads, texts), note=note)


def _check_int8_spec(spec: Spec, int8_spec: Spec) -> None:
    same = (spec.tokenizer_sha256 == int8_spec.tokenizer_sha256
            and spec.max_length == int8_spec.max_length)
    if not same:
        raise ValueError(f"the int8 spec {int8_spec.name!r} must share the tokenizer and "
                         f"max_length of {spec.name!r} (it is measured on the same tokens)")


@dataclass(frozen=True)
class _Contender:
    name: str
    run: Callable[[], Rows]
    deterministic: bool = False
    note: str = ""


def run_throughput(spec: Spec, texts: Sequence[str], *, threads: int | None = None,
                   repeats: int = 3, quick: bool = False, with_peers: bool = True,
                   int8_spec: Spec | None = None,
                   log: Callable[[str], None] = lambda _: None) -> ThroughputReport:
    """Measure our prover and its peers on ``texts``; ``quick`` skips the slow extras.

    Every contender is loaded and warmed up first; then ``repeats`` rounds run
    each contender once in turn (so a slow spell of the machine hits all of
    them alike) and each keeps its fastest round.

    With ``int8_spec`` (which must share ``spec``'s tokenizer), our int8
    prover and, among the peers, ONNX Runtime's ``quantize_dynamic`` of
    ``spec``'s model join the rounds, and both are scored against the FP32
    prover's rows in ``report.quality``.
    """
    threads = threads or int(spec.runtime["intra_op_threads"])
    if int8_spec is not None:
        _check_int8_spec(spec, int8_spec)
    prover = Prover(spec, threads=threads)
    token_counts = [len(ids) for ids in prover.runtime.tokenizer.encode(texts)]
    report = ThroughputReport(len(texts), sum(token_counts), threads, repeats,
                              environment=prover.manifest)

    with tempfile.TemporaryDirectory() as tmp:
        contenders = [_prover_contender("cyberian prover (deterministic)", prover, texts,
                                        note="spec settings, sorted batches")]
        if int8_spec is not None:
            int8_prover = Prover(int8_spec, threads=threads)
            kernels = int8_prover.manifest.get("kernels", {})
            contenders.append(_prover_contender(
                INT8_PROVER, int8_prover, texts,
                note=f"spec {int8_spec.name}, exact integer GEMMs, sorted batches, fused "
                     f"kernels {'on' if kernels.get('fused') else 'off'}"))
            if kernels.get("fused"):
                contenders.append(_prover_contender(
                    INT8_STANDARD, Prover(int8_spec, threads=threads, fused=False), texts,
                    note="the pinned graph as it is, one ONNX operation at a time"))
        if with_peers:
            contenders += _peers(spec, texts, threads, Path(tmp), quick, log)
            if int8_spec is not None:
                dynamic = _quantize_dynamic_peer(spec, texts, threads, Path(tmp), log)
                st_last = contenders[-1].name.startswith("sentence-transformers")
                contenders.insert(len(contenders) - st_last, dynamic)
        timings = _rounds(contenders, repeats, log)
    reference = timings[0].rows
    names = [c.name for c in contenders]
    if INT8_STANDARD in names and (timings[names.index(INT8_STANDARD)].rows.tobytes()
                                   != timings[names.index(INT8_PROVER)].rows.tobytes()):
        raise RuntimeError("the int8 prover's fused kernels and its standard graph gave "
                           "different bytes: report this (CYBERIAN_FUSED_KERNELS=0 avoids them)")
    for index, (contender, run) in enumerate(zip(contenders, timings, strict=True)):
        report.results.append(_result(
            contender.name, run, len(texts), report.tokens, reference if index else None,
            deterministic=contender.deterministic, note=contender.note))
        if contender.name in (INT8_PROVER, QUANTIZE_DYNAMIC):
            report.quality[contender.name] = quality(run.rows, reference)
    _derive(report, spec, token_counts, timings[0].seconds, log)
    return report


def _prover_contender(name: str, prover: Prover, texts: Sequence[str], *,
                      note: str) -> _Contender:
    def run() -> Rows:
        proof = prover.prove(texts)
        assert proof.embeddings is not None
        return proof.embeddings

    return _Contender(name, run, deterministic=True, note=note)


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
    int8 = by_name.get(INT8_PROVER)
    if int8 is not None:
        report.ratios["int8_vs_fp32_prover"] = ours / int8.seconds
        standard = by_name.get(INT8_STANDARD)
        if standard is not None:
            report.ratios["int8_fused_vs_standard_ops"] = standard.seconds / int8.seconds
        dynamic = by_name.get(QUANTIZE_DYNAMIC)
        if dynamic is not None:
            report.ratios["int8_vs_quantize_dynamic"] = dynamic.seconds / int8.seconds
        if st is not None:
            report.ratios["int8_vs_sentence_transformers"] = st.seconds / int8.seconds
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
                     repeats: int = 3, int8_spec_path: Path | None = None) -> dict[str, float]:
    """Wall time of whole commands, model load included (seconds each, and their ratio).

    cyberian-prove against a sentence-transformers script embedding the same
    file, alternated for ``repeats`` rounds (a slow spell of the machine hits
    both alike); each keeps its fastest round. ``ratio`` is the script's time
    over cyberian-prove's. With ``int8_spec_path``, ``cyberian-prove`` of the
    int8 spec joins the rounds (``int8_cyberian_prove_seconds``, and
    ``int8_command_vs_sentence_transformers``).
    """
    sibling = Path(sys.executable).with_name("cyberian-prove")
    prove = str(sibling) if sibling.is_file() else (shutil.which("cyberian-prove") or "prove")
    with tempfile.TemporaryDirectory() as tmp:

        def ours(spec: Path, out: str) -> list[str]:
            return [prove, str(spec), str(texts_path), "--threads", str(threads), "-q",
                    "--out", str(Path(tmp) / out)]

        commands = [
            ours(spec_path, "ours.npy"),
            [sys.executable, str(st_script), str(texts_path), "--threads", str(threads),
             "--out", str(Path(tmp) / "theirs.npy")],
        ]
        if int8_spec_path is not None:
            commands.append(ours(int8_spec_path, "ours-int8.npy"))
        best = [float("inf")] * len(commands)
        for _ in range(repeats):
            for index, command in enumerate(commands):
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                best[index] = min(best[index], time.perf_counter() - start)
    fp32, theirs = best[:2]
    timings = {"cyberian_prove_seconds": fp32, "sentence_transformers_script_seconds": theirs,
               "ratio": theirs / fp32, "rounds": repeats}
    if int8_spec_path is not None:
        timings |= {"int8_cyberian_prove_seconds": best[2],
                    "int8_command_vs_sentence_transformers": theirs / best[2]}
    return timings


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
    if report.quality:
        lines += _quality_table(report)
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
        if "int8_cyberian_prove_seconds" in c:
            lines.append(f"- whole command (model load included): cyberian-prove int8 "
                         f"{c['int8_cyberian_prove_seconds']:.1f} s vs sentence-transformers "
                         f"script {c['sentence_transformers_script_seconds']:.1f} s, same "
                         f"rounds: **{c['int8_command_vs_sentence_transformers']:.2f}x**")
    return "\n".join(lines) + "\n"


def _quality_table(report: ThroughputReport) -> list[str]:
    k = max((int(q.get("k", 0)) for q in report.quality.values()), default=0)
    lines = [f"Quality against the FP32 prover's rows on the same {report.texts} texts "
             f"(neighbours: cosine among the texts, self excluded):", "",
             f"| configuration | mean cosine | min cosine | top-{k} neighbour overlap "
             "| top-1 neighbour agreement |",
             "|---|---:|---:|---:|---:|"]

    def cell(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    for name, q in report.quality.items():
        lines.append(f"| {name} | {cell(q.get('mean_cosine'), 5)} | "
                     f"{cell(q.get('min_cosine'), 5)} | {cell(q.get('topk_overlap'), 3)} | "
                     f"{cell(q.get('top1_agreement'), 3)} |")
    return [*lines, ""]
